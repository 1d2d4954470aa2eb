import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from psycopg.pq import Trace

from studies import content
from studies.models import (
    Assignment,
    AssignmentStatus,
    Rater,
    RaterOutcome,
    Study,
    StudyStatus,
    Vote,
)
from studies.signals import votes_recorded
from tests.factories import make_live_study, start_rater
from tests.factories import rater_api as _api

pytestmark = pytest.mark.django_db
PID = "5f1a2b3c4d5e6f7a8b9c0d1e"
STUDY_ID = "60aabbccddeeff0011223344"
SESSION_ID = "70aabbccddeeff0011223344"


@pytest.fixture
def study():
    return make_live_study(
        systems=3, prompts=3, attention_check_rate=0, practice_comparisons=1,
        completion_redirect_url="https://app.prolific.com/submissions/complete",
    )  # fmt: skip


def _prolific(pid: str = PID, session: str = SESSION_ID) -> dict[str, str]:
    return {"PROLIFIC_PID": pid, "STUDY_ID": STUDY_ID, "SESSION_ID": session}


def _start(client: Client, study, params: dict[str, str] | None = None) -> Rater:
    return start_rater(client, study, params or _prolific())


def test_prolific_entry_stores_the_three_ids_after_consent(client: Client, study) -> None:
    response = client.get(f"/r/{study.slug}/", _prolific())
    assert response.status_code == 302 and response["Location"].endswith("/consent")
    assert not Rater.objects.exists()  # nothing stored before the consent decision
    consent = client.get(f"/r/{study.slug}/consent")
    assert b"I agree" in consent.content
    client.post(f"/r/{study.slug}/consent", {"decision": "agree"})
    rater = Rater.objects.get()
    ids = (rater.source, rater.external_id, rater.external_study_id, rater.external_session_id)
    assert ids == ("prolific", PID, STUDY_ID, SESSION_ID)
    assert rater.consented_at is not None


def test_returning_participant_resumes_in_another_browser(client: Client, study) -> None:
    rater = _start(client, study)
    pair = _api(client, study, "session", {}).json()["comparisons"][0]
    other_browser = Client()
    response = other_browser.get(f"/r/{study.slug}/", _prolific(session="80aabbccddeeff0011223344"))
    assert response["Location"].endswith("/compare")
    assert _api(other_browser, study, "session", {}).json()["comparisons"][0]["id"] == pair["id"]
    assert Rater.objects.count() == 1
    rater.refresh_from_db()
    assert rater.external_session_id == "80aabbccddeeff0011223344"


def test_prolific_identity_survives_a_detour_before_consent(client: Client, study) -> None:
    client.get(f"/r/{study.slug}/", _prolific())
    # Before deciding on consent, the participant opens another page by its URL; the
    # redirect to the entry page carries no ids.
    detour = client.get(f"/r/{study.slug}/compare", follow=True)
    assert detour.redirect_chain[-1][0].endswith("/consent")
    client.get(f"/r/{study.slug}/")
    client.post(f"/r/{study.slug}/consent", {"decision": "agree"})
    rater = Rater.objects.get()
    assert (rater.source, rater.external_id) == ("prolific", PID)
    # The same link later resumes that rater instead of making a second one.
    assert Client().get(f"/r/{study.slug}/", _prolific())["Location"].endswith("/instructions")
    assert Rater.objects.count() == 1


def test_the_session_cookie_holds_no_database_ids(client: Client, study) -> None:
    rater = _start(client, study)
    other = _start(Client(), study, _prolific(pid="ab" * 12))
    stored = dict(client.session)
    assert stored == {f"verdict:rater:{study.slug}": rater.session_token}
    assert rater.pk not in stored.values() and study.pk not in stored.values()
    assert len(rater.session_token) == 16 and rater.session_token != other.session_token
    # A forged value (another rater's pk) finds nobody.
    session = client.session
    session[f"verdict:rater:{study.slug}"] = other.pk
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = str(session.session_key)
    assert _api(client, study, "session").status_code == 403  # GET: read only


