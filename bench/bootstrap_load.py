"""Bootstrap under CPU load: the batched refits with BLAS on one thread against uncapped.

OpenBLAS (numpy's and scipy's) starts one thread per core. When other processes keep
cores busy, those threads oversubscribe them and a batched bootstrap slows down several
times; :func:`analysis.core.bt.refit_replicates` therefore runs BLAS on one thread. For
100 systems with 100k votes and 20 systems with 20k votes this prints, for a
1000-replicate bootstrap by vote and by rater, the median time quiet, beside one busy
process and beside as many busy processes as there are cores, and each loaded time as a
ratio to the quiet one (target: at most 1.5×), with the cap and without it. A bootstrap
shorter than half a second is timed over several runs. With as many busy processes as
cores, a fair scheduler gives even a single-threaded job only cores / (cores + 1) of a
core: on two cores 1.5× is then the floor, not a margin. The bench also prints how many
cores' worth of other work (neither this process nor its busy loops) the machine ran
during each level's runs, from /proc/stat: "quiet" is quiet only if that is near 0.

"Uncapped" is the code as it was before the cap: the bench patches
``analysis.core.bt._one_blas_thread`` (the cap's context) with a no-op, so BLAS runs at
its default thread count. Production code has no switch for it. The busy processes spin
a pure-Python loop (no BLAS threads of their own), run only while a load level is
measured and stop by themselves after ``--load-limit`` seconds at most. Load levels,
capped and uncapped runs are interleaved within each repetition so that a change in
other work on the machine falls on all of them alike.

Run: .venv/bin/python bench/bootstrap_load.py [--quick]
"""

import argparse
import contextlib
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from threadpoolctl import threadpool_info

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.core import bt
from analysis.core.bootstrap import bootstrap_raters, bootstrap_votes, rater_tables
from analysis.core.counts import count_pairs
from analysis.core.simulate import davidson_outcome

CONFIGS = ((100, 100_000), (20, 20_000))
REPLICATES = 1000
TARGET = 1.5
MIN_TIMING = 0.5  # seconds: a short bootstrap is timed over several runs
MODES = ("capped", "uncapped")


