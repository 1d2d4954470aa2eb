"""The study leaderboard in the app: loader, page, API and simulated raters."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from analysis.core.types import Outcome
from analysis.loaders import study_votes
from analysis.simulated import add_simulated_votes
from studies.models import Rater, RaterSource, Vote
from tests.factories import answer_pairs, make_judging_rater, make_live_study

pytestmark = pytest.mark.django_db


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


def test_leaderboard_page_recovers_the_order_and_marks_simulated_votes(
    study, admin_client: Client
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=30, careless_share=0.0, seed=1
    )
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard")
    assert page.status_code == 200
    board = page.context["board"]
    assert [row["system"] for row in board["systems"]] == list(_strengths(study))
    assert "simulated raters" in page.content.decode()
    for row in board["systems"]:
        assert row["elo_low"] <= row["elo"] <= row["elo_high"]
    assert board["interval"].startswith("rater bootstrap")
    second = study.criteria.order_by("order")[1].key
    other = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard?criterion={second}")
    assert other.context["choices"].criterion.key == second
    assert other.context["board"]["criterion"] == second


def test_simulated_votes_can_be_left_out(study, admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=6, seed=2)
    real = make_judging_rater(study)
    answer_pairs(real)
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard?simulated=exclude")
    board = page.context["board"]
    criterion = study.criteria.order_by("order").first()
    real_votes = real.assignments.filter(
        kind="comparison", criterion=criterion, status="answered"
    ).count()
    assert board["n_votes"] == real_votes and board["simulated"]["included"] is False
    only_simulated = make_live_study(systems=2, prompts=1)
    add_simulated_votes(study=only_simulated, strengths={}, n_raters=2, seed=4)
    empty = admin_client.get(
        f"/analysis/studies/{only_simulated.slug}/leaderboard?simulated=exclude"
    )
    assert "No votes to rank yet" in empty.content.decode()


def test_flagged_raters_can_be_left_out(study, admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(
        study=study, strengths=_strengths(study), n_raters=20, careless_share=0.3, seed=5
    )
    board = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard?flagged=exclude").context[
        "board"
    ]
    flagged = board["quality"]["flagged"]
    careless = set(Rater.objects.filter(study=study).values_list("pk", flat=True))
    assert flagged and {f["rater"] for f in flagged} <= careless
    assert all(f["flags"] for f in flagged)
    assert board["excluded"]["raters"] == len(flagged) and board["excluded"]["votes"] > 0


def test_api_returns_the_same_leaderboard_to_staff_only(
    study, admin_client: Client, client: Client
) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=8, seed=6)
    url = f"/api/studies/{study.slug}/leaderboard"
    data = admin_client.get(url).json()
    page = admin_client.get(f"/analysis/studies/{study.slug}/leaderboard").context["board"]
    assert [r["system"] for r in data["systems"]] == [r["system"] for r in page["systems"]]
    assert data["stamp"]["data_hash"] == page["stamp"]["data_hash"]
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


def test_a_real_vote_changes_the_data_hash(study, admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    add_simulated_votes(study=study, strengths=_strengths(study), n_raters=4, seed=7)
    before = admin_client.get(f"/api/studies/{study.slug}/leaderboard").json()["stamp"]["data_hash"]
    answer_pairs(make_judging_rater(study))
    after = admin_client.get(f"/api/studies/{study.slug}/leaderboard").json()["stamp"]["data_hash"]
    assert before != after


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
