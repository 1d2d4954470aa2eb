"""Intervals that mean what they say, or say why they cannot be given: the awkward inputs
a researcher brings (one rater, a system that never lost, ties only, no MLE, a comparison
graph in pieces), each of which printed a confident interval before."""

import json

import numpy as np
import pytest
from statsmodels.discrete.discrete_model import Logit

from analysis.core.bootstrap import rater_tables
from analysis.core.bt import fit_bradley_terry
from analysis.core.counts import count_pairs
from analysis.core.graph import effective_raters, open_sides
from analysis.core.leaderboard import leaderboard
from analysis.core.results import Leaderboard, LeaderboardOptions
from analysis.core.sandwich import cluster_covariance
from analysis.core.serialize import from_json, to_json
from analysis.core.types import Outcome
from analysis.core.votes import VoteTable, make_vote_table

# statsmodels and ours compute the same sandwich in floating point.
REFERENCE_TOLERANCE = 1e-6


def _votes(
    n: int = 2000,
    m: int = 5,
    raters: int = 60,
    *,
    seed: int = 0,
    rater: np.ndarray | None = None,
    spread: float = 1.0,
) -> VoteTable:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    theta = np.linspace(-spread, spread, m)
    p = 1 / (1 + np.exp(-(theta[first] - theta[second])))
    outcome = np.where(rng.random(n) < p, Outcome.FIRST, Outcome.SECOND)
    who = rng.integers(0, raters, n) if rater is None else rater
    return make_vote_table(
        systems=tuple(f"s{k}" for k in range(m)),
        first=first,
        second=second,
        outcome=outcome,
        position_known=True,
        rater=who,
        raters=tuple(f"r{k}" for k in range(int(who.max()) + 1)),
    )


def _row(board: Leaderboard, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in board.rows if r.system == name)


def test_one_rater_falls_back_to_votes_and_says_so() -> None:
    votes = _votes(rater=np.zeros(2000, dtype=np.int64))
    board = leaderboard(votes, LeaderboardOptions(replicates=200))
    assert board.uncertainty.method == "vote" and board.effective_raters == 1.0
    assert [n.code for n in board.notices] == ["few_raters"]
    for row in board.rows:  # the rater bootstrap gave zero-width intervals here
        assert row.elo_high is not None and row.elo_low is not None
        assert row.elo_high - row.elo_low > 10


def test_a_few_raters_casting_most_votes_count_as_few() -> None:
    rng = np.random.default_rng(1)
    # 40 raters, but one casts 90 % of the votes: about 1.2 effective.
    rater = np.where(rng.random(2000) < 0.9, 0, rng.integers(1, 40, 2000))
    assert (effective_raters(rater) or 0) < 1.3
    board = leaderboard(_votes(rater=rater), LeaderboardOptions(interval="sandwich"))
    assert board.uncertainty.method == "vote"
    assert "effective" in board.notices[0].message


def test_enough_raters_get_the_cluster_robust_interval() -> None:
    board = leaderboard(_votes(raters=60))
    assert board.uncertainty.method == "sandwich" and (board.effective_raters or 0) > 50
    assert not board.notices


def test_sandwich_equals_statsmodels_cluster_robust_logit() -> None:
    votes = _votes(n=1500, m=4, raters=30, seed=3)
    counts = count_pairs(votes.first, votes.second, votes.outcome, n_systems=4, ordered=False)
    fit = fit_bradley_terry(counts, l2=0.0)
    tables, _ = rater_tables(counts, votes.first, votes.second, votes.outcome, votes.rater)
    ours = cluster_covariance(fit, counts, tables)
    design = np.zeros((votes.n_votes, 4))
    design[np.arange(votes.n_votes), votes.first] = 1.0
    design[np.arange(votes.n_votes), votes.second] = -1.0
    y = (votes.outcome == Outcome.FIRST).astype(float)
    reference = Logit(y, design[:, 1:]).fit(
        disp=0, cov_type="cluster", cov_kwds={"groups": votes.rater, "use_correction": False}
    )
    # Differences to system 0: statsmodels' parameters; ours from the centred covariance.
    contrast = np.eye(4)[1:] - np.eye(4)[0]
    clusters = np.unique(votes.rater).size
    mine = contrast @ ours.cov @ contrast.T * (clusters - 1) / clusters  # CR1 undone
    assert np.allclose(fit.scores[1:] - fit.scores[0], reference.params, atol=1e-6)
    assert np.allclose(mine, reference.cov_params(), atol=REFERENCE_TOLERANCE)


def test_a_system_that_never_lost_has_no_upper_bound() -> None:
    votes = _votes(raters=60)
    beaten = ((votes.first == 4) & (votes.outcome == Outcome.SECOND)) | (
        (votes.second == 4) & (votes.outcome == Outcome.FIRST)
    )
    for method in ("auto", "vote", "fisher"):
        board = leaderboard(votes.select(~beaten), LeaderboardOptions(interval=method))
        top = _row(board, "s4")
        assert top.elo_high is None and top.elo_low is not None
        assert "never_lost" in top.flags
        assert "separation" in {n.code for n in board.notices}
        # Its comparisons with the others cannot be tested, so no claim is made.
        assert all(cell is None for cell in board.significantly_better[0])