def simulate(m: int, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, m)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    outcome = davidson_outcome(theta[first] - theta[second], 0.3, rng.random(n))
    rater = rng.integers(0, max(10, n // 200), n)
    return {"first": first, "second": second, "outcome": outcome, "rater": rater}


def spin(stop: Event, ready: Any, seconds: float) -> None:
    """Keep one core busy until ``stop`` is set or ``seconds`` have passed."""
    ready.put(os.getpid())
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end and not stop.is_set():
        for k in range(200_000):  # about 10 ms between checks
            x ^= k


@contextlib.contextmanager
def busy(processes: int, seconds: float) -> Iterator[list[int]]:
    """``processes`` busy loops running for the duration of the block; yields their ids."""
    if processes == 0:
        yield []
        return
    context = multiprocessing.get_context("spawn")
    stop, ready = context.Event(), context.Queue()
    workers = [
        context.Process(target=spin, args=(stop, ready, seconds), daemon=True)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        pids = [ready.get(timeout=60) for _ in workers]
        time.sleep(0.2)  # let them reach their loops
        yield pids
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join()


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """The cap as shipped, or replaced by a no-op (BLAS at its default thread count)."""
    if name == "capped":
        yield
        return
    with mock.patch.object(bt, "_one_blas_thread", contextlib.nullcontext):
        yield


def cases(configs: tuple[tuple[int, int], ...]) -> Iterator[tuple[str, Callable[[], Any]]]:
    for m, n in configs:
        data = simulate(m, n, seed=m + n)
        f, s, o, r = data["first"], data["second"], data["outcome"], data["rater"]
        counts = count_pairs(f, s, o, n_systems=m, ordered=False)
        fit = bt.fit_bradley_terry(counts)
        fit.info_factor  # noqa: B018 - factor once, outside the timed bootstraps
        tables, _ = rater_tables(counts, f, s, o, r)
        label = f"{m} systems, {n // 1000}k votes"

        def by_vote(fit: bt.BTFit = fit, counts: Any = counts) -> Any:
            return bootstrap_votes(fit, counts, replicates=REPLICATES, rng=0)

        def by_rater(fit: bt.BTFit = fit, counts: Any = counts, tables: Any = tables) -> Any:
            return bootstrap_raters(fit, counts, tables, replicates=REPLICATES, rng=0)

        yield f"{label}, by vote", by_vote
        yield f"{label}, by rater", by_rater


def blas_summary() -> str:
    libs = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    found = ", ".join(f"{lib['internal_api']} {lib['version']}" for lib in libs)
    threads = sorted({lib["num_threads"] for lib in libs})
    settings = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")]
    return f"BLAS: {found}; default threads {threads}" + (
        f"; environment {' '.join(settings)}" if settings else ""
    )


def machine_busy() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used by this process and the busy loops ``pids``."""
    total = time.process_time()
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 100 systems with 100k votes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument(
        "--load-limit", type=float, default=120.0, help="seconds a busy process runs at most"
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    levels = sorted({0, 1, cores})
    print(blas_summary())
    print(f"{cores} cores; 1-minute load average before the run: {load_average()}")
    work = dict(cases(CONFIGS[:1] if args.quick else CONFIGS))
    samples: dict[str, Any] = {}
    rounds: dict[str, int] = {}
    for name, run in work.items():  # warm up (first-touch allocations), and check results
        for m in MODES:
            with mode(m):
                begin = time.perf_counter()
                samples[f"{name} {m}"] = run().samples
                rounds[name] = max(1, math.ceil(MIN_TIMING / (time.perf_counter() - begin)))
    gap = max(
        float(np.abs(samples[f"{name} capped"] - samples[f"{name} uncapped"]).max())
        for name in work
    )
    times: dict[tuple[str, str, int], list[float]] = {}
    others: dict[int, list[tuple[float, float]]] = {}
    start = time.perf_counter()
    for _ in range(args.repeats):
        for level in levels:
            with busy(level, args.load_limit) as pids:
                for name, run in work.items():
                    for m in MODES:
                        with mode(m):
                            busy_before, cpu_before = machine_busy(), cpu_seconds(pids)
                            begin = time.perf_counter()
                            for _ in range(rounds[name]):
                                run()
                            wall = time.perf_counter() - begin
                            busy_after, cpu_after = machine_busy(), cpu_seconds(pids)
                        times.setdefault((name, m, level), []).append(wall / rounds[name])
                        if busy_before is not None and busy_after is not None:
                            # Busy CPU time not ours and not the busy loops'.
                            other = busy_after - busy_before - (cpu_after - cpu_before)
                            others.setdefault(level, []).append((other, wall))
    elapsed = time.perf_counter() - start
    median = {key: statistics.median(value) for key, value in times.items()}
    loaded = [level for level in levels if level]
    head = "  ".join(f"{level} busy (s)  ratio" for level in loaded)
    width = max(len(name) for name in work) + 2
    print(f"\n{'case':<{width}}{'BLAS threads':<14}{'quiet (s)':>9}  {head}")
    worst = dict.fromkeys(loaded, 0.0)
    for name in work:
        for m in MODES:
            quiet = median[(name, m, 0)]
            cells = []
            for level in loaded:
                ratio = median[(name, m, level)] / quiet
                cells.append(f"{median[(name, m, level)]:>11.3f}  {ratio:>4.2f}×")
                if m == "capped":
                    worst[level] = max(worst[level], ratio)
            threads = "1 (capped)" if m == "capped" else "default"
            print(f"{name:<{width}}{threads:<14}{quiet:>9.3f}  " + "  ".join(cells))
    print()
    for name in work:
        quiet_gain = median[(name, "uncapped", 0)] / median[(name, "capped", 0)]
        print(f"quiet, uncapped / capped time, {name}: {quiet_gain:.2f}")
    for level in loaded:
        verdict = "met" if worst[level] <= TARGET else "NOT met"
        # With level + 1 runnable processes on the cores, a fair scheduler gives a
        # single-threaded job cores / (level + 1) of a core at most.
        floor = max(1.0, (level + 1) / cores)
        print(
            f"{level} busy: worst capped loaded/quiet {worst[level]:.2f}× "
            f"(target ≤ {TARGET}×: {verdict}; fair-share floor for one thread {floor:.2f}×)"
        )
    for level, pairs in others.items():
        cores_used = sum(o for o, _ in pairs) / sum(w for _, w in pairs)
        print(f"other work on the machine during the {level}-busy runs: {cores_used:.1f} cores")
    print(f"largest |capped − uncapped| sample difference: {gap:.1e} (log-strength)")
    print(
        f"seconds per bootstrap, medians of {args.repeats}; {elapsed:.0f} s measuring; "
        f"1-minute load average after: {load_average()}"
    )


if __name__ == "__main__":
    main()
