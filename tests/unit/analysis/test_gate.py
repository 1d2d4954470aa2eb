"""The release gate (analysis.core.gate) and the difference intervals it reads from the
leaderboard: consistent with the leaderboard's own test, and covering the true difference
at their level on simulated studies."""

import pytest

from analysis.core.bt import ELO_PER_UNIT
from analysis.core.gate import FAIL, PASS, UNDECIDED, gate
from analysis.core.leaderboard import leaderboard
from analysis.core.results import Leaderboard, LeaderboardOptions
from tests.unit.analysis.simulated import bt_votes


@pytest.mark.parametrize("interval", ["sandwich", "vote"])
def test_difference_intervals_agree_with_the_leaderboard_s_own_test(interval: str) -> None:
    options = LeaderboardOptions(interval=interval, replicates=300)
    board = leaderboard(bt_votes(1200, [0.0, 0.3, 0.35, 1.2], seed=5, raters=30), options)
    k = len(board.rows)
    tested = 0
    for a in range(k):
        for b in range(k):
            low, high = board.difference_low[a][b], board.difference_high[a][b]
            if a == b:
                assert low is None and high is None
                continue
            assert low is not None and high is not None and low < high
            assert (low > 0) == bool(board.significantly_better[a][b])
            assert board.difference_high[b][a] == pytest.approx(-low, abs=1e-9)
            tested += 1
    assert tested == k * (k - 1)


def test_difference_intervals_cover_the_truth_at_their_level() -> None:
    theta = [0.0, 0.25, 0.5, 1.0]
    covered = total = 0
    for seed in range(120):
        board = leaderboard(
            bt_votes(600, theta, seed=seed, raters=30), LeaderboardOptions(interval="sandwich")
        )
        names = [r.system for r in board.rows]
        a, b = names.index("s2"), names.index("s1")
        low, high = board.difference_low[a][b], board.difference_high[a][b]
        assert low is not None and high is not None
        covered += low <= theta[2] - theta[1] <= high
        total += 1
    assert 0.90 <= covered / total <= 0.99, covered / total


def _board(theta: list[float], n: int = 2000, seed: int = 1) -> Leaderboard:
    return leaderboard(
        bt_votes(n, theta, seed=seed, raters=30), LeaderboardOptions(interval="sandwich")
    )


def test_a_clearly_better_candidate_passes_and_a_clearly_worse_one_fails() -> None:
    board = _board([0.0, 1.0])
    better = gate(board, candidate="s1", baseline="s0", mode="better")
    assert better.code == PASS and better.low_elo is not None and better.low_elo > 0
    assert better.difference_elo == pytest.approx(
        (board.rows[0].score - board.rows[1].score) * ELO_PER_UNIT  # type: ignore[operator]
    )
    worse = gate(board, candidate="s0", baseline="s1")
    assert worse.code == FAIL and "significantly worse" in worse.reason


def test_equal_systems_are_not_worse_but_not_yet_better_and_a_margin_decides() -> None:
    board = _board([0.0, 0.0], n=400)
    assert gate(board, candidate="s1", baseline="s0").code == PASS
    undecided = gate(board, candidate="s1", baseline="s0", mode="better")
    assert undecided.code == UNDECIDED and "straddles 0" in undecided.reason
    wide = gate(board, candidate="s1", baseline="s0", mode="non_inferior", margin_elo=150)
    assert wide.code == PASS and wide.low_elo is not None and wide.low_elo > -150
    close = _board([0.0, 0.1], n=2000, seed=3)
    near = gate(close, candidate="s0", baseline="s1", mode="non_inferior", margin_elo=10)
    # s0 is about 19 Elo below s1: the interval [-36, -2] straddles -10, and shrinking it
    # would show s0 worse by more than the margin.
    assert near.code == UNDECIDED and "straddles −10 Elo" in near.reason
    assert near.further_votes is not None and near.further_votes > 0


def test_what_cannot_be_decided_says_why() -> None:
    table = bt_votes(800, [0.0, 1.0, 0.0, 1.0], seed=2, raters=30)
    apart = (table.first < 2) == (table.second < 2)
    board = leaderboard(table.select(apart), LeaderboardOptions(interval="sandwich"))
    split = gate(board, candidate="s1", baseline="s3")
    assert split.code == UNDECIDED and "not been compared" in split.reason
    with pytest.raises(ValueError, match="no system"):
        gate(board, candidate="nope", baseline="s0")
    with pytest.raises(ValueError, match="margin"):
        gate(board, candidate="s1", baseline="s0", mode="non_inferior", margin_elo=-5)


def test_one_rater_s_votes_get_an_answer_that_says_how_little_it_rests_on() -> None:
    table = bt_votes(400, [0.0, 1.5], seed=4, raters=1)
    board = leaderboard(table, LeaderboardOptions())
    decision = gate(board, candidate="s0", baseline="s1")
    assert decision.code == FAIL and "fewer than 2 effective raters" in decision.reason
    many = gate(_board([0.0, 1.5]), candidate="s0", baseline="s1")
    assert many.code == FAIL and "effective raters" not in many.reason
