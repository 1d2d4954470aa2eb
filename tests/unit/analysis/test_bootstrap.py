"""The bootstrap: an exact multinomial sampler, batch refits equal to single fits, and
intervals that cover the truth at their nominal rate."""

import numpy as np
import pytest

from analysis.core.bootstrap import (
    MultinomialSampler,
    bootstrap_raters,
    bootstrap_votes,
    fisher_interval,
    rater_tables,
)
from analysis.core.bt import fit_bradley_terry, refit_replicates
from analysis.core.counts import PairCounts, count_pairs
from analysis.core.simulate import RaterPanel, simulate_votes

# Coverage is checked over DATASETS simulated studies × their systems; the binomial
# standard error of a 95% coverage over ~600 intervals is ~0.009.
COVERAGE_LOW, COVERAGE_HIGH = 0.915, 0.985
REFIT_TOLERANCE = 2e-6  # log-strength, the replicate solver's stopping rule is 1e-6


def test_sampler_draws_exact_multinomial_tables() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([0, 1, 2, 5, 40, 300, 7, 0, 3])
    total = counts.sum()
    draws = MultinomialSampler(counts).draw(40_000, rng).astype(np.float64)
    assert np.all(draws.sum(axis=1) == total)
    assert np.all(draws[:, counts == 0] == 0)
    p = counts / total
    mean_z = (draws.mean(axis=0) - total * p) / np.sqrt(
        total * p * (1 - p) / draws.shape[0] + 1e-300
    )
    assert np.all(np.abs(mean_z[counts > 0]) < 5)
    live = counts > 0
    cov = np.cov(draws[:, live].T)
    theory = total * (np.diag(p[live]) - np.outer(p[live], p[live]))
    # Standard error of a sample covariance: sqrt((s_ii s_jj + s_ij^2) / n).
    se = np.sqrt((np.outer(np.diag(theory), np.diag(theory)) + theory**2) / draws.shape[0])
    assert np.all(np.abs(cov - theory) < 5 * se)


def test_sampler_handles_large_counts_and_a_single_cell() -> None:
    rng = np.random.default_rng(1)
    big = MultinomialSampler(np.array([50_000, 150_000])).draw(2000, rng)
    assert np.all(big.sum(axis=1) == 200_000)
    assert abs(big[:, 0].std() - np.sqrt(200_000 * 0.25 * 0.75)) < 15
    single = MultinomialSampler(np.array([0, 9, 0])).draw(5, rng)
    assert single.tolist() == [[0, 9, 0]] * 5


def _study(seed: int, m: int = 5, raters: int = 30, per_rater: int = 40, noise: float = 0.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 0.6, m)
    sim = simulate_votes(
        truth,
        RaterPanel(n_raters=raters, votes_per_rater=per_rater, noise=noise, tie_strength=0.3),
        rng=rng,
    )
    counts = sim.votes.counts(ordered=False)
    return sim, counts, fit_bradley_terry(counts)


def test_batch_refits_equal_independent_fits() -> None:
    sim, counts, fit = _study(11, m=8)
    rows = np.arange(counts.first.size)
    tables = MultinomialSampler(counts.counts.astype(np.int64).ravel()).draw(
        6, np.random.default_rng(2)
    )
    tables = tables.reshape(6, rows.size, 4).astype(np.float64)
    batch, failed = refit_replicates(fit, tables)
    assert failed == 0
    for k in range(6):
        single = PairCounts(
            counts.n_systems, counts.first, counts.second, tables[k], counts.ordered
        )
        alone = fit_bradley_terry(single)
        assert np.max(np.abs(batch[k] - alone.scores)) < REFIT_TOLERANCE


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    _, counts, fit = _study(3)
    one = bootstrap_votes(fit, counts, replicates=200, rng=7)
    two = bootstrap_votes(fit, counts, replicates=200, rng=7)
    other = bootstrap_votes(fit, counts, replicates=200, rng=8)
    assert np.array_equal(one.samples, two.samples)
    assert not np.array_equal(one.samples, other.samples)


def test_ranks_and_better_matrix_follow_the_replicates() -> None:
    rng = np.random.default_rng(4)
    truth = np.array([2.0, 1.0, 0.0, 0.0, -3.0])
    sim = simulate_votes(truth, RaterPanel(n_raters=40, votes_per_rater=50), rng=rng)
    counts = sim.votes.counts(ordered=False)
    result = bootstrap_votes(fit_bradley_terry(counts), counts, replicates=400, rng=5)
    assert result.rank_low[0] == result.rank_high[0] == 1
    assert result.rank_low[4] == result.rank_high[4] == 5
    assert (
        result.better[0, 1]
        and result.better[1, 4]
        and not result.better[2, 3]
        and not result.better[3, 2]
    )
    off = ~np.eye(5, dtype=bool)
    assert np.allclose((result.prob_better + result.prob_better.T)[off], 1)


def _coverage(
    datasets: int, noise: float, raters: int = 30, per_rater: int = 40
) -> dict[str, float]:
    hits: dict[str, list[bool]] = {"vote": [], "rater": [], "fisher": []}
    for seed in range(datasets):
        sim, counts, fit = _study(100 + seed, noise=noise, raters=raters, per_rater=per_rater)
        truth = sim.truth
        tables, _ = rater_tables(
            counts, sim.votes.first, sim.votes.second, sim.votes.outcome, sim.votes.rater
        )
        intervals = {
            "vote": bootstrap_votes(fit, counts, replicates=300, rng=seed),
            "rater": bootstrap_raters(fit, counts, tables, replicates=300, rng=seed),
        }
        for name, result in intervals.items():
            hits[name] += ((result.low <= truth) & (truth <= result.high)).tolist()
        low, high = fisher_interval(fit)
        hits["fisher"] += ((low <= truth) & (truth <= high)).tolist()
    return {name: float(np.mean(values)) for name, values in hits.items()}


def test_intervals_cover_the_truth_at_their_nominal_rate_for_independent_votes() -> None:
    coverage = _coverage(120, noise=0.0)
    for name, value in coverage.items():
        assert COVERAGE_LOW <= value <= COVERAGE_HIGH, (name, coverage)


def test_rater_bootstrap_keeps_its_coverage_when_raters_disagree() -> None:
    # Each rater shifts every score by their own noise, so one rater's 60 votes are
    # correlated. (Much stronger noise also biases any Bradley–Terry fit towards 0, which
    # no interval method repairs: a logistic mixture is flatter than its mean.)
    coverage = _coverage(100, noise=0.25, raters=60, per_rater=60)
    assert COVERAGE_LOW <= coverage["rater"] <= COVERAGE_HIGH, coverage
    # Resampling votes pretends they are independent and covers less.
    assert coverage["vote"] <= coverage["rater"] - 0.01, coverage
    assert coverage["fisher"] <= coverage["rater"] - 0.01, coverage


def test_counts_from_another_fit_are_refused() -> None:
    _, counts, fit = _study(5)
    other = count_pairs(np.array([0, 1]), np.array([1, 2]), np.array([0, 0]), n_systems=5)
    with pytest.raises(ValueError, match="do not belong to this fit"):
        bootstrap_votes(fit, other, replicates=10)
    with pytest.raises(ValueError, match="replicates must be at least 2"):
        bootstrap_votes(fit, counts, replicates=1)
