"""System- and item-level correlation of a metric with people, checked against SciPy,
exhaustive enumeration and hand-computed examples."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from analysis.core.correlation import (
    MetricComparison,
    compare_metric,
    correlate,
    correlation_coefficients,
    disagreements,
    human_replicates,
    permutation_p_values,
)
from analysis.core.item_agreement import asset_win_rates, item_agreement, item_correlation
from analysis.core.leaderboard import leaderboard
from analysis.core.results import Leaderboard, LeaderboardOptions
from analysis.core.serialize import from_json, to_json
from analysis.core.votes import VoteTable, make_vote_table

# Same arrays, same formula: only rounding differs.
SCIPY_TOL = 1e-12
P_TOL = 1e-12


def _scipy(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "kendall_tau_b": stats.kendalltau(x, y, variant="b").statistic,
        "spearman": stats.spearmanr(x, y).statistic,
        "pearson": stats.pearsonr(x, y).statistic,
    }


@pytest.mark.parametrize("seed", range(5))
def test_coefficients_match_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, 12).astype(float)  # many ties
    y = x + rng.normal(size=12).round(1)
    y[:3] = y[3]
    ours = correlation_coefficients(x, y)
    for name, value in _scipy(x, y).items():
        assert ours[name] == pytest.approx(value, abs=SCIPY_TOL), name


def test_exact_permutation_p_values_match_enumeration() -> None:
    rng = np.random.default_rng(3)
    x = np.array([0.3, 1.2, 1.2, -0.5, 2.0, 0.9])  # a tie in x
    y = rng.normal(size=6)
    p, min_p, method = permutation_p_values(x, y)
    assert method.startswith("exact permutation (6! = 720")
    observed = _scipy(x, y)
    for name in observed:
        perms = [abs(_scipy(x, y[list(order)])[name]) for order in itertools.permutations(range(6))]
        expected = np.mean([s >= abs(observed[name]) - 1e-12 for s in perms])
        assert p[name] == pytest.approx(expected, abs=P_TOL), name
        assert min_p[name] == pytest.approx(
            np.mean([s >= max(perms) - 1e-12 for s in perms]), abs=P_TOL
        )


def test_four_systems_cannot_be_significant_and_say_so() -> None:
    coefficients, method, notes = correlate(np.arange(4.0), np.arange(4.0), lower_is_better=False)
    rho = next(c for c in coefficients if c.name == "spearman")
    assert rho.value == 1.0
    assert rho.p_value == pytest.approx(1 / 12) and rho.min_p_value == pytest.approx(1 / 12)
    assert any("p of 0.083" in n for n in notes)
    assert any("can be significant at 0.05" in n for n in notes)


def test_three_systems_say_nothing_and_two_are_not_computed() -> None:
    _, _, notes = correlate(np.arange(3.0), np.arange(3.0), lower_is_better=False)
    assert any("says nothing" in n for n in notes)
    coefficients, method, notes = correlate(np.arange(2.0), np.arange(2.0), lower_is_better=False)
    assert method == "none" and all(c.value is None for c in coefficients)


def test_lower_is_better_flips_the_sign() -> None:
    human = np.array([3.0, 2.0, 1.0, 0.0, -1.0])
    fid = np.array([10.0, 12.0, 11.0, 30.0, 40.0])
    up, _, _ = correlate(human, fid, lower_is_better=True)
    down, _, _ = correlate(human, fid, lower_is_better=False)
    for a, b in zip(up, down, strict=True):
        assert a.value == pytest.approx(-(b.value or 0.0))
    assert up[1].value == pytest.approx(stats.spearmanr(human, -fid).statistic, abs=SCIPY_TOL)


def test_intervals_come_from_paired_replicates() -> None:
    rng = np.random.default_rng(0)
    human = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    metric = np.array([5.0, 4.0, 3.5, 3.0, 1.0])
    h = human + rng.normal(scale=0.3, size=(400, 5))
    m = metric + rng.normal(scale=0.5, size=(400, 5))
    joint, _, _ = correlate(human, metric, lower_is_better=False, human_samples=h, metric_samples=m)
    expected = np.percentile(
        [stats.spearmanr(a, b).statistic for a, b in zip(h, m, strict=True)], [2.5, 97.5]
    )
    rho = joint[1]
    assert (rho.low, rho.high) == pytest.approx(tuple(expected), abs=1e-9)
    assert rho.replicates == 400
    fixed, _, _ = correlate(human, metric, lower_is_better=False, human_samples=h)
    assert fixed[1].high == pytest.approx(
        np.percentile([stats.spearmanr(a, metric).statistic for a in h], 97.5), abs=1e-9
    )
    with pytest.raises(ValueError, match="pair replicate by replicate"):
        correlate(human, metric, lower_is_better=False, human_samples=h, metric_samples=m[:10])


def _study(seed: int = 0) -> tuple[VoteTable, Leaderboard]:
    """Four systems far apart (a > b > c > d), 20 raters, 1,200 votes."""
    rng = np.random.default_rng(seed)
    theta = np.array([1.5, 0.5, -0.5, -1.5])
    n = 1200
    first = rng.integers(0, 4, n)
    second = (first + rng.integers(1, 4, n)) % 4
    p = 1 / (1 + np.exp(-(theta[first] - theta[second])))
    outcome = (rng.random(n) > p).astype(int)
    votes = make_vote_table(
        systems=("a", "b", "c", "d"),
        first=first,
        second=second,
        outcome=outcome,
        position_known=False,
        rater=rng.integers(0, 20, n),
        raters=tuple(f"r{k}" for k in range(20)),
    )
    return votes, leaderboard(votes, LeaderboardOptions(replicates=200))


def test_disagreements_list_the_reversed_pair_only() -> None:
    votes, board = _study()
    fid = {"a": 12.0, "b": 10.0, "c": 20.0, "d": 30.0}  # lower is better: b above a
    found = disagreements(votes, board, fid, lower_is_better=True)
    assert [(d.preferred, d.other) for d in found] == [("a", "b")]
    d = found[0]
    between = ((votes.first == 0) & (votes.second == 1)) | (
        (votes.first == 1) & (votes.second == 0)
    )
    assert d.votes == int(between.sum()) == d.preferred_wins + d.other_wins + d.ties
    assert d.preferred_wins > d.other_wins
    assert d.metric_gap == -2.0 and d.human_gap > 0
    agreeing = {"a": 10.0, "b": 12.0, "c": 20.0, "d": 30.0}
    assert disagreements(votes, board, agreeing, lower_is_better=True) == ()


def test_compare_metric_round_trips_through_json() -> None:
    votes, board = _study()
    reps = human_replicates(votes, board)
    assert reps.by == "rater" and reps.samples.shape == (200, 4)
    samples = {
        s: list(10.0 + np.random.default_rng(k).normal(size=200)) for k, s in enumerate("abcd")
    }
    result = compare_metric(
        votes,
        board,
        {"a": 12.0, "b": 10.0, "c": 20.0, "d": 30.0},
        name="fid",
        lower_is_better=True,
        criterion="quality",
        metric_samples=samples,
        replicates=reps,
    )
    assert "paired with the metric's replicates" in result.correlation.interval
    assert result.correlation.coefficient("spearman").value == pytest.approx(0.8)
    assert len(result.disagreements) == 1
    assert from_json(MetricComparison, to_json(result)) == result


def test_item_agreement_hand_example() -> None:
    # Assets 0 and 1 (one comparison), 2 and 3 (another). The measure prefers 0 and 2.
    first = np.array([0, 0, 1, 1, 2, 3, 2, 0])
    second = np.array([1, 1, 0, 0, 3, 2, 3, 1])
    # Votes: 0 wins, 0 wins, 1 wins, tie | 2 wins, 2 wins, 3 wins | both bad
    outcome = np.array([0, 0, 0, 2, 0, 1, 1, 3])
    measure = np.array([5.0, 1.0, 3.0, 2.0])
    r = item_agreement(first, second, outcome, measure, name="sharpness", lower_is_better=False)
    assert (r.decisive_votes, r.tie_votes_excluded) == (6, 2)
    # Chosen: 0, 0, 1 | 2, 2, 3: the measure predicts 4 of 6.
    assert r.vote_accuracy == pytest.approx(4 / 6, abs=1e-6)
    # Majorities: 0 (2 of 3) and 2 (2 of 3): both predicted.
    assert (r.comparisons, r.split_comparisons, r.majority_accuracy) == (2, 0, 1.0)
    # Leave one out, per comparison: the two who chose the majority each see the others
    # split 1–1 (half credit), the one who did not sees 2–0 against (0): 1/3 each.
    assert r.ceiling_votes == 6
    assert r.human_ceiling == pytest.approx(1 / 3, abs=1e-6)
    assert r.accuracy_on_ceiling_votes == pytest.approx(4 / 6, abs=1e-6)
    flipped = item_agreement(first, second, outcome, measure, name="s", lower_is_better=True)
    assert flipped.vote_accuracy == pytest.approx(2 / 6, abs=1e-6)


def test_item_agreement_measure_ties_get_half_credit() -> None:
    r = item_agreement(
        np.array([0, 0]),
        np.array([1, 1]),
        np.array([0, 1]),
        np.array([1.0, 1.0]),
        name="m",
        lower_is_better=False,
    )
    assert r.measure_ties == 2 and r.vote_accuracy == 0.5
    assert r.split_comparisons == 1 and r.majority_accuracy is None
    assert r.human_ceiling == 0.0  # each vote disagrees with the only other one


def test_asset_win_rates_and_item_correlation_match_scipy() -> None:
    rng = np.random.default_rng(1)
    first = rng.integers(0, 40, 600)
    second = (first + rng.integers(1, 40, 600)) % 40
    outcome = rng.integers(0, 4, 600)
    rate, n = asset_win_rates(first, second, outcome, 40)
    k = 7
    won = ((first == k) & (outcome == 0)).sum() + ((second == k) & (outcome == 1)).sum()
    drew = (((first == k) | (second == k)) & (outcome >= 2)).sum()
    assert rate[k] == pytest.approx((won + drew / 2) / n[k])
    measure = rng.normal(size=40)
    r = item_correlation(rate, measure, name="m", lower_is_better=True)
    expected = _scipy(rate, -measure)
    for c in r.coefficients:
        assert c.value == pytest.approx(expected[c.name], abs=SCIPY_TOL)
    assert r.p_method.startswith("Monte Carlo")
    assert not math.isnan(r.coefficients[0].p_value or math.nan)


def test_a_system_that_never_lost_is_named_and_pearson_is_discounted() -> None:
    # a beats b and c every time; b and c split: a's distance from them rests on the prior.
    first = np.array([0] * 12 + [0] * 10 + [1] * 12)
    second = np.array([1] * 12 + [2] * 10 + [2] * 12)
    outcome = np.array([0] * 22 + [0, 1] * 6)
    votes = make_vote_table(
        systems=("a", "b", "c"), first=first, second=second, outcome=outcome,
        position_known=False,
    )  # fmt: skip
    board = leaderboard(votes, LeaderboardOptions(replicates=100))
    found = compare_metric(
        votes, board, {"a": 1.0, "b": 2.0, "c": 3.0}, name="m", lower_is_better=True
    )
    assert any(n.startswith("a never lost or never won") for n in found.correlation.notes)
    balanced = make_vote_table(
        systems=("a", "b", "c"), first=first, second=second,
        outcome=np.array([0, 1] * 17), position_known=False,
    )  # fmt: skip
    calm_board = leaderboard(balanced, LeaderboardOptions(replicates=100))
    calm = compare_metric(
        balanced, calm_board, {"a": 1.0, "b": 2.0, "c": 3.0}, name="m", lower_is_better=True
    )
    assert not any("never lost" in n for n in calm.correlation.notes)
