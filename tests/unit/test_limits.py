"""Rate limits: a session's API calls, new arrivals per address, failed admin logins per
address and user; each a 429 with Retry-After and nothing stored."""

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies import limits
from studies.models import Rater, Vote
from tests.factories import make_live_study, start_rater

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """All calls fall in one minute: a slow run crossing a minute boundary would
    start a fresh window and let the test's last call through."""
    monkeypatch.setattr(limits, "clock", lambda: 60.0 * 29_000_000 + 5.0)


def test_a_session_over_its_limit_gets_429_and_stores_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RATER_CALLS", limits.Limit("rater", 3))
    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    start_rater(client, study)
    url = f"/api/r/{study.slug}/session"
    session = client.post(url, "{}", content_type="application/json").json()
    for _ in range(2):
        assert client.get(url).status_code == 200
    pair = session["comparisons"][0]["id"]
    body = {
        "assignment": pair,
        "answer": "left",
        "response_ms": 2000,
        "client_id": str(uuid.uuid4()),
    }
    refused = client.post(
        f"/api/r/{study.slug}/votes", json.dumps(body), content_type="application/json"
    )
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert "Too many requests" in refused.json()["detail"]
    assert not Vote.objects.exists()
    # Another rater's session has its own count.
    other = Client()
    start_rater(other, study)
    assert other.get(url).status_code == 200


def test_new_arrivals_from_one_address_are_limited(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "ARRIVALS", limits.Limit("arrivals", 2))
    study = make_live_study()
    start_rater(Client(), study)  # entry and consent: two arrivals' worth
    page = Client().get(f"/r/{study.slug}/")
    assert page.status_code == 429 and page["Retry-After"]
    assert "Too many requests came from your connection" in page.content.decode()
    assert Rater.objects.count() == 1
    # Another address is not affected.
    elsewhere = Client(REMOTE_ADDR="10.0.0.9").get(f"/r/{study.slug}/")
    assert elsewhere.status_code == 302


def test_failed_admin_logins_are_throttled_per_address_and_user(settings: Any) -> None:
    get_user_model()._default_manager.create_superuser("staff", "s@localhost", "right-pw-123")
    browser = Client()
    for _ in range(limits.LOGINS.per_minute):
        failed = browser.post("/admin/login/", {"username": "staff", "password": "wrong"})
        assert failed.status_code == 200
    # Now even the right password waits: guessing gains nothing.
    blocked = browser.post("/admin/login/", {"username": "staff", "password": "right-pw-123"})
    assert blocked.status_code == 429 and blocked["Retry-After"]
    # The same user from another address, and another user here, are not blocked.
    other = Client(REMOTE_ADDR="10.0.0.7")
    ok = other.post("/admin/login/", {"username": "staff", "password": "right-pw-123"})
    assert ok.status_code == 302
    assert browser.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 200


def test_limits_can_be_turned_off(client: Client, settings: Any, monkeypatch: Any) -> None:
    settings.RATE_LIMITS = False
    monkeypatch.setattr(limits, "ARRIVALS", limits.Limit("arrivals", 0))
    study = make_live_study()
    assert client.get(f"/r/{study.slug}/").status_code == 302
