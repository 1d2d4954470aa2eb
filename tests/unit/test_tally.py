"""The rater's tally (studies.tally), kept with each vote, against the same sum computed
from the session's pairs, through every way a pair can go."""

import importlib
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from studies.assignments import sweep_expired
from studies.models import Assignment, AssignmentStatus, Rater, Study
from studies.tally import TALLY_COLUMNS, Tally, tally_of
from tests.factories import make_live_study, start_rater

pytestmark = pytest.mark.django_db


def _recomputed(rater: Rater) -> Tally:
    return tally_of(Assignment.objects.filter(rater=rater).values_list(*TALLY_COLUMNS))


def _kept(rater: Rater) -> Tally:
    rater.refresh_from_db()
    return Tally.from_json(rater.tally)


def _api(client: Client, study: Study, what: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/r/{study.slug}/{what}", json.dumps(body), content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    return response.json()  # type: ignore[no-any-return]


def _vote(client: Client, study: Study, screen: dict[str, Any], **extra: Any) -> dict[str, Any]:
    known = dict(Assignment.objects.values_list("token", "expected_answer"))
    answers = [
        {"assignment": q["id"], "answer": known[q["id"]] or "left"} for q in screen["questions"]
    ]
    body = {"answers": answers, "response_ms": 800, "client_id": str(uuid.uuid4()), **extra}
    return _api(client, study, "votes", body)["session"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("one_screen", [False, True])
def test_the_kept_tally_is_the_sum_of_the_pairs_whatever_happens_to_them(
    one_screen: bool,
) -> None:
    study = make_live_study(
        systems=4, prompts=3, criteria=2 if one_screen else 1, criteria_on_one_screen=one_screen,
        attention_check_rate=0.2, practice_comparisons=2, comparisons_per_session=10,
        assignment_timeout_minutes=5,
    )  # fmt: skip
    client = Client()
    rater = start_rater(client, study)
    session = _api(client, study, "session", {})
    steps = 0
    while not session["finished"] and steps < 30:
        steps += 1
        screen = session["comparisons"][0]
        if steps == 4:  # a correction adds no screen
            session = _vote(client, study, screen)
            before = _kept(rater)
            last = session["comparisons"]
            _vote(client, study, screen, correction=True)
            assert _kept(rater) == before
            session = _api(client, study, "session", {})
            assert session["comparisons"] == last
        elif steps == 6:  # a load failure gives the screen back
            body = {"assignment": screen["id"], "detail": "decode error"}
            session = _api(client, study, "load-failures", body)["session"]
        elif steps == 8:  # so does a flag
            body = {"assignment": screen["id"], "reason": "broken", "side": "both"}
            session = _api(client, study, "flags", body)["session"]
        elif steps == 10:  # answered after the sweeper gave it back: counted once
            open_rows = Assignment.objects.filter(rater=rater, status=AssignmentStatus.SERVED)
            open_rows.update(expires_at=timezone.now() - timedelta(minutes=1))
            assert sweep_expired(study=study) > 0
            session = _vote(client, study, screen)
        else:
            session = _vote(client, study, screen)
        kept = _kept(rater)
        assert kept == _recomputed(rater)
        assert kept.answered(["practice"]) == session["progress"]["practice_done"]
        assert kept.answered(["comparison", "attention"]) == session["progress"]["done"]
    assert session["finished"]
    kept = _kept(rater)
    assert kept.answered(["practice"]) == 2
    assert kept.screens["attention"] > 0
    assert sum(kept.prompts.values()) == kept.screens["comparison"] >= 8


def test_a_tally_counts_each_screen_once_and_keeps_the_latest_comparison() -> None:
    tally = Tally().with_screen(first_pk=9, kind="comparison", prompt_id=3)
    tally = tally.with_screen(first_pk=5, kind="comparison", prompt_id=4)  # answered late
    tally = tally.with_screen(first_pk=11, kind="practice", prompt_id=4)
    assert tally.last == (9, 3)
    assert tally.prompts == {3: 1, 4: 1}
    assert tally.answered(["comparison", "practice"]) == 3
    assert Tally.from_json(json.loads(json.dumps(tally.to_json()))) == tally
    # Two pairs of one screen (all criteria on one screen) are one screen.
    rows = [
        (20, "comparison", "answered", "tok20", "tok20", 7),
        (21, "comparison", "answered", "tok20", "tok21", 7),
        (22, "comparison", "expired", "", "tok22", 8),
        (23, "attention", "answered", "", "tok23", 8),
    ]
    assert tally_of(rows) == Tally(
        screens={"comparison": 1, "attention": 1}, prompts={7: 1}, last=(20, 7)
    )


def test_the_migration_sums_up_sessions_under_way() -> None:
    study = make_live_study(
        systems=3, prompts=3, criteria=1, attention_check_rate=0, practice_comparisons=1,
        comparisons_per_session=6,
    )  # fmt: skip
    client = Client()
    rater = start_rater(client, study)
    session = _api(client, study, "session", {})
    for _ in range(4):
        session = _vote(client, study, session["comparisons"][0])
    expected = _kept(rater)
    assert expected.answered(["practice", "comparison"]) == 4
    Rater.objects.update(tally={})
    migration = importlib.import_module("studies.migrations.0018_lean_session_tally")
    migration.fill_tallies(apps, None)
    assert _kept(rater) == expected
