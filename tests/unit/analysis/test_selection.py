"""Adaptive pair selection (:mod:`analysis.core.selection`): the serving guarantees, the
Chatbot Arena baseline against a hand computation, and honest intervals on adaptively
collected votes. Its efficiency is measured in ``bench/selection.py``, not here."""

import math

import numpy as np
import pytest

from analysis.core.bootstrap import rater_tables
from analysis.core.bt import fit_bradley_terry
from analysis.core.counts import PairCounts, count_pairs
from analysis.core.graph import effective_raters
from analysis.core.sandwich import cluster_covariance
from analysis.core.selection import WEIGHTINGS, arena_rule, pair_priorities
from analysis.core.simulate import davidson_outcome
from analysis.core.types import Outcome

# Coverage on adaptively collected votes: replications, nominal level, and a tolerance of
# 3 binomial standard errors counted in studies (the pairs of one study share its votes,
# so counting intervals would overstate the information; see test_coverage.py).
REPLICATIONS = 200
NOMINAL = 0.95
COVERAGE_TOLERANCE = 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / REPLICATIONS)
# The arena rule's probabilities against the hand computation.
ARENA_TOLERANCE = 1e-12


def _counts(rows: list[tuple[int, int, int, int, int]], n_systems: int) -> PairCounts:
    """A table from (first, second, first wins, second wins, ties) rows, folded."""
    first, second, outcome = [], [], []
    for i, j, wins, losses, ties in rows:
        first += [i] * (wins + losses + ties)
        second += [j] * (wins + losses + ties)
        outcome += [Outcome.FIRST] * wins + [Outcome.SECOND] * losses + [Outcome.TIE] * ties
    return count_pairs(
        np.array(first, dtype=np.int64),
        np.array(second, dtype=np.int64),
        np.array(outcome, dtype=np.int64),
        n_systems=n_systems,
        ordered=False,
    )


def _index(result_first: np.ndarray, result_second: np.ndarray, i: int, j: int) -> int:
    return int(np.flatnonzero((result_first == i) & (result_second == j))[0])


def test_pairs_under_the_floor_come_first_largest_deficit_first() -> None:
    # (0, 1) never compared, (2, 3) once, every other pair 6 times and close.
    rows = [(0, 2, 3, 3, 0), (0, 3, 3, 3, 0), (1, 2, 3, 3, 0), (1, 3, 3, 3, 0), (2, 3, 1, 0, 0)]
    result = pair_priorities(_counts(rows, 4), floor=2, batch=4)
    order = result.pairs(result.order())
    assert order[:2] == ((0, 1), (2, 3))
    assert result.below_floor.tolist() == [True, False, False, False, False, True]
    # The batch fills the floor before anything else: (0, 1) twice, (2, 3) once.
    planned = result.pairs(result.batch[:3])
    assert sorted(planned) == [(0, 1), (0, 1), (2, 3)]
    assert result.rule == "variance"


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_settled_pair_ranks_below_close_uncertain_pair(weighting: str) -> None:
    # 0 and 1 are close with few votes; 2 beat both almost always, in many votes.
    rows = [(0, 1, 5, 5, 0), (2, 0, 198, 2, 0), (2, 1, 198, 2, 0)]
    result = pair_priorities(_counts(rows, 3), floor=0, weighting=weighting)
    close = result.priority[_index(result.first, result.second, 0, 1)]
    settled = result.priority[_index(result.first, result.second, 0, 2)]
    assert close > settled
    assert result.pairs(result.batch[:1]) == ((0, 1),)


def test_no_votes_give_finite_priorities_and_spread_the_first_batch() -> None:
    empty = np.zeros(0, dtype=np.int64)
    counts = count_pairs(empty, empty, empty, n_systems=6, ordered=False)
    result = pair_priorities(counts, floor=1, batch=3)
    assert np.isfinite(result.priority).all() and result.n_pairs == 15
    assert [n.code for n in result.notices] == ["no_votes"]
    assert result.below_floor.all()
    # Three pairs that between them show all six systems.
    shown = {s for pair in result.pairs(result.batch) for s in pair}
    assert shown == set(range(6))


def test_a_system_that_never_lost_gives_finite_priorities() -> None:
    rows = [(0, 1, 30, 0, 0), (0, 2, 30, 0, 0), (1, 2, 10, 10, 0)]
    result = pair_priorities(_counts(rows, 3), floor=0)
    assert np.isfinite(result.priority).all()
    assert "separated" in [n.code for n in result.notices]
    assert result.rule == "variance"


def test_disconnected_groups_are_linked_first() -> None:
    rows = [(0, 1, 10, 10, 0), (2, 3, 10, 10, 0)]
    result = pair_priorities(_counts(rows, 4), floor=0)
    assert np.isfinite(result.priority).all()
    assert "disconnected" in [n.code for n in result.notices]
    top = result.pairs(result.order()[:1])[0]
    assert (top[0] in (0, 1)) != (top[1] in (0, 1))  # one side in each group


def test_priorities_are_deterministic() -> None:
    rng = np.random.default_rng(5)
    first = rng.integers(0, 8, 300)
    second = (first + rng.integers(1, 8, 300)) % 8
    outcome = davidson_outcome(np.zeros(300), 0.3, rng.random(300))
    counts = count_pairs(first, second, outcome, n_systems=8)
    one, two = pair_priorities(counts, batch=12), pair_priorities(counts, batch=12)
    assert np.array_equal(one.priority, two.priority)
    assert np.array_equal(one.batch, two.batch)


