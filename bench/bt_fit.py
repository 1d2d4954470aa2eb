"""Bradley–Terry speed: Verdict against its peers, in one process, on the same votes.

For 20, 100 and 500 systems with 10k, 100k and 1M votes it prints: the count-table build,
the fit from the table (Verdict's default Davidson model, and the half-win tie convention
the peers share), the end-to-end fit from raw votes, and a 1000-replicate bootstrap by
vote and by rater; then the same work by choix (ILSR on the dense count matrix), evalica
(Bradley–Terry from raw votes) and arenakit (MM fit and bootstrap by battle and voter),
each as a ratio to Verdict, and the largest score difference in Elo between Verdict's
half-tie fit and each peer's (all without a prior). Fits are medians of repeated runs;
a peer's bootstrap that would take more than ``--peer-budget`` seconds is estimated
from 20 resamples and marked "≈". arena-rank is left out: it pins numpy==2.3.3 and JAX
and does not install beside Verdict's pins.

Run: make bench  (or .venv/bin/python bench/bt_fit.py [--quick])
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.core.bootstrap import bootstrap_raters, bootstrap_votes, rater_tables
from analysis.core.bt import ELO_PER_UNIT, fit_bradley_terry
from analysis.core.counts import count_pairs
from analysis.core.simulate import davidson_outcome

SYSTEMS = (20, 100, 500)
VOTES = (10_000, 100_000, 1_000_000)
REPLICATES = 1000


def median_seconds(work: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def simulate(m: int, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, m)
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    outcome = davidson_outcome(theta[first] - theta[second], 0.3, rng.random(n))
    rater = rng.integers(0, max(10, n // 200), n)
    return {"first": first, "second": second, "outcome": outcome, "rater": rater}


def centred_elo(scores: np.ndarray) -> np.ndarray:
    return ELO_PER_UNIT * (scores - scores.mean())


def peers() -> dict[str, Any]:
    found = {}
    for name in ("choix", "evalica", "arenakit"):
        try:
            found[name] = __import__(name)
        except ImportError:
            print(f"({name} is not installed: make bench installs it)")
    return found


def run_peer_bootstrap(label: str, work: Callable[[int], Any], budget: float) -> tuple[str, float]:
    """Seconds for 1000 resamples, estimated from 20 when the probe says it is slow."""
    start = time.perf_counter()
    work(20)
    probe = time.perf_counter() - start
    estimate = probe * REPLICATES / 20
    if estimate > budget:
        return f"≈{estimate:.1f}", estimate
    start = time.perf_counter()
    work(REPLICATES)
    seconds = time.perf_counter() - start
    return f"{seconds:.2f}", seconds


def bench(
    m: int, n: int, found: dict[str, Any], budget: float, repeats: int
) -> list[tuple[str, str, str, str]]:
    data = simulate(m, n, seed=m + n)
    f, s, o, r = data["first"], data["second"], data["outcome"], data["rater"]
    rows = []
    t_count, counts = median_seconds(
        lambda: count_pairs(f, s, o, n_systems=m, ordered=False), repeats
    )
    rows.append(("count table from raw votes", f"{1000 * t_count:.1f} ms", "", ""))
    t_fit, fit = median_seconds(lambda: fit_bradley_terry(counts), repeats)
    rows.append(("fit, Davidson ties (default)", f"{1000 * t_fit:.1f} ms", "", ""))
    t_half, half = median_seconds(lambda: fit_bradley_terry(counts, ties="half", l2=0), repeats)
    rows.append(("fit, half-win ties, no prior", f"{1000 * t_half:.1f} ms", "", ""))
    t_end, _ = median_seconds(
        lambda: fit_bradley_terry(
            count_pairs(f, s, o, n_systems=m, ordered=False), ties="half", l2=0
        ),
        repeats,
    )
    rows.append(("end to end from raw votes (half)", f"{1000 * t_end:.1f} ms", "", ""))
    fit.info_factor  # noqa: B018 - factor once, outside the timed bootstraps
    start = time.perf_counter()
    by_vote = bootstrap_votes(fit, counts, replicates=REPLICATES, rng=0)
    t_boot_vote = time.perf_counter() - start
    if t_boot_vote < 5:  # cheap enough to take a median of three
        t_boot_vote, by_vote = median_seconds(
            lambda: bootstrap_votes(fit, counts, replicates=REPLICATES, rng=0), 3
        )
    tables, _ = rater_tables(counts, f, s, o, r)
    t_boot_rater, by_rater = median_seconds(
        lambda: bootstrap_raters(fit, counts, tables, replicates=REPLICATES, rng=0),
        3 if t_boot_vote < 5 else 1,
    )
    failed = by_vote.non_converged + by_rater.non_converged
    note = f"{failed} replicates unconverged" if failed else ""
    rows.append((f"bootstrap by vote, {REPLICATES}", f"{t_boot_vote:.2f} s", "", note))
    rows.append((f"bootstrap by rater, {REPLICATES}", f"{t_boot_rater:.2f} s", "", ""))
    ours = centred_elo(half.scores)
    if "choix" in found:
        wins = np.zeros((m, m))
        np.add.at(
            wins,
            (counts.first, counts.second),
            counts.counts[:, 0] + counts.counts[:, 2] / 2 + counts.counts[:, 3] / 2,
        )
        np.add.at(
            wins,
            (counts.second, counts.first),
            counts.counts[:, 1] + counts.counts[:, 2] / 2 + counts.counts[:, 3] / 2,
        )
        t, scores = median_seconds(
            lambda: found["choix"].ilsr_pairwise_dense(wins, alpha=0, tol=1e-12), repeats
        )
        diff = np.abs(centred_elo(scores) - ours).max()
        rows.append(
            (
                "choix ilsr_pairwise_dense (from the table)",
                f"{1000 * t:.1f} ms",
                f"{t / t_half:.2f}×",
                f"max |Δ| {diff:.1e} Elo",
            )
        )
    if "evalica" in found:
        ev = found["evalica"]
        codes = [ev.Winner.X, ev.Winner.Y, ev.Winner.Draw]
        xs, ys, winners = f.tolist(), s.tolist(), [codes[k] for k in o.tolist()]
        t, result = median_seconds(
            lambda: ev.bradley_terry(xs, ys, winners, tolerance=1e-12, limit=100_000),
            max(1, repeats // 2),
        )
        scores = np.log(np.asarray(result.scores.reindex(range(m)).to_numpy(), dtype=float))
        diff = np.abs(centred_elo(scores) - ours).max()
        rows.append(
            (
                "evalica bradley_terry (from raw votes)",
                f"{1000 * t:.1f} ms",
                f"{t / t_end:.2f}×",
                f"max |Δ| {diff:.1e} Elo",
            )
        )
        if m <= 100:
            label, seconds = run_peer_bootstrap(
                "evalica",
                lambda k: ev.bootstrap(
                    ev.bradley_terry,
                    xs,
                    ys,
                    winners,
                    n_resamples=k,
                    bootstrap_method="percentile",
                    random_state=0,
                ),
                budget,
            )
            rows.append(
                (
                    f"evalica bootstrap, {REPLICATES}",
                    f"{label} s",
                    f"{seconds / t_boot_vote:.1f}×",
                    "by vote",
                )
            )
    if "arenakit" in found:
        ak = found["arenakit"]
        from arenakit.schema import Arena, _label_codes

        arena = Arena.__new__(Arena)
        arena.models = [str(k) for k in range(m)]
        arena.a, arena.b, arena.y = f.astype(np.int32), s.astype(np.int32), o.astype(np.int8)
        arena.item = _label_codes([None] * n)
        arena.voter = _label_codes([str(v) for v in r.tolist()])
        t, result = median_seconds(
            lambda: ak.fit_bt(arena.counts(), ties="half", prior=0.0), repeats
        )
        diff = np.abs(centred_elo(np.asarray(result.scores)) - ours).max()  # log-strengths
        rows.append(
            (
                "arenakit fit_bt (counts + MM fit)",
                f"{1000 * t:.1f} ms",
                f"{t / t_end:.2f}×",
                f"max |Δ| {diff:.1e} Elo",
            )
        )
        for cluster, ours_time in (("battle", t_boot_vote), ("voter", t_boot_rater)):

            def resample(k: int, c: str = cluster) -> Any:
                return ak.bootstrap(arena, n_resamples=k, seed=0, cluster=c)

            label, seconds = run_peer_bootstrap("arenakit", resample, budget)
            rows.append(
                (
                    f"arenakit bootstrap by {cluster}, {REPLICATES}",
                    f"{label} s",
                    f"{seconds / ours_time:.1f}×",
                    "",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 100 systems with 100k votes")
    parser.add_argument(
        "--peer-budget",
        type=float,
        default=60.0,
        help="seconds before a peer bootstrap is estimated",
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per timed fit (median)")
    args = parser.parse_args()
    found = peers()
    print("arena-rank: left out (pins numpy==2.3.3 and JAX; does not install beside these pins)")
    configs = [(100, 100_000)] if args.quick else [(m, n) for m in SYSTEMS for n in VOTES]
    for m, n in configs:
        print(f"\n== {m} systems, {n:,} votes ==")
        rows = bench(m, n, found, args.peer_budget, args.repeats)
        width = max(len(r[0]) for r in rows)
        for what, value, ratio, note in rows:
            print(f"  {what:<{width}}  {value:>11}  {ratio:>8}  {note}")
    print("\nRatios: peer time / Verdict's time for the same work (> 1: Verdict is faster).")


if __name__ == "__main__":
    main()