@pytest.mark.parametrize("pid", ["{{%PROLIFIC_PID%}}", "", "test", "preview-participant"])
def test_preview_and_placeholder_ids_are_never_counted(client: Client, study, pid: str) -> None:
    response = client.get(f"/r/{study.slug}/", {"PROLIFIC_PID": pid})
    assert response.status_code == 200 and b"preview" in response.content
    assert client.get(f"/r/{study.slug}/consent").status_code == 302
    assert not Rater.objects.exists()


def test_declining_consent_ends_with_the_no_consent_code(client: Client, study) -> None:
    client.get(f"/r/{study.slug}/", _prolific())
    asked = client.post(f"/r/{study.slug}/consent", {"decision": "decline"})
    assert asked.status_code == 200 and "Leave the study?" in asked.content.decode()
    assert not Rater.objects.exists()  # a slip of the finger decides nothing
    response = client.post(
        f"/r/{study.slug}/consent", {"decision": "decline", "confirm": "yes"}, follow=True
    )
    rater = Rater.objects.get()
    assert rater.outcome == RaterOutcome.NO_CONSENT
    page = response.content.decode()
    assert study.completion_code_no_consent in page
    assert f"cc={study.completion_code_no_consent}" in page
    # Coming back does not offer consent again.
    again = client.get(f"/r/{study.slug}/", _prolific())
    assert again["Location"].endswith("/done")


def test_stop_now_ends_with_the_partial_code_and_keeps_the_votes(client: Client, study) -> None:
    rater = _start(client, study)
    session = _api(client, study, "session", {}).json()
    pair = session["comparisons"][0]
    body = {"assignment": pair["id"], "answer": "left", "response_ms": 900}
    assert _api(client, study, "votes", {**body, "client_id": str(uuid.uuid4())}).status_code == 201
    compare = client.get(f"/r/{study.slug}/compare")
    assert "Stop now" in compare.content.decode()
    assert client.get(f"/r/{study.slug}/stop").status_code == 405
    done = client.post(f"/r/{study.slug}/stop", follow=True)
    rater.refresh_from_db()
    assert rater.outcome == RaterOutcome.STOPPED and rater.completed_at is not None
    assert study.completion_code_stopped in done.content.decode()
    assert f"cc={study.completion_code_stopped}" in done.content.decode()
    assert Vote.objects.filter(assignment__rater=rater).count() == 1  # kept
    assert not rater.assignments.filter(status=AssignmentStatus.SERVED).exists()  # released
    # Coming back shows the same end, not new pairs.
    assert client.get(f"/r/{study.slug}/", _prolific())["Location"].endswith("/done")


def test_reading_the_session_serves_nothing(client: Client, study) -> None:
    _start(client, study)
    for _ in range(3):
        assert client.get(f"/r/{study.slug}/compare").status_code == 200
        read = _api(client, study, "session")
        assert read.status_code == 200 and read.json()["comparisons"] == []
    assert not Assignment.objects.exists()  # GETs changed nothing
    served = _api(client, study, "session", {}).json()["comparisons"]
    assert served and Assignment.objects.count() == len(served)
    assert [c["id"] for c in _api(client, study, "session").json()["comparisons"]] == [
        c["id"] for c in served
    ]


def test_steps_cannot_be_skipped(client: Client, study) -> None:
    assert client.get(f"/r/{study.slug}/compare")["Location"].endswith(f"/r/{study.slug}/")
    client.get(f"/r/{study.slug}/", _prolific())
    client.post(f"/r/{study.slug}/consent", {"decision": "agree"})
    assert client.get(f"/r/{study.slug}/compare")["Location"].endswith("/instructions")
    assert client.get(f"/r/{study.slug}/done")["Location"].endswith("/instructions")
    assert _api(client, study, "votes", {}).status_code in (400, 404)


def test_not_live_studies_turn_new_raters_away(client: Client, study) -> None:
    study.status = StudyStatus.PAUSED
    study.save()
    response = client.get(f"/r/{study.slug}/")
    assert response.status_code == 200 and b"paused" in response.content
    assert not Rater.objects.exists()