def test_bad_input_is_refused() -> None:
    counts = _counts([(0, 1, 1, 1, 0)], 2)
    with pytest.raises(ValueError, match="weighting"):
        pair_priorities(counts, weighting="entropy")
    with pytest.raises(ValueError, match="floor"):
        pair_priorities(counts, floor=-1)
    with pytest.raises(ValueError, match="at least 2 systems"):
        arena_rule(PairCounts(1, counts.first[:0], counts.second[:0], counts.counts[:0], False))


def test_arena_rule_matches_a_hand_computation() -> None:
    # Pair (0, 1): 0 won 2 of 3, once shown second. (0, 2): one tie. (1, 2): 1 won 4 of 4.
    first = np.array([0, 0, 1, 0, 1, 1, 2, 2], dtype=np.int64)
    second = np.array([1, 1, 0, 2, 2, 2, 1, 1], dtype=np.int64)
    outcome = np.array([0, 1, 1, 2, 0, 0, 1, 1], dtype=np.int64)
    result = arena_rule(count_pairs(first, second, outcome, n_systems=3))
    # Smoothed win shares (wins + ties/2 + 1/2) / (n + 1): 2.5/4, 1/2, 4.5/5.
    var01, var02, var12 = 0.625 * 0.375, 0.5 * 0.5, 0.9 * 0.1
    weights = np.array(
        [
            math.sqrt(var01 / 3) - math.sqrt(var01 / 4),
            math.sqrt(var02 / 1) - math.sqrt(var02 / 2),
            math.sqrt(var12 / 4) - math.sqrt(var12 / 5),
        ]
    )
    assert result.votes.tolist() == [3, 1, 4]
    np.testing.assert_allclose(result.priority, weights / weights.sum(), atol=ARENA_TOLERANCE)
    # ≈ [0.1875, 0.7332, 0.0793]: the pair with one vote is drawn most.
    assert result.pairs(result.order()) == ((0, 2), (0, 1), (1, 2))


def test_arena_rule_draws_only_unseen_pairs_while_there_are_any() -> None:
    result = arena_rule(_counts([(0, 1, 1, 0, 0), (0, 2, 0, 1, 0)], 4))
    unseen = result.votes == 0
    assert result.priority[~unseen].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(result.priority[unseen], 0.25)


def _adaptive_study(
    truth: np.ndarray, rng: np.random.Generator, *, votes: int, batch: int, raters: int
) -> tuple[np.ndarray, ...]:
    """Votes whose pairs were chosen by :func:`pair_priorities`, recomputed every batch."""
    m = truth.size
    first = np.zeros(0, dtype=np.int64)
    second = np.zeros(0, dtype=np.int64)
    outcome = np.zeros(0, dtype=np.int64)
    while first.size < votes:
        counts = count_pairs(first, second, outcome, n_systems=m, ordered=False)
        plan = pair_priorities(counts, floor=2, batch=batch)
        i, j = plan.first[plan.batch], plan.second[plan.batch]
        swap = rng.random(batch) < 0.5  # shown in a random order
        i, j = np.where(swap, j, i), np.where(swap, i, j)
        drawn = davidson_outcome(truth[i] - truth[j], 0.3, rng.random(batch))
        first, second = np.r_[first, i], np.r_[second, j]
        outcome = np.r_[outcome, drawn]
    rater = rng.integers(0, raters, first.size)
    return first, second, outcome, rater


def test_sandwich_intervals_cover_under_adaptive_allocation() -> None:
    """The leaderboard's default interval on adaptively collected votes.

    Estimator: :func:`fit_bradley_terry` (Davidson ties, the default prior l2 = 0.1).
    Interval: the cluster-robust sandwich by rater (CR1) with Student t on G* − 1 degrees
    of freedom, G* Kish's effective raters: the leaderboard's ``interval="auto"`` with
    enough raters. Six systems, 300 votes per study from 30 raters, pairs chosen by
    :func:`pair_priorities` (floor 2, recomputed every 20 votes); every difference of
    true log-strengths must lie in its 95 % interval at the nominal rate, within a
    binomial tolerance.
    """
    truth = np.array([0.0, 0.3, 0.6, 1.0, 1.5, 2.5])
    truth = truth - truth.mean()
    rng = np.random.default_rng(20261206)
    upper = np.triu_indices(truth.size, k=1)
    covered = np.zeros(REPLICATIONS)
    for r in range(REPLICATIONS):
        first, second, outcome, rater = _adaptive_study(truth, rng, votes=300, batch=20, raters=30)
        counts = count_pairs(first, second, outcome, n_systems=truth.size, ordered=False)
        fit = fit_bradley_terry(counts)
        tables, _ = rater_tables(counts, first, second, outcome, rater)
        cluster = cluster_covariance(fit, counts, tables)
        half = cluster.quantile(NOMINAL, effective_raters(rater)) * cluster.difference_se
        error = (fit.scores[:, None] - fit.scores[None, :]) - (truth[:, None] - truth[None, :])
        covered[r] = (np.abs(error) <= half)[upper].mean()
    assert abs(covered.mean() - NOMINAL) <= COVERAGE_TOLERANCE