def test_a_single_vote_gives_no_bounds_where_it_cannot() -> None:
    votes = make_vote_table(
        systems=("a", "b"), first=np.array([0]), second=np.array([1]),
        outcome=np.array([Outcome.FIRST]), position_known=False,
    )  # fmt: skip
    board = leaderboard(votes)
    a, b = _row(board, "a"), _row(board, "b")
    assert a.elo_high is None and b.elo_low is None
    assert a.preliminary and b.preliminary
    assert board.significantly_better[0][1] is None


def test_ties_only_do_not_invent_a_tie_strength() -> None:
    votes = make_vote_table(
        systems=("a", "b"), first=np.zeros(5, dtype=np.int64), second=np.ones(5, dtype=np.int64),
        outcome=np.full(5, Outcome.TIE), position_known=False,
    )  # fmt: skip
    board = leaderboard(votes)
    assert board.tie_strength is None  # was 4e16
    assert all(r.elo_low is None and r.elo_high is None for r in board.rows)
    assert "ties_only" in {n.code for n in board.notices}


def test_replicates_without_an_mle_are_counted_and_open_the_bounds() -> None:
    votes = _votes(n=60, m=6, raters=60, seed=4)
    board = leaderboard(votes, LeaderboardOptions(l2=0.0, interval="vote", replicates=300))
    component = board.components[0]
    assert component.replicates_without_mle > 0.025 * 300
    assert "replicates_without_mle" in {n.code for n in board.notices}
    assert any(r.elo_low is None or r.elo_high is None for r in board.rows)


def test_groups_never_compared_are_ranked_apart() -> None:
    votes = _votes(n=3000, m=6, raters=60)
    within = (votes.first < 3) == (votes.second < 3)
    board = leaderboard(votes.select(within))
    assert len(board.components) == 2
    assert sorted(r.rank or 0 for r in board.rows) == [1, 1, 2, 2, 3, 3]
    notice = next(n for n in board.notices if n.code == "disconnected")
    assert "s0" in notice.message and "s5" in notice.message
    component = {r.system: r.component for r in board.rows}
    for i, a in enumerate(board.rows):
        for j, b in enumerate(board.rows):
            if component[a.system] != component[b.system]:
                assert board.significantly_better[i][j] is None
                assert board.win_probability[i][j] is None


def test_equal_systems_share_ranks_and_rank_ranges_come_from_the_intervals() -> None:
    first = np.array([0, 1, 0, 2, 1, 2] * 10)
    second = np.array([1, 0, 2, 0, 2, 1] * 10)
    votes = make_vote_table(
        systems=("a", "b", "c"), first=first, second=second,
        outcome=np.zeros(60, dtype=np.int64), position_known=False,
    )  # fmt: skip
    for method in ("fisher", "vote"):
        board = leaderboard(votes, LeaderboardOptions(interval=method, replicates=200))
        assert [r.rank for r in board.rows] == [1, 1, 1]
        assert all((r.rank_low, r.rank_high) == (1, 3) for r in board.rows)


def test_systems_with_few_votes_are_preliminary() -> None:
    votes = _votes(n=400, m=5, raters=60)
    rare = (votes.first == 0) | (votes.second == 0)
    keep = ~rare | (np.cumsum(rare) <= 5)
    board = leaderboard(votes.select(keep), LeaderboardOptions(min_votes=20))
    assert _row(board, "s0").preliminary and not _row(board, "s1").preliminary
    assert "preliminary" in {n.code for n in board.notices}


def test_the_typed_result_round_trips_through_strict_json() -> None:
    votes = _votes(n=600, m=5, raters=60)
    beaten = (votes.first == 4) & (votes.outcome == Outcome.SECOND)
    board = leaderboard(votes.select(~beaten), LeaderboardOptions(replicates=100))
    text = json.dumps(to_json(board), allow_nan=False)  # no NaN, no infinity
    assert from_json(Leaderboard, json.loads(text)) == board


def test_open_sides_of_a_chain_and_a_cycle() -> None:
    i, j = np.array([0, 1, 2, 0]), np.array([1, 2, 3, 3])
    chain = open_sides(4, i, j, np.array([3.0, 2, 1, 1]), np.zeros(4), np.zeros(4))
    assert chain.high.tolist() == [True, True, True, False]
    assert chain.low.tolist() == [False, True, True, True]
    cycle = open_sides(4, i, j, np.array([3.0, 2, 1, 1]), np.array([0.0, 0, 0, 1]), np.zeros(4))
    assert not cycle.separated


@pytest.mark.parametrize("interval", ["rater", "sandwich"])
def test_cluster_methods_need_rater_ids(interval: str) -> None:
    votes = _votes()
    anonymous = make_vote_table(
        systems=votes.systems, first=votes.first, second=votes.second, outcome=votes.outcome,
        position_known=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs rater ids"):
        leaderboard(anonymous, LeaderboardOptions(interval=interval))
    assert leaderboard(anonymous).notices[0].code == "no_rater_ids"