def test_vote_round_trip_returns_the_next_pairs(client: Client, study) -> None:
    _start(client, study)
    session = _api(client, study, "session", {}).json()
    assert [c["practice"] for c in session["comparisons"]] == [True, False]
    practice = session["comparisons"][0]
    body = {
        "assignment": practice["id"],
        "answer": "left",
        "response_ms": 1800,
        "client_id": str(uuid.uuid4()),
    }
    response = _api(client, study, "votes", body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"vote", "feedback", "session"}
    assert data["feedback"]["expected"] in ("left", "right")
    assert data["session"]["comparisons"][0]["id"] == session["comparisons"][1]["id"]
    assert len(data["session"]["comparisons"]) == 2
    retry = _api(client, study, "votes", body)
    assert retry.status_code == 200 and retry.json()["vote"] == data["vote"]
    second = _api(client, study, "votes", {**body, "client_id": str(uuid.uuid4())})
    assert second.status_code == 409 and "already has your answer" in second.json()["detail"]


def test_bad_votes_are_4xx_with_a_message(client: Client, study) -> None:
    _start(client, study)
    pair = _api(client, study, "session", {}).json()["comparisons"][0]
    good = {
        "assignment": pair["id"],
        "answer": "left",
        "response_ms": 900,
        "client_id": str(uuid.uuid4()),
    }
    cases = [
        ({**good, "answer": "maybe"}, 400, "answer"),
        ({**good, "response_ms": -5}, 400, "response_ms"),
        ({**good, "client_id": "not-a-uuid"}, 400, "client_id"),
        ({**good, "assignment": "someone-elses"}, 404, "No such pair"),
    ]
    for body, status, words in cases:
        response = _api(client, study, "votes", body)
        assert response.status_code == status, body
        assert words in json.dumps(response.json())
    assert not Vote.objects.exists()


