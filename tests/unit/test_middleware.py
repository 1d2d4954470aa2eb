"""The middleware only pages need (config.middleware.PagesOnly): the rater JSON API goes
around it, everything else still runs through it."""

import uuid

import pytest
from django.test import Client

from tests.factories import make_live_study, rater_api, start_rater

pytestmark = pytest.mark.django_db


def test_the_rater_api_goes_around_the_page_only_middleware(client: Client) -> None:
    study = make_live_study(attention_check_rate=0, practice_comparisons=0)
    start_rater(client, study)
    page = client.get(f"/r/{study.slug}/compare")
    assert page.status_code == 200
    # A page gets the signed-in user (anonymous here) and one-time messages.
    assert hasattr(page.wsgi_request, "user") and hasattr(page.wsgi_request, "_messages")
    session = rater_api(client, study, "session", {})
    pair = session.json()["comparisons"][0]["id"]
    body = {
        "assignment": pair,
        "answer": "left",
        "response_ms": 900,
        "client_id": str(uuid.uuid4()),
    }
    vote = rater_api(client, study, "votes", body)
    assert (session.status_code, vote.status_code) == (200, 201)
    assert not hasattr(vote.wsgi_request, "user")  # (DRF's views set an anonymous one)
    for response in (session, vote):
        assert not hasattr(response.wsgi_request, "_messages")
        # The headers every rater response carries still come (tests/unit/test_security_headers.py).
        assert (
            response["X-Frame-Options"] == "DENY"
            and response["X-Content-Type-Options"] == "nosniff"
        )


def test_pages_keep_the_site_wide_url_rules_and_the_admin_its_user(admin_client: Client) -> None:
    assert admin_client.get("/admin").status_code == 301  # a slash added (CommonMiddleware)
    assert admin_client.get("/admin/").status_code == 200  # signed in (AuthenticationMiddleware)
