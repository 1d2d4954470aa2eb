"""The leaderboard's intervals cover what they claim to, on simulated studies with known
truth (the study design and the estimands are in :mod:`coverage_study`; the full table
is ``bench/coverage.py``)."""

import math
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from tests.unit.analysis.coverage_study import (
    NOMINAL,
    SCENARIOS,
    CoverageResult,
    MethodUnavailable,
    Scenario,
    coverage,
    draw_panel,
    draw_votes,
    expected_win_matrix,
    fit_proportions,
    generating_estimand,
    pooled_estimand,
)

DATASETS = 150
REPLICATES = 500
SEED = 2024
# Binomial tolerance on a mean coverage: 3 standard errors of a proportion, counted in
# DATASETS, not in intervals. The systems of one study share its votes and raters, so
# their misses are correlated and datasets × systems would overstate the information;
# one study's share of covered systems varies no more than one Bernoulli(0.95), so this
# is conservative (the measured spread per study is about half the binomial one).
TOLERANCE = 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / DATASETS)

# Scenarios with many raters, where every cluster method should cover.
CLUSTERED = ("independent", "unequal activity", "position + spammers")
CASES = [(s, m) for s in CLUSTERED for m in ("auto", "rater", "sandwich")] + [
    ("independent", "vote"),
    ("independent", "fisher"),
    # The default (sandwich, t with G* − 1 df) stays honest with four raters and with a
    # few raters casting most votes, where the rater bootstrap falls to 0.80 and 0.91.
    ("few raters", "auto"),
    ("very unequal activity", "auto"),
]


@cache
def _measured(scenario: str, method: str) -> CoverageResult | None:
    try:
        return coverage(scenario, method, datasets=DATASETS, replicates=REPLICATES, seed=SEED)
    except MethodUnavailable:
        return None


def _study(scenario: str, method: str) -> CoverageResult:
    result = _measured(scenario, method)
    if result is None:
        pytest.skip(f"the leaderboard does not offer interval={method!r}")
    return result


@pytest.mark.parametrize(("scenario", "method"), [pytest.param(*c, id="-".join(c)) for c in CASES])
def test_intervals_cover_the_pooled_estimand(scenario: str, method: str) -> None:
    result = _study(scenario, method)
    assert abs(result.pooled - NOMINAL) <= TOLERANCE, result


def test_vote_bootstrap_undercovers_when_raters_differ() -> None:
    # Why cluster methods exist: resampling votes treats each rater's votes as
    # independent, so with rater noise and unequal activity its intervals are far too
    # narrow (~0.73 coverage at this size, ~25 points below nominal).
    result = _study("unequal activity", "vote")
    assert result.pooled < NOMINAL - TOLERANCE, result


def test_auto_intervals_have_width_with_four_raters() -> None:
    result = coverage("few raters", "auto", datasets=20, replicates=200, seed=SEED)
    assert result.zero_width == 0, result


def test_auto_intervals_have_width_with_one_rater() -> None:
    # fails before the fallback: resampling one rater reproduces the study exactly, so
    # today "auto" (a rater bootstrap) gives every system an interval of width 0.
    one = replace(SCENARIOS["few raters"], name="one rater", n_raters=1)
    result = coverage(one, "auto", datasets=10, replicates=200, seed=SEED)
    assert result.zero_width == 0, result


def test_pooled_estimand_is_theta_without_rater_effects() -> None:
    scenario = SCENARIOS["independent"]
    np.testing.assert_allclose(
        pooled_estimand(scenario), generating_estimand(scenario), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(
    "scenario",
    [
        replace(SCENARIOS["independent"], name="noise", rater_noise=0.5),
        replace(SCENARIOS["independent"], name="bias", bias_mean=0.6),
        replace(SCENARIOS["independent"], name="bias spread", bias_sd=0.8),
        replace(SCENARIOS["independent"], name="spam", spam_share=0.1),
        *(SCENARIOS[name] for name in ("unequal activity", "position + spammers")),
    ],
    ids=lambda s: s.name,
)
def test_pooled_estimand_is_attenuated_by_rater_effects(scenario: Scenario) -> None:
    pooled, theta = pooled_estimand(scenario), generating_estimand(scenario)
    assert np.array_equal(np.argsort(pooled), np.argsort(theta))
    assert np.all(np.abs(pooled) < np.abs(theta) - 1e-3)
    assert pooled.std() < 0.98 * theta.std()


def test_pooled_estimand_is_the_limit_of_many_raters() -> None:
    # The generator and the estimand agree: with thousands of raters, the empirical win
    # share of every pair is the population average, and its equal-weight fit the
    # estimand. Tolerances are ~5 binomial standard errors of 20k votes a pair.
    scenario = replace(SCENARIOS["position + spammers"], n_raters=4000, n_votes=300_000)
    rng = np.random.default_rng(7)
    left, right, outcome, _ = draw_votes(scenario, draw_panel(scenario, rng), rng)
    m = len(scenario.theta)
    wins = np.zeros((m, m))
    np.add.at(wins, (np.where(outcome == 0, left, right), np.where(outcome == 0, right, left)), 1)
    share = wins / (wins + wins.T + np.eye(m))
    off = ~np.eye(m, dtype=bool)
    assert np.max(np.abs(share - expected_win_matrix(scenario))[off]) < 0.02
    np.testing.assert_allclose(fit_proportions(share), pooled_estimand(scenario), rtol=0, atol=0.03)