def test_votes_need_the_csrf_token(study) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.get(f"/r/{study.slug}/", _prolific())
    page = browser.get(f"/r/{study.slug}/consent")
    token = str(page.context["csrf_token"])
    browser.post(f"/r/{study.slug}/consent", {"decision": "agree", "csrfmiddlewaretoken": token})
    browser.post(f"/r/{study.slug}/instructions", {"csrfmiddlewaretoken": token})
    served = browser.post(
        f"/api/r/{study.slug}/session", "{}", content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    pair = served.json()["comparisons"][0]
    body = json.dumps(
        {
            "assignment": pair["id"],
            "answer": "left",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        }
    )
    url = f"/api/r/{study.slug}/votes"
    refused = browser.post(url, body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    accepted = browser.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_a_whole_session_ends_with_the_completion_redirect(client: Client, study) -> None:
    study.comparisons_per_session = 3
    study.save()
    _start(client, study)
    while True:
        session = _api(client, study, "session", {}).json()
        if session["finished"]:
            break
        pair = session["comparisons"][0]
        _api(
            client,
            study,
            "votes",
            {
                "assignment": pair["id"],
                "answer": "right",
                "response_ms": 700,
                "client_id": str(uuid.uuid4()),
            },
        )
    assert session["next_url"] == f"/r/{study.slug}/"
    assert client.get(session["next_url"])["Location"].endswith("/about-you")
    response = client.post(
        f"/r/{study.slug}/about-you",
        {"device": "phone", "age_band": "25-34", "screen": "390x844"},
        follow=True,
    )
    rater = Rater.objects.get()
    assert rater.outcome == RaterOutcome.COMPLETED
    assert rater.questionnaire == {"device": "phone", "age_band": "25-34", "screen": "390x844"}
    redirect = response.context["redirect_url"]
    parts = urlsplit(redirect)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "app.prolific.com",
        "/submissions/complete",
    )
    assert parse_qs(parts.query) == {"cc": [study.completion_code_completed]}
    assert Vote.objects.filter(assignment__rater=rater).count() == 1 + 3


@contextmanager
def _traced() -> Iterator[list[str]]:
    """The protocol messages on the test's PostgreSQL connection meanwhile, as libpq
    traces them ("F" from the client, "B" from the server): every round trip ends with
    the server's ReadyForQuery, BEGIN and COMMIT included."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    messages: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            pgconn.untrace()
            trace.seek(0)
            messages.extend(trace.read().splitlines())


def _round_trips(study, *, votes: int, warm: bool) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """What each vote POST sends PostgreSQL, one line per round trip: the statement (or
    the first of a pipeline) and the transaction status the server answered with ("I":
    none open, "T": in a transaction). Two votes first, so that the statements are
    prepared on the connection."""
    browser = Client()
    _start(browser, study, {})
    session = _api(browser, study, "session", {}).json()
    sent = []
    for i in range(votes + 2):
        if warm:
            for prompt_id in study.prompts.values_list("pk", flat=True):
                content.prompt_media(Study.objects.get(pk=study.pk), prompt_id)
        else:
            content.clear()
        body = {
            "assignment": session["comparisons"][0]["id"],
            "answer": "left",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        }
        with _traced() as messages:
            response = _api(browser, study, "votes", body)
        assert response.status_code == 201, response.content
        session = response.json()["session"]
        trips, first = [], None
        for line in messages:
            kind, _length, name, *rest = line.split("\t") + [""]
            if line.startswith("F") and first is None and name in ("Query", "Parse", "Bind"):
                first = f"{name} {rest[0]}"
            if line.startswith("B") and name == "ReadyForQuery":
                trips.append(f"{first} -> {rest[0].strip()}")
                first = None
        if i >= 2:
            sent.append(trips)
    return sent


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_vote_and_the_next_pair_take_two_round_trips_whatever_the_study_size() -> None:
    def study(systems: int, prompts: int):  # type: ignore[no-untyped-def]
        return make_live_study(
            systems=systems, prompts=prompts, attention_check_rate=0, practice_comparisons=0,
            comparisons_per_session=8,
        )  # fmt: skip

    small = _round_trips(study(3, 3), votes=4, warm=True)
    large = _round_trips(study(8, 40), votes=4, warm=True)
    # The rater with the session, the vote with the next pick and pair: no transaction
    # opened (every answer "I"), no BEGIN, no COMMIT.
    for trips in small + large:
        assert len(trips) == 2 and all(trip.endswith("-> I") for trip in trips), trips
    # What a served pair shows is cached per process: a cold cache reads the study's
    # criteria and material (four reads) and, once each, the media of every prompt the
    # session shows (one read).
    cold = _round_trips(study(8, 40), votes=1, warm=False)[0]
    media_reads = [
        trip for trip in cold if re.search(r'WHERE \("studies_asset"\."prompt_id" = ', trip)
    ]
    shown = "\n".join(trip[:160] for trip in cold)
    assert len(cold) == 2 + 4 + len(media_reads), shown
    assert 1 <= len(media_reads) <= 8 + 1, shown


@pytest.mark.django_db(transaction=True)
def test_a_stored_vote_is_acknowledged_when_a_listener_fails_after_commit(study) -> None:
    # Seen under load with the embedded broker: two processes declaring its queue at once
    # read a half-written file, and queueing the report refresh raised after the vote
    # had committed; the browser got a 500 for an answer that was stored.
    def broker_fails(sender, **kwargs) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("the broker could not take the task")

    votes_recorded.connect(broker_fails, dispatch_uid="test.broker_fails")
    try:
        browser = Client()
        _start(browser, study)
        pair = _api(browser, study, "session", {}).json()["comparisons"][0]
        body = {"assignment": pair["id"], "answer": "left", "response_ms": 900,
                "client_id": str(uuid.uuid4())}  # fmt: skip
        response = _api(browser, study, "votes", body)
    finally:
        votes_recorded.disconnect(dispatch_uid="test.broker_fails")
    assert response.status_code == 201, response.content
    stored = Vote.objects.get(client_id=body["client_id"])
    assert (stored.assignment.token, stored.answer) == (pair["id"], "left")
    assert response.json()["vote"]["client_id"] == body["client_id"]
