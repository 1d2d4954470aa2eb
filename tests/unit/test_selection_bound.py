"""bench/selection_bound.py: the best saving any design can reach, checked by brute force."""

import itertools
from types import ModuleType

import numpy as np
import pytest

from tests import bench_scripts


@pytest.fixture(scope="module")
def bound() -> ModuleType:
    return bench_scripts.load("selection_bound")


def _brute_force(bound: ModuleType, scores: np.ndarray, steps: int) -> float:
    """The best saving over a grid of designs on the simplex (4 conditions: 6 pairs)."""
    n = scores.size
    pairs = list(itertools.combinations(range(n), 2))
    diff = np.zeros((len(pairs), n))
    for k, (i, j) in enumerate(pairs):
        diff[k, i], diff[k, j] = 1.0, -1.0
    d = np.array([scores[i] - scores[j] for i, j in pairs]) / bound.THURSTONE_SD
    p = bound.stats.norm.cdf(d)
    info = bound.stats.norm.pdf(d) ** 2 / (p * (1 - p))
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), scores - scores.mean()]))
    proj = np.eye(n) - q @ q.T
    uniform = np.full(len(pairs), 1 / len(pairs))
    balanced = bound._criterion(uniform, info, diff, proj)[0]
    best = balanced
    for counts in itertools.product(range(steps), repeat=len(pairs)):
        weights = np.array(counts, dtype=float)
        moment = (diff.T * (weights * info)) @ diff
        if np.linalg.matrix_rank(moment) < n - 1:  # pairs left out split the graph
            continue
        best = min(best, bound._criterion(weights / weights.sum(), info, diff, proj)[0])
    return 1 - best / balanced


def test_the_optimal_design_is_at_least_as_good_as_any_design_on_a_grid(bound: ModuleType) -> None:
    scores = np.array([0.0, 0.7, 2.9, 4.6])
    saving, gap = bound.best_saving(scores)
    assert gap < 1e-4  # the equivalence theorem holds at the design found
    grid = _brute_force(bound, scores, steps=7)
    assert saving >= grid - 1e-9  # nothing on the grid beats it
    assert saving - grid < 0.03  # and the grid comes close to it
    assert saving > 0.05  # spread scores: the balanced design is not optimal


def test_the_bound_on_the_protocol_is_below_forty_percent_on_average(bound: ModuleType) -> None:
    rng = np.random.default_rng(1)
    savings = [bound.best_saving(np.sort(rng.uniform(0, 5, 20)))[0] for _ in range(8)]
    assert 0.2 < float(np.mean(savings)) < 0.4
