"""What a rater is served and can do with it: prompt variety, all criteria on one screen,
flags, practice per criterion, identical-pair traps."""

import uuid

import pytest
from django.test import Client

from studies import assignments
from studies.models import (
    Asset,
    Assignment,
    AssignmentStatus,
    Comparison,
    Flag,
    FlagDecision,
    KnownPair,
    Vote,
)
from studies.votes import record_vote
from tests.factories import (
    answer_pairs,
    make_judging_rater,
    make_live_study,
    rater_api,
    start_rater,
)

pytestmark = pytest.mark.django_db


def _vote_body(screen: dict, answer: str = "left", **extra) -> dict:  # type: ignore[type-arg]
    return {
        "assignment": screen["id"],
        "answer": answer,
        "response_ms": 1300,
        "client_id": str(uuid.uuid4()),
        **extra,
    }


def test_no_prompt_twice_in_a_row_and_no_more_than_its_fair_share() -> None:
    # 6 systems give 15 pairs per prompt: without the rule one prompt could fill a session.
    study = make_live_study(
        systems=6, prompts=4, comparisons_per_session=8,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip
    for _ in range(6):
        rater = make_judging_rater(study)
        answer_pairs(rater)
        prompts = list(
            rater.assignments.filter(kind="comparison")
            .order_by("pk")
            .values_list("prompt_id", flat=True)
        )
        assert len(prompts) == 8
        assert all(a != b for a, b in zip(prompts, prompts[1:], strict=False)), prompts
        assert max(prompts.count(p) for p in set(prompts)) <= 2  # 8 pairs over 4 prompts


def test_a_small_pool_is_still_used_up_when_variety_cannot_hold() -> None:
    # One prompt only: "no prompt twice in a row" must give way, not end the session.
    study = make_live_study(
        systems=4, prompts=1, comparisons_per_session=6,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip
    assert answer_pairs(make_judging_rater(study)) == 6


def test_all_criteria_on_one_screen_store_one_vote_each_with_one_response_time() -> None:
    study = make_live_study(
        systems=3, prompts=2, criteria=2, criteria_on_one_screen=True,
        attention_check_rate=0, practice_comparisons=0, comparisons_per_session=3,
    )  # fmt: skip
    browser = Client()
    start_rater(browser, study)
    session = rater_api(browser, study, "session", {}).json()
    screen = session["comparisons"][0]
    assert [q["question"] for q in screen["questions"]] == list(
        study.criteria.order_by("order").values_list("question", flat=True)
    )
    tokens = [q["id"] for q in screen["questions"]]
    rows = Assignment.objects.filter(token__in=tokens).select_related("comparison")
    # The same pair with the same sides, one comparison per criterion.
    assert len({(a.left_asset_id, a.right_asset_id) for a in rows}) == 1
    assert len({a.criterion_id for a in rows if a.comparison}) == 2
    partial = {
        "answers": [{"assignment": tokens[0], "answer": "left"}],
        "response_ms": 2000,
        "client_id": str(uuid.uuid4()),
    }
    response = rater_api(browser, study, "votes", partial)
    assert response.status_code == 400 and "every question" in response.json()["detail"]
    assert not Vote.objects.exists()
    body = {
        "answers": [
            {"assignment": tokens[0], "answer": "left"},
            {"assignment": tokens[1], "answer": "right"},
        ],
        "response_ms": 2000,
        "client_id": str(uuid.uuid4()),
    }
    first = rater_api(browser, study, "votes", body)
    assert first.status_code == 201, first.content
    votes = Vote.objects.filter(assignment__token__in=tokens)
    assert sorted(votes.values_list("answer", "response_ms")) == [
        ("left", 2000),
        ("right", 2000),
    ]
    retry = rater_api(browser, study, "votes", body)
    assert retry.status_code == 200 and retry.json()["vote"]["answers"] == {
        tokens[0]: "left",
        tokens[1]: "right",
    }
    assert Vote.objects.count() == 2
    # Sibling comparisons stay in step: the same load and the same counterbalance.
    for comparison in Comparison.objects.filter(study=study, criterion__order=0):
        sibling = Comparison.objects.get(
            study=study,
            prompt=comparison.prompt,
            system_a=comparison.system_a,
            system_b=comparison.system_b,
            criterion__order=1,
        )
        assert (sibling.shown_a_left, sibling.shown_b_left) == (
            comparison.shown_a_left,
            comparison.shown_b_left,
        )


def test_a_flagged_pair_is_replaced_and_its_media_withheld_until_reviewed() -> None:
    study = make_live_study(
        systems=3, prompts=2, attention_check_rate=0, practice_comparisons=0,
        comparisons_per_session=6,
    )  # fmt: skip
    browser = Client()
    start_rater(browser, study)
    session = rater_api(browser, study, "session", {}).json()
    screen = session["comparisons"][0]
    assignment = Assignment.objects.select_related("left_asset").get(token=screen["id"])
    bad = rater_api(browser, study, "flags", {"assignment": screen["id"], "reason": "rude"})
    assert bad.status_code == 400 and "reason" in bad.json()
    response = rater_api(
        browser,
        study,
        "flags",
        {"assignment": screen["id"], "reason": "disturbing", "side": "left"},
    )
    assert response.status_code == 201, response.content
    after = response.json()["session"]["comparisons"]
    assert screen["id"] not in [s["id"] for s in after] and len(after) == 2
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.FLAGGED and not assignment.votes.exists()
    flag = Flag.objects.get(assignment=assignment)
    assert (flag.reason, flag.side, flag.decision) == ("disturbing", "left", "")
    withheld = assignment.left_asset
    withheld.refresh_from_db()
    assert withheld.withheld and list(flag.assets.all()) == [withheld]
    # The comparison was given back; nobody is shown the withheld medium again.
    comparison = Comparison.objects.get(assignments=assignment)
    assert comparison.shown_a_left + comparison.shown_b_left == 0
    for _ in range(6):
        answer_pairs(make_judging_rater(study))
    shown = Assignment.objects.exclude(pk=assignment.pk)
    assert not shown.filter(left_asset=withheld).exists()
    assert not shown.filter(right_asset=withheld).exists()
    # A flag on a pair no longer on screen is refused.
    again = rater_api(browser, study, "flags", {"assignment": screen["id"], "reason": "broken"})
    assert again.status_code == 409
    # Cleared by a researcher: shown again.
    assignments.review_flags(flags=[flag], decision=FlagDecision.CLEARED)
    withheld.refresh_from_db()
    assert not withheld.withheld
    assert Comparison.objects.filter(study=study, available=False).count() == 0


def test_practice_teaches_each_criterion_with_material_known_for_that_question() -> None:
    study = make_live_study(
        systems=3, prompts=2, criteria=2, attention_check_rate=0, practice_comparisons=2,
    )  # fmt: skip
    match, quality = study.criteria.order_by("order")
    match.copy_is_known_worse = False
    match.question = "Which image matches the prompt better?"
    match.save()
    outputs = list(Asset.objects.outputs().filter(system__study=study).order_by("pk"))
    better, worse = outputs[0], next(a for a in outputs[1:] if a.prompt_id == outputs[0].prompt_id)
    KnownPair.objects.create(
        study=study,
        criterion=match,
        prompt=better.prompt,
        better=better,
        worse=worse,
        explanation="The better one shows the red circle the prompt names; the other has none.",
    )
    browser = Client()
    start_rater(browser, study)
    session = rater_api(browser, study, "session", {}).json()
    seen = {}
    for _ in range(2):
        screen = session["comparisons"][0]
        assert screen["practice"]
        row = Assignment.objects.get(token=screen["id"])
        wrong = "right" if row.expected_answer == "left" else "left"
        response = rater_api(browser, study, "votes", _vote_body(screen, wrong)).json()
        seen[screen["question"]] = response["feedback"]
        session = response["session"]
    assert set(seen) == {match.question, quality.question}
    taught = seen[match.question]
    assert not taught["correct"] and "red circle" in taught["explanation"]
    copy = seen[quality.question]
    assert quality.question in copy["explanation"] and "damaged copy" in copy["explanation"]


def test_identical_pair_traps_pass_a_tie_and_fail_a_side() -> None:
    study = make_live_study(
        systems=3, prompts=4, comparisons_per_session=12, attention_check_rate=0.5,
        practice_comparisons=0, max_failed_attention_checks=10,
    )  # fmt: skip
    rater = make_judging_rater(study)
    answer_pairs(rater)
    traps = rater.assignments.filter(kind="attention", expected_answer="tie")
    assert traps.exists(), "a check rate of one half should draw an identical pair"
    for trap in traps:
        assert trap.left_asset_id == trap.right_asset_id
        assert assignments.passes(trap, "tie") and assignments.passes(trap, "both_bad")
        assert not assignments.passes(trap, "left")


def test_a_reused_client_id_on_a_screen_of_several_questions_is_refused() -> None:
    study = make_live_study(
        systems=3, prompts=2, criteria=2, criteria_on_one_screen=True,
        attention_check_rate=0, practice_comparisons=0,
    )  # fmt: skip
    rater = make_judging_rater(study)
    state = assignments.session_state(rater=rater)
    first, second = state.screens
    client_id = uuid.uuid4()
    record_vote(
        rater=rater,
        answers=[(row.token, "left") for row in first],
        response_ms=900,
        client_id=client_id,
    )
    from studies.exceptions import ClientIdReused

    with pytest.raises(ClientIdReused):
        record_vote(
            rater=rater,
            answers=[(row.token, "left") for row in second],
            response_ms=900,
            client_id=client_id,
        )
    assert not Vote.objects.filter(assignment__in=second).exists()
