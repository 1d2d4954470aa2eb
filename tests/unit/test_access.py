"""Where a rater does not belong: every researcher page the study admin links (from every
app's piece), the admin itself, reports, exports and staff APIs refuse a rater's browser;
and through the rater API one rater cannot read, answer or flag another's pair."""

import json
import uuid

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from studies.models import Study, Vote
from tests.factories import make_live_study, start_rater

pytestmark = pytest.mark.django_db


def _researcher_urls(study: Study) -> list[str]:
    study_admin = admin.site._registry[Study]
    links = [url for _, url in study_admin.object_links(study)]  # type: ignore[attr-defined]
    return [
        *links,
        reverse("admin:index"),
        reverse("admin:studies_study_changelist"),
        reverse("admin:studies_study_change", args=[study.pk]),
        reverse("admin:studies_study_progress", args=[study.pk]),
        reverse("admin:studies_vote_changelist"),
        reverse("admin:studies_rater_changelist"),
        reverse("api-leaderboard", args=[study.slug]),
        reverse("api-report", args=[study.slug]),
    ]


def test_a_raters_browser_reaches_no_researcher_page(client: Client) -> None:
    study = make_live_study()
    start_rater(client, study)
    urls = _researcher_urls(study)
    assert len(urls) >= 15  # every app's links are there to be checked
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 401, 403, 404), (url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/admin/login/"), url
    # Nor the study page's buttons or the report's rebuild.
    for url in (
        reverse("admin:studies_study_button", args=[study.pk, "close"]),
        reverse("leaderboard-rebuild", args=[study.slug]),
    ):
        response = client.post(url)
        assert response.status_code in (302, 401, 403, 404, 405), (url, response.status_code)
    study.refresh_from_db()
    assert study.status == "live"


def test_one_rater_cannot_answer_or_flag_anothers_pair() -> None:
    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    alice, bob = Client(), Client()
    start_rater(alice, study)
    start_rater(bob, study)
    api = f"/api/r/{study.slug}"
    pair = alice.post(f"{api}/session", "{}", content_type="application/json").json()[
        "comparisons"
    ][0]["id"]
    vote = {
        "assignment": pair,
        "answer": "left",
        "response_ms": 2000,
        "client_id": str(uuid.uuid4()),
    }
    stolen = bob.post(f"{api}/votes", json.dumps(vote), content_type="application/json")
    assert stolen.status_code == 404 and "detail" in stolen.json()
    flag = {"assignment": pair, "reason": "broken", "side": "left"}
    assert (
        bob.post(f"{api}/flags", json.dumps(flag), content_type="application/json").status_code
        == 404
    )
    assert pair not in json.dumps(bob.get(f"{api}/session").json())
    assert not Vote.objects.exists()
    # Alice's own answer, then a replay of it by Bob with her client id: refused.
    assert (
        alice.post(f"{api}/votes", json.dumps(vote), content_type="application/json").status_code
        == 201
    )
    replay = bob.post(f"{api}/votes", json.dumps(vote), content_type="application/json")
    assert replay.status_code in (404, 409)
    assert Vote.objects.count() == 1
