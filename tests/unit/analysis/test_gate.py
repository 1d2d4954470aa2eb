"""The release gate (analysis.core.gate) and the difference intervals it reads from the
leaderboard: consistent with the leaderboard's own test, and covering the true difference
at their level on simulated studies."""

import numpy as np
import pytest

from analysis.core.bt import ELO_PER_UNIT
from analysis.core.gate import FAIL, PASS, UNDECIDED, gate
from analysis.core.leaderboard import leaderboard
from analysis.core.results import Leaderboard, LeaderboardOptions
from analysis.core.types import Outcome
from analysis.core.votes import VoteTable, make_vote_table


def _votes(n: int, theta: list[float], *, seed: int, raters: int = 30) -> VoteTable:
    rng = np.random.default_rng(seed)
    m = len(theta)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    strength = np.asarray(theta)
    p = 1 / (1 + np.exp(-(strength[first] - strength[second])))
    who = rng.integers(0, raters, n)
    return make_vote_table(
        systems=tuple(f"s{k}" for k in range(m)),
        first=first,
        second=second,
        outcome=np.where(rng.random(n) < p, Outcome.FIRST, Outcome.SECOND),
        position_known=True,
        rater=who,
        raters=tuple(f"r{k}" for k in range(raters)),
    )


@pytest.mark.parametrize("interval", ["sandwich", "vote"])
def test_difference_intervals_agree_with_the_leaderboard_s_own_test(interval: str) -> None:
    options = LeaderboardOptions(interval=interval, replicates=300)
    board = leaderboard(_votes(1200, [0.0, 0.3, 0.35, 1.2], seed=5), options)
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
        board = leaderboard(_votes(600, theta, seed=seed), LeaderboardOptions(interval="sandwich"))
        names = [r.system for r in board.rows]
        a, b = names.index("s2"), names.index("s1")
        low, high = board.difference_low[a][b], board.difference_high[a][b]
        assert low is not None and high is not None
        covered += low <= theta[2] - theta[1] <= high
        total += 1
    assert 0.90 <= covered / total <= 0.99, covered / total


def _board(theta: list[float], n: int = 2000, seed: int = 1) -> Leaderboard:
    return leaderboard(_votes(n, theta, seed=seed), LeaderboardOptions(interval="sandwich"))


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
    assert near.code in (UNDECIDED, FAIL)
    if near.code == UNDECIDED:
        assert near.further_votes is None or near.further_votes > 0


def test_what_cannot_be_decided_says_why() -> None:
    table = _votes(800, [0.0, 1.0, 0.0, 1.0], seed=2)
    apart = (table.first < 2) == (table.second < 2)
    board = leaderboard(table.select(apart), LeaderboardOptions(interval="sandwich"))
    split = gate(board, candidate="s1", baseline="s3")
    assert split.code == UNDECIDED and "not been compared" in split.reason
    with pytest.raises(ValueError, match="no system"):
        gate(board, candidate="nope", baseline="s0")
    with pytest.raises(ValueError, match="margin"):
        gate(board, candidate="s1", baseline="s0", mode="non_inferior", margin_elo=-5)
