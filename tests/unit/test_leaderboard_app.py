"""The study leaderboard in the app: loader, page, API and simulated raters."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client

from analysis import tasks as analysis_tasks
from analysis.core.types import Outcome
from analysis.loaders import study_votes
from analysis.reports import ReportOptions, build_report
from analysis.simulated import add_simulated_votes
from studies.models import Rater, RaterSource, Vote
from tests.factories import answer_pairs, make_judging_rater, make_live_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):  # type: ignore[no-untyped-def]
    """Tasks the app enqueues, recorded instead of sent (the worker test sends them)."""
    sent: list[tuple[str, dict]] = []
    cache.clear()  # the debounce keys of earlier tests
    monkeypatch.setattr(
        analysis_tasks.build_report,
        "delay",
        lambda **kw: sent.append((analysis_tasks.build_report.name, kw)),
    )
    monkeypatch.setattr(
        analysis_tasks.refresh_reports,
        "apply_async",
        lambda kwargs, countdown: sent.append((analysis_tasks.refresh_reports.name, kwargs)),
    )
    return sent


@pytest.fixture
def study():
    return make_live_study(
        systems=3, prompts=4, criteria=2, comparisons_per_session=8, attention_check_rate=0.1
    )


def _strengths(study) -> dict[str, float]:  # type: ignore[no-untyped-def]
    names = list(study.systems.order_by("pk").values_list("name", flat=True))
    return {names[0]: 1.5, names[1]: 0.0, names[2]: -1.5}


def test_loader_puts_the_left_system_first_and_maps_answers(study) -> None:  # type: ignore[no-untyped-def]
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=3)  # practice pairs are not comparisons
    rater.refresh_from_db()
    pair = (
        rater.assignments.filter(kind="comparison", status="answered")
        .select_related("left_asset", "right_asset")
        .first()
    )
    assert pair is not None
    vote = pair.votes.get(is_current=True)
    loaded = study_votes(study=study).table
    names = loaded.systems
    row = int(np.flatnonzero(loaded.rater >= 0)[0])
    assert names[loaded.first[row]] == pair.left_asset.system.name
    assert names[loaded.second[row]] == pair.right_asset.system.name
    assert (
        loaded.outcome[row]
        == {
            "left": Outcome.FIRST,
            "right": Outcome.SECOND,
            "tie": Outcome.TIE,
            "both_bad": Outcome.BOTH_BAD,
        }[vote.answer]
    )
    assert loaded.position_known


def test_simulated_raters_vote_through_the_scheduler_and_are_marked(study) -> None:  # type: ignore[no-untyped-def]
    run = add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=12, careless_share=0.0, seed=3
    )
    simulated = Rater.objects.filter(study=study, source=RaterSource.SIMULATED)
    assert simulated.count() == 12 and run.votes >= 12 * 8
    assert all(r.outcome for r in simulated)
    loaded = study_votes(study=study)
    assert loaded.simulated.all() and loaded.table.labels["source"].values == ("simulated",)


def _build(study, **choices) -> None:  # type: ignore[no-untyped-def]
    """Build the reports the page reads, as the background task does."""
    criteria = [c.key for c in study.criteria.order_by("order", "pk")]
    build_report(study=study, options=ReportOptions(criterion=criteria[0], **choices))


def test_leaderboard_page_renders_the_stored_report_without_fitting(
    study, admin_client: Client, enqueued, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=30, careless_share=0.0, seed=1
    )
    _build(study)

    def no_fitting(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a page view fitted a model")

    monkeypatch.setattr("analysis.core.bt.fit_bradley_terry", no_fitting)
    monkeypatch.setattr("analysis.core.leaderboard.fit_bradley_terry", no_fitting)
    monkeypatch.setattr("analysis.reports.leaderboard", no_fitting)
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    assert page.status_code == 200
    board = page.context["board"]
    assert [row.system for row in board.rows] == list(_strengths(study))
    html = page.content.decode()
    assert "simulated raters" in html and "Up to date." in html and "Built" in html
    for row in board.rows:
        assert row.elo_low <= row.elo <= row.elo_high
    assert board.uncertainty.method in ("sandwich", "vote")
    assert enqueued == []  # a fresh report asks for nothing


def test_page_without_a_report_asks_for_one_and_says_so(
    study, admin_client: Client, enqueued
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=4, seed=1)
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    assert page.status_code == 200 and "being built" in page.content.decode()
    admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")  # debounced
    assert [name for name, _ in enqueued] == ["analysis.build_report"]
    assert admin_client.get(f"/api/studies/{study.slug}/leaderboard").status_code == 202
    name, kwargs = enqueued[0]
    analysis_tasks.build_report(**kwargs)  # what the worker runs
    assert admin_client.get(f"/api/studies/{study.slug}/leaderboard").status_code == 200


def test_a_new_vote_makes_the_report_stale_until_the_refresh(
    study, admin_client: Client, enqueued, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=4, seed=7)
    _build(study)
    before = admin_client.get(f"/api/studies/{study.slug}/leaderboard").json()["stamp"]
    assert before["stale"] is False
    with django_capture_on_commit_callbacks(execute=True):
        answered = answer_pairs(make_judging_rater(study), limit=6)
    refresh = [kwargs for name, kwargs in enqueued if name == "analysis.refresh_reports"]
    assert len(refresh) == 1 and refresh[0]["study_id"] == study.pk  # debounced: one task
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    assert page.context["state"].new_votes == answered
    assert "new votes since" in page.content.decode()
    analysis_tasks.refresh_reports(**refresh[0])
    after = admin_client.get(f"/api/studies/{study.slug}/leaderboard").json()["stamp"]
    assert after["stale"] is False and after["built_at"] != before["built_at"]
    # The report is of the first criterion: the new rater's comparisons count where they
    # were served under it (which ones depend on the scheduler's shuffle), and the hash
    # moves exactly when they do.
    criterion = study.criteria.order_by("order", "pk")[0]
    counted = Vote.objects.filter(
        assignment__study=study, assignment__kind="comparison", assignment__criterion=criterion,
        is_current=True,
    ).count()  # fmt: skip
    assert after["votes_used"] == counted
    moved = after["votes_used"] != before["votes_used"]
    assert (after["data_hash"] != before["data_hash"]) == moved


def test_rebuild_button_enqueues_a_build(study, admin_client: Client, enqueued) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(f"/analysis/studies/{study.slug}/leaderboard/rebuild")
    assert response.status_code == 302
    assert [name for name, _ in enqueued] == ["analysis.build_report"]
    assert (
        admin_client.get(f"/analysis/studies/{study.slug}/leaderboard/rebuild").status_code == 405
    )


def test_simulated_votes_can_be_left_out(study, admin_client: Client, enqueued) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=6, seed=2)
    real = make_judging_rater(study)
    answer_pairs(real)
    _build(study, include_simulated=False)
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard?simulated=exclude")
    analysis = page.context["analysis"]
    criterion = study.criteria.order_by("order").first()
    real_votes = real.assignments.filter(
        kind="comparison", criterion=criterion, status="answered"
    ).count()
    assert analysis.leaderboard.n_votes == real_votes and analysis.simulated_included is False
    # One rater: no interval by rater, and the page says why.
    assert analysis.leaderboard.uncertainty.method == "vote"
    assert "too few for intervals by rater" in page.content.decode()
    only_simulated = make_live_study(systems=2, prompts=1)
    add_simulated_votes(study=only_simulated, strengths={}, n_raters=2, seed=4)
    _build(only_simulated, include_simulated=False)
    empty = admin_client.get(
        f"/analysis/studies/{only_simulated.slug}/leaderboard?simulated=exclude"
    )
    assert "No votes to rank yet" in empty.content.decode()
    assert (
        admin_client.get(
            f"/api/studies/{only_simulated.slug}/leaderboard?simulated=exclude"
        ).status_code
        == 404
    )


def test_flagged_raters_can_be_left_out(study, admin_client: Client, enqueued) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=20, careless_share=0.3, seed=5
    )
    _build(study, exclude_flagged=True)
    analysis = admin_client.get(
        f"/analysis/studies/{study.slug}/leaderboard?flagged=exclude"
    ).context["analysis"]
    flagged = analysis.flagged_raters
    careless = set(Rater.objects.filter(study=study).values_list("pk", flat=True))
    assert flagged and {f.rater_id for f in flagged} <= careless
    assert all(f.flags for f in flagged)
    assert analysis.excluded_raters == len(flagged) and analysis.excluded_votes > 0


def test_api_returns_the_stored_report_to_staff_only(
    study, admin_client: Client, client: Client, enqueued
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=8, seed=6)
    _build(study)
    url = f"/api/studies/{study.slug}/leaderboard"
    data = admin_client.get(url).json()
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    rows = data["report"]["leaderboard"]["rows"]
    assert [r["system"] for r in rows] == [r.system for r in page.context["board"].rows]
    assert data["stamp"]["data_hash"] == page.context["report"].data_hash
    assert data["stamp"]["software"].startswith("verdict ")
    assert client.get(url).status_code == 403
    user = get_user_model().objects.create_user("plain", password="x")
    client.force_login(user)
    assert client.get(url).status_code == 403
    assert client.get(f"/analysis/studies/{study.slug}/leaderboard").status_code == 302


def test_simulate_votes_command_is_idempotent_with_a_limit(study) -> None:  # type: ignore[no-untyped-def]
    names = list(_strengths(study))
    call_command(
        "simulate_votes",
        study.slug,
        "--raters",
        "3",
        "--strength",
        f"{names[0]}=1.0",
        "--if-fewer-than",
        "1",
        "--seed",
        "1",
    )
    call_command("simulate_votes", study.slug, "--raters", "3", "--if-fewer-than", "1")
    assert Rater.objects.filter(study=study, source=RaterSource.SIMULATED).count() == 3
    with pytest.raises(CommandError, match="unknown systems"):
        call_command("simulate_votes", study.slug, "--strength", "Nope=1")
    with pytest.raises(CommandError, match="expected SYSTEM=NUMBER"):
        call_command("simulate_votes", study.slug, "--strength", f"{names[0]}=high")


def test_loader_units_are_the_comparisons_judged(study) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=12, careless_share=0.0, seed=5
    )
    units = study_votes(study=study).table.unit
    comparisons = np.array(
        Vote.objects.filter(assignment__study=study, assignment__kind="comparison", is_current=True)
        .order_by("pk")
        .values_list("assignment__comparison_id", flat=True)
    )
    # Two votes share a unit exactly when they judged the same prompt, criterion and pair.
    same_unit = units[:, None] == units[None, :]
    same_comparison = comparisons[:, None] == comparisons[None, :]
    assert np.array_equal(same_unit, same_comparison)
    assert np.unique(comparisons).size < comparisons.size  # some were judged twice


def test_media_raters_flagged_are_counted_in_the_report(admin_client: Client) -> None:
    from studies import assignments
    from studies.models import Flag

    study = make_live_study(systems=3, prompts=4, practice_comparisons=0, attention_check_rate=0)
    rater = make_judging_rater(study)
    screen = assignments.session_state(rater=rater).screens[0]
    with transaction.atomic():
        desk = assignments.open_desk(slug=study.slug, session_token=rater.session_token)
        assignments.flag(desk, screen[0].token, "broken", "right")
    flagged = screen[0].right_asset
    answer_pairs(rater)
    _build(study)
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    rows = {m.system: m for m in page.context["analysis"].media_flags}
    assert rows[flagged.system.name].flagged == 1 and rows[flagged.system.name].broken == 1
    assert rows[flagged.system.name].withheld == 1
    assert sum(m.flagged for m in rows.values()) == 1 == Flag.objects.count()
    assert "Media raters reported" in page.content.decode()


def test_one_rater_and_one_vote_are_said_in_the_singular(admin_client: Client) -> None:
    study = make_live_study(systems=2, prompts=1, criteria=1, practice_comparisons=0,
                            attention_check_rate=0)  # fmt: skip
    answer_pairs(make_judging_rater(study), limit=1)
    build_report(study=study, options=ReportOptions(criterion=study.criteria.get().key))
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard").content.decode()
    assert "1 vote from 1 rater" in page and "1 votes" not in page and "1 raters" not in page


def test_simulated_raters_agree_as_people_do_on_media_with_a_clear_better_side() -> None:
    """Each output has its own quality, shared by every rater: raters agree well above
    chance (the demo once showed α = −0.18, which would confuse a first reader)."""
    from analysis.core.leaderboard import rater_agreement

    def alpha(item_sd: float) -> float:
        study = make_live_study(systems=4, prompts=6, criteria=1, comparisons_per_session=12,
                                votes_per_comparison=4, practice_comparisons=0,
                                attention_check_rate=0)  # fmt: skip
        names = list(study.systems.order_by("pk").values_list("name", flat=True))
        add_simulated_votes(
            study=study,
            strengths=dict(zip(names, (1.2, 0.5, -0.4, -1.3), strict=True)),
            n_raters=24,
            careless_share=0.0,
            item_sd=item_sd,
            seed=1,
        )
        return rater_agreement(study_votes(study=study).table).krippendorff_alpha.value

    shared, independent = alpha(1.5), alpha(0.0)
    # Without the outputs' own quality, votes are independent coins: α near zero. Which
    # pairs each rater gets is random (the comparisons' shuffle, the session tokens): over
    # 8 runs each, shared gave 0.19-0.30 and independent -0.04-0.06, so the bounds sit
    # about three spreads from either.
    assert shared > 0.15 and independent < 0.1 and shared > independent + 0.1


def test_the_loader_judges_attention_checks_by_the_sessions_own_rule() -> None:
    """An identical-pair trap passes with a tie or "both bad" (studies.assignments.passes),
    in the report's rater quality as in the live session; a known-answer check passes
    only with its answer."""
    from studies.models import Asset
    from tests.factories import make_assignment, make_vote

    study = make_live_study(practice_comparisons=0, attention_check_rate=0)
    rater = make_judging_rater(study)
    answer_pairs(rater, limit=2)
    outputs = list(Asset.objects.outputs().filter(system__study=study).order_by("pk"))
    same = outputs[0]
    other = next(a for a in outputs if a.prompt_id == same.prompt_id and a.pk != same.pk)
    checks = [
        (dict(left_asset=same, right_asset=same, expected_answer="tie"), "both_bad", True),
        (dict(left_asset=same, right_asset=same, expected_answer="tie"), "left", False),
        (dict(left_asset=same, right_asset=other, expected_answer="left"), "right", False),
        (dict(left_asset=same, right_asset=other, expected_answer="left"), "left", True),
    ]
    for fields, answer, _ in checks:
        row = make_assignment(
            rater, kind="attention", prompt=same.prompt, status="answered", **fields
        )
        make_vote(row, answer=answer)
    loaded = study_votes(study=study)
    assert loaded.check_passed.tolist() == [passed for _, _, passed in checks]
