"""A participant's whole way through, from outside: only URLs and JSON, as a browser sees
them. Afterwards the database must hold exactly what was answered, under the right
participant."""

import uuid

import pytest
from django.test import Client

from studies.models import Assignment, Flag, Rater, RaterOutcome, RaterSource, Vote
from tests.factories import make_live_study, rater_api

pytestmark = pytest.mark.django_db
PROLIFIC = {
    "PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e",
    "STUDY_ID": "60aabbccddeeff0011223344",
    "SESSION_ID": "70aabbccddeeff0011223344",
}


def _answer(browser: Client, study, screen: dict, answer: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = {
        "assignment": screen["id"],
        "answer": answer,
        "response_ms": 1700,
        "client_id": str(uuid.uuid4()),
    }
    response = rater_api(browser, study, "votes", body)
    assert response.status_code == 201, response.content
    # A network retry of the same answer is acknowledged without a second vote.
    retry = rater_api(browser, study, "votes", body)
    assert retry.status_code == 200 and retry.json()["vote"]["answer"] == answer
    return response.json()  # type: ignore[no-any-return]


def test_prolific_walk_with_practice_flag_second_device_and_stop() -> None:
    study = make_live_study(
        systems=3, prompts=4, practice_comparisons=2, attention_check_rate=0,
        comparisons_per_session=10,
    )  # fmt: skip
    entry = f"/r/{study.slug}/"
    phone = Client()
    assert phone.get(entry, PROLIFIC)["Location"].endswith("/consent")
    # A detour before deciding keeps the participant's identity.
    assert phone.get(f"/r/{study.slug}/compare").status_code == 302
    assert phone.get(f"/r/{study.slug}/consent").status_code == 200
    assert phone.post(f"/r/{study.slug}/consent", {"decision": "agree"}).status_code == 302
    assert phone.post(f"/r/{study.slug}/instructions").status_code == 302
    assert phone.get(f"/r/{study.slug}/compare").status_code == 200
    session = rater_api(phone, study, "session", {}).json()
    answered: dict[str, str] = {}
    for _ in range(2):  # practice, with feedback
        screen = session["comparisons"][0]
        assert screen["practice"]
        body = _answer(phone, study, screen, "left")
        assert body["feedback"]["question"] == screen["question"]
        answered[screen["id"]] = "left"
        session = body["session"]
    for answer in ("left", "right", "tie"):
        screen = session["comparisons"][0]
        assert not screen["practice"]
        answered[screen["id"]] = answer
        session = _answer(phone, study, screen, answer)["session"]
    flagged = session["comparisons"][0]["id"]
    response = rater_api(
        phone, study, "flags", {"assignment": flagged, "reason": "broken", "side": "both"}
    )
    assert response.status_code == 201
    held = [s["id"] for s in response.json()["session"]["comparisons"]]
    assert flagged not in held and len(held) == 2

    # The same Prolific link on a laptop resumes the same session, with the same pairs.
    laptop = Client()
    resumed = laptop.get(entry, PROLIFIC)
    assert resumed["Location"].endswith("/compare")
    session = rater_api(laptop, study, "session").json()
    assert [s["id"] for s in session["comparisons"]] == held
    assert session["progress"]["done"] == 3 and session["progress"]["practice_done"] == 2
    for answer in ("right", "left"):
        screen = session["comparisons"][0]
        answered[screen["id"]] = answer
        session = _answer(laptop, study, screen, answer)["session"]
    stopped = laptop.post(f"/r/{study.slug}/stop")
    assert stopped["Location"].endswith("/done")
    done = laptop.get(f"/r/{study.slug}/done")
    assert study.completion_code_stopped in done.content.decode()
    # The phone, still open, can no longer answer.
    late = session["comparisons"][0]
    refused = rater_api(
        phone,
        study,
        "votes",
        {
            "assignment": late["id"],
            "answer": "left",
            "response_ms": 900,
            "client_id": str(uuid.uuid4()),
        },
    )
    assert refused.status_code == 409

    rater = Rater.objects.get()
    assert (rater.source, rater.external_id, rater.external_session_id) == (
        RaterSource.PROLIFIC,
        PROLIFIC["PROLIFIC_PID"],
        PROLIFIC["SESSION_ID"],
    )
    assert rater.outcome == RaterOutcome.STOPPED
    stored = dict(Vote.objects.values_list("assignment__token", "answer"))
    assert stored == answered
    assert Vote.objects.filter(assignment__rater=rater).count() == len(answered) == 7
    flag = Flag.objects.get()
    assert flag.assignment.token == flagged and not flag.assignment.votes.exists()
    assert not Assignment.objects.filter(status="served").exists()  # all given back
