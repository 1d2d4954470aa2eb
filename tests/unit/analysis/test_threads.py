"""The batched bootstrap runs BLAS on one thread, gives the limit back afterwards, and its
samples do not depend on how many BLAS threads there are."""

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
from threadpoolctl import threadpool_info, threadpool_limits

from analysis.core import bt
from analysis.core.bootstrap import bootstrap_raters, bootstrap_votes, rater_tables
from analysis.core.counts import PairCounts, count_pairs
from analysis.core.simulate import davidson_outcome

# Outside the bootstrap the tests set this many BLAS threads, so that the limit of 1
# inside it and the restore after it show even on a one-core machine.
OUTER_THREADS = 2
REFIT_TOLERANCE = 2e-6  # log-strength: the replicate solver stops at steps below 1e-6


def _blas_threads() -> list[int]:
    return [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]


def _study(m: int, n: int, seed: int) -> tuple[bt.BTFit, PairCounts, Any]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, m)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    outcome = davidson_outcome(theta[first] - theta[second], 0.3, rng.random(n))
    rater = rng.integers(0, n // 100, n)
    counts = count_pairs(first, second, outcome, n_systems=m, ordered=False)
    tables, _ = rater_tables(counts, first, second, outcome, rater)
    return bt.fit_bradley_terry(counts), counts, tables


@pytest.fixture
def study() -> tuple[bt.BTFit, PairCounts, Any]:
    # Large enough that OpenBLAS threads the batched solve: here two threads round some
    # samples differently from one.
    return _study(m=60, n=30_000, seed=0)


@contextlib.contextmanager
def _uncapped() -> Iterator[None]:
    """The bootstrap as it was before the cap: BLAS at the outer limit."""
    with (
        mock.patch.object(bt, "_one_blas_thread", contextlib.nullcontext),
        threadpool_limits(limits=OUTER_THREADS, user_api="blas"),
    ):
        yield


def test_refits_run_blas_on_one_thread_and_restore_the_limit(
    study: tuple[bt.BTFit, PairCounts, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _blas_threads(), "no BLAS library found by threadpoolctl"
    fit, counts, tables = study
    fit.info_factor  # noqa: B018 - factored outside the bootstrap
    seen: list[list[int]] = []
    solve = scipy.linalg.cho_solve

    def recording_solve(*args: Any, **kwargs: Any) -> Any:
        seen.append(_blas_threads())
        return solve(*args, **kwargs)

    # bt.py calls scipy.linalg.cho_solve in every iteration of the batched loop.
    monkeypatch.setattr(scipy.linalg, "cho_solve", recording_solve)
    with threadpool_limits(limits=OUTER_THREADS, user_api="blas"):
        before = _blas_threads()
        bootstrap_votes(fit, counts, replicates=50, rng=1)
        after_votes = _blas_threads()
        bootstrap_raters(fit, counts, tables, replicates=50, rng=1)
        after_raters = _blas_threads()
    assert seen, "the batched loop never called cho_solve"
    assert all(threads and set(threads) == {1} for threads in seen), seen
    assert after_votes == after_raters == before


def test_the_limit_is_restored_when_a_refit_raises(
    study: tuple[bt.BTFit, PairCounts, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fit, counts, _ = study

    def failing_solve(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("solve failed")

    monkeypatch.setattr(scipy.linalg, "cho_solve", failing_solve)
    with threadpool_limits(limits=OUTER_THREADS, user_api="blas"):
        before = _blas_threads()
        with pytest.raises(RuntimeError, match="solve failed"):
            bootstrap_votes(fit, counts, replicates=20, rng=1)
        assert _blas_threads() == before


@contextlib.contextmanager
def _busy_core(seconds: float = 60.0) -> Iterator[None]:
    """One other process keeping a core busy (a pure-Python loop, gone after ``seconds``
    at most)."""
    loop = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", loop])
    try:
        time.sleep(0.2)
        yield
    finally:
        busy.kill()
        busy.wait()


def test_capped_samples_do_not_depend_on_threads_or_load(
    study: tuple[bt.BTFit, PairCounts, Any],
) -> None:
    fit, counts, tables = study
    quiet = bootstrap_votes(fit, counts, replicates=300, rng=5)
    quiet_raters = bootstrap_raters(fit, counts, tables, replicates=300, rng=5)
    with threadpool_limits(limits=OUTER_THREADS, user_api="blas"), _busy_core():
        loaded = bootstrap_votes(fit, counts, replicates=300, rng=5)
        loaded_raters = bootstrap_raters(fit, counts, tables, replicates=300, rng=5)
    assert np.array_equal(quiet.samples, loaded.samples)
    assert np.array_equal(quiet_raters.samples, loaded_raters.samples)
    assert quiet.non_converged == loaded.non_converged


def test_capped_samples_match_the_uncapped_ones(study: tuple[bt.BTFit, PairCounts, Any]) -> None:
    # Two BLAS threads may round a solve differently in the last bit, which can move a
    # replicate's stopping step, so the bound is the solver's tolerance, not equality.
    fit, counts, tables = study
    capped = bootstrap_votes(fit, counts, replicates=300, rng=5)
    capped_raters = bootstrap_raters(fit, counts, tables, replicates=300, rng=5)
    with _uncapped():
        uncapped = bootstrap_votes(fit, counts, replicates=300, rng=5)
        uncapped_raters = bootstrap_raters(fit, counts, tables, replicates=300, rng=5)
    assert np.max(np.abs(capped.samples - uncapped.samples)) < REFIT_TOLERANCE
    assert np.max(np.abs(capped_raters.samples - uncapped_raters.samples)) < REFIT_TOLERANCE
    assert capped.non_converged == uncapped.non_converged
