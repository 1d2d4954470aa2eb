"""The vote's lean reader (serializers.plain_vote_input) accepts only what VoteInput
accepts, and reads it the same; whatever it declines, DRF's cycle answers as before."""

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from studies.serializers import VoteInput, plain_vote_input
from tests.factories import make_live_study, start_rater

CID = str(uuid.uuid4())
GOOD: dict[str, Any] = {"assignment": "abc", "answer": "left", "response_ms": 900, "client_id": CID}

BODIES: list[Any] = [
    GOOD,
    {**GOOD, "correction": True},
    {**GOOD, "extra": 1},
    {**GOOD, "answers": []},
    {**GOOD, "answers": None},
    {**GOOD, "assignment": " abc "},
    {**GOOD, "assignment": 12},
    {**GOOD, "assignment": ""},
    {**GOOD, "assignment": "x" * 25},
    {**GOOD, "answer": "up"},
    {**GOOD, "response_ms": "900"},
    {**GOOD, "response_ms": True},
    {**GOOD, "response_ms": -1},
    {**GOOD, "response_ms": 10**12},
    {**GOOD, "response_ms": 9.5},
    {**GOOD, "client_id": "nope"},
    {**GOOD, "client_id": CID.replace("-", "")},
    {**GOOD, "client_id": 5},
    {**GOOD, "correction": "true"},
    {**GOOD, "correction": None},
    {k: v for k, v in GOOD.items() if k != "answer"},
    {k: v for k, v in GOOD.items() if k != "client_id"},
    {"answers": [{"assignment": "a", "answer": "tie"}], "response_ms": 1, "client_id": CID},
    {"answers": [{"assignment": "a", "answer": "tie"}], **GOOD},
    {"answers": [{"assignment": "a"}], "response_ms": 1, "client_id": CID},
    {"answers": ["a"], "response_ms": 1, "client_id": CID},
    {"answers": [{"assignment": "a", "answer": "tie"}] * 21, "response_ms": 1, "client_id": CID},
    {"answers": {"assignment": "a"}, "response_ms": 1, "client_id": CID},
    [GOOD],
    "left",
    None,
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_what_the_lean_reader_accepts_the_serializer_accepts_alike(body: Any) -> None:
    plain = plain_vote_input(json.dumps(body).encode())
    given = VoteInput(data=body)
    if plain is not None:
        assert given.is_valid(), given.errors
        assert plain == dict(given.validated_data)


def test_the_usual_forms_take_the_lean_path() -> None:
    assert plain_vote_input(json.dumps(GOOD).encode()) is not None
    assert plain_vote_input(json.dumps(BODIES[22]).encode()) is not None
    assert plain_vote_input(b"{not json") is None


@pytest.mark.django_db
def test_a_well_formed_vote_never_builds_the_serializer(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    start_rater(client, study)
    url = f"/api/r/{study.slug}/session"
    pair = client.post(url, "{}", content_type="application/json").json()["comparisons"][0]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the lean path built VoteInput")

    monkeypatch.setattr(VoteInput, "__init__", refuse)
    body = {**GOOD, "assignment": pair["id"]}
    stored = client.post(f"/api/r/{study.slug}/votes", json.dumps(body), "application/json")
    assert stored.status_code == 201
    assert stored.json()["vote"]["answers"] == {pair["id"]: "left"}


@pytest.mark.django_db
def test_declined_bodies_get_drf_s_field_errors_and_accepted_ones_its_domain_errors(
    client: Client,
) -> None:
    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    start_rater(client, study)
    url = f"/api/r/{study.slug}/votes"
    bad = client.post(url, json.dumps({**GOOD, "response_ms": "soon"}), "application/json")
    assert bad.status_code == 400 and "response_ms" in bad.json()
    # Well formed, but not a pair of this session: the domain error, as JSON.
    unknown = client.post(url, json.dumps(GOOD), "application/json")
    assert unknown.status_code == 404
    assert unknown["Content-Type"] == "application/json"
    assert unknown.json() == {"detail": "No such pair in your session."}
    # CSRF is still enforced on the lean path.
    strict = Client(enforce_csrf_checks=True)
    start_rater(strict, study)
    refused = strict.post(url, json.dumps(GOOD), "application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
