"""Headers that hold on every rater response: a Content-Security-Policy that runs only
the project's own script files, no framing, and none of it on the researcher's pages
(where Django's admin needs its own)."""

import re

import pytest
from django.test import Client

from config.middleware import POLICY
from tests.factories import make_live_study, start_rater

pytestmark = pytest.mark.django_db


def test_every_rater_response_carries_the_policy(client: Client) -> None:
    study = make_live_study()
    responses = [client.get(f"/r/{study.slug}/", follow=True)]
    start_rater(client, study)
    responses += [
        client.get(f"/r/{study.slug}/compare"),
        client.post(f"/api/r/{study.slug}/session", "{}", content_type="application/json"),
        client.get(f"/r/{study.slug}/no-such-page"),
    ]
    for response in responses:
        assert response["Content-Security-Policy"] == POLICY, response.request["PATH_INFO"]
        assert response["X-Frame-Options"] == "DENY"
    assert "script-src 'self';" in POLICY and "unsafe" not in POLICY
    assert "frame-ancestors 'none'" in POLICY


def test_rater_pages_have_no_inline_script(client: Client) -> None:
    study = make_live_study()
    start_rater(client, study)
    page = client.get(f"/r/{study.slug}/compare").content.decode()

    for tag in re.findall(r"<script\b[^>]*>", page):
        # Only script files, and data blocks the browser never runs.
        assert " src=" in tag or 'type="application/json"' in tag, tag
    # No inline event handlers either (onclick=…): the policy would block them.
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page)


def test_the_admin_is_left_to_djangos_own_headers(admin_client: Client) -> None:
    response = admin_client.get("/admin/")
    assert "Content-Security-Policy" not in response
