"""The health endpoint for load balancers and compose healthchecks: the database and the
broker, 503 (never a 500) when one is down."""

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_health_answers_ok_when_database_and_broker_answer(client: Client, settings: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "database": "ok", "broker": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_health_is_503_with_a_retry_hint_when_the_broker_is_down(
    client: Client, settings: Any
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["database"] == "ok"
    assert body["broker"].startswith("unreachable (")
    assert response["Retry-After"] == "5"


def test_the_embedded_queue_folder_is_made_or_reported(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    # A fresh process has sent no task yet, so the folder does not exist: it is made.
    fresh = tmp_path / "fresh" / "queue"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(fresh)}
    assert client.get("/healthz").status_code == 200 and fresh.is_dir()
    # Where it cannot be made (a file stands in the way), the broker is down.
    (tmp_path / "a-file").write_text("")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "a-file" / "q")}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable (queue folder cannot be made)"
