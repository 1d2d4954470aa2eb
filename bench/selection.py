"""Adaptive pair selection against the balanced design and the Chatbot Arena rule.

The protocol of the research note ACTIVE-SAMPLING.md (after gfxdisp/asap, folder
sampling_strategies_comparison):
20 conditions with true scores drawn from U[0, 5], shifted so that the minimum is 0; a
Thurstone Case V observer who prefers i over j with probability Φ((q_i − q_j) / 1.4865);
budgets from 1 to 10 "standard trials" (one trial = every pair once, 190 comparisons) in
steps of half a trial. After each budget the votes are fitted with Verdict's Bradley–Terry
fit (:func:`analysis.core.bt.fit_bradley_terry`, default prior), estimated and true scores
are z-scored, and the RMSE and Spearman correlation against the truth are recorded, as
means over repetitions. The methods see the same observers: per repetition, the same true
scores and the same stream of uniforms deciding each successive comparison.

- balanced: round robin, every pair once per trial, each trial in a fresh random order;
- ours:<weighting> (Verdict's rule, :func:`analysis.core.selection.pair_priorities`, one
  column per ``--weightings``): priorities recomputed every ``--batch`` comparisons, the
  planned batch served in order (a batch also ends at each budget, to measure there);
- arena (:func:`analysis.core.selection.arena_rule`): the batch drawn from its
  probabilities, recomputed every ``--batch`` comparisons.

The headline: the RMSE the balanced design reaches at 3 standard trials, and how many
comparisons each method needs to reach it (read from the curve recorded after every
batch, interpolated linearly). Then a shorter run at 200 conditions and the time of one
priority recomputation at 200 systems (median of repeats).

Run: .venv/bin/python bench/selection.py [--reps 30] [--batch 10] [--plot var/bench/selection.png]
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.core.bt import fit_bradley_terry
from analysis.core.counts import count_pairs
from analysis.core.selection import WEIGHTINGS, arena_rule, pair_priorities
from analysis.core.types import IntArray

THURSTONE_SD = 1.4865
SCORE_RANGE = 5.0
ROOT = Path(__file__).resolve().parent.parent

Chooser = Callable[[IntArray, IntArray, IntArray, int, np.random.Generator], IntArray]


@dataclass(frozen=True)
class Curve:
    """Mean RMSE and Spearman over repetitions, after each of ``comparisons``."""

    comparisons: IntArray
    rmse: np.ndarray
    spearman: np.ndarray


def true_scores(m: int, rng: np.random.Generator) -> np.ndarray:
    q = rng.uniform(0, SCORE_RANGE, m)
    return np.sort(q - q.min())


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


def measure(
    first: IntArray, second: IntArray, outcome: IntArray, q: np.ndarray
) -> tuple[float, float]:
    counts = count_pairs(first, second, outcome, n_systems=q.size, ordered=False)
    scores = fit_bradley_terry(counts).scores
    rmse = float(np.sqrt(np.mean((zscore(scores) - zscore(q)) ** 2)))
    rho = float(stats.spearmanr(scores, q).statistic)
    return rmse, rho


def balanced_chooser(m: int) -> Chooser:
    pairs_i, pairs_j = np.triu_indices(m, k=1)
    rounds: list[IntArray] = []

    def choose(
        first: IntArray, second: IntArray, outcome: IntArray, size: int, rng: np.random.Generator
    ) -> IntArray:
        done = first.size
        need = done + size
        while sum(r.size for r in rounds) < need:
            rounds.append(rng.permutation(pairs_i.size))
        order = np.concatenate(rounds)[done:need]
        return np.stack([pairs_i[order], pairs_j[order]], axis=1)

    return choose


def variance_chooser(m: int, floor: int, weighting: str) -> Chooser:
    def choose(
        first: IntArray, second: IntArray, outcome: IntArray, size: int, rng: np.random.Generator
    ) -> IntArray:
        counts = count_pairs(first, second, outcome, n_systems=m, ordered=False)
        plan = pair_priorities(counts, floor=floor, batch=size, weighting=weighting)
        return np.stack([plan.first[plan.batch], plan.second[plan.batch]], axis=1)

    return choose


def arena_chooser(m: int) -> Chooser:
    def choose(
        first: IntArray, second: IntArray, outcome: IntArray, size: int, rng: np.random.Generator
    ) -> IntArray:
        counts = count_pairs(first, second, outcome, n_systems=m, ordered=False)
        rule = arena_rule(counts)
        drawn = rng.choice(rule.n_pairs, size=size, p=rule.priority)
        return np.stack([rule.first[drawn], rule.second[drawn]], axis=1)

    return choose


def run_study(
    q: np.ndarray,
    uniforms: np.ndarray,
    chooser: Chooser,
    batch: int,
    checkpoints: IntArray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One simulated study: RMSE and Spearman after each checkpoint (comparisons)."""
    total = int(checkpoints[-1])
    first = np.zeros(total, dtype=np.int64)
    second = np.zeros(total, dtype=np.int64)
    outcome = np.zeros(total, dtype=np.int64)
    rmse, rho = np.zeros(checkpoints.size), np.zeros(checkpoints.size)
    done, k = 0, 0
    while done < total:
        # A batch ends early at a checkpoint, so that each is measured exactly there.
        size = min(batch, int(checkpoints[k]) - done)
        pairs = chooser(first[:done], second[:done], outcome[:done], size, rng)
        i, j = pairs[:, 0], pairs[:, 1]
        p = stats.norm.cdf((q[i] - q[j]) / THURSTONE_SD)
        first[done : done + size], second[done : done + size] = i, j
        outcome[done : done + size] = np.where(uniforms[done : done + size] < p, 0, 1)
        done += size
        while k < checkpoints.size and checkpoints[k] <= done:
            rmse[k], rho[k] = measure(first[:done], second[:done], outcome[:done], q)
            k += 1
    return rmse, rho


def method_names(weightings: list[str]) -> list[str]:
    return ["balanced", *(f"ours:{w}" for w in weightings), "arena"]


def make_chooser(name: str, m: int, floor: int) -> Chooser:
    if name == "balanced":
        return balanced_chooser(m)
    if name == "arena":
        return arena_chooser(m)
    return variance_chooser(m, floor, name.removeprefix("ours:"))


def curves(
    m: int, reps: int, batch: int, checkpoints: IntArray, floor: int, methods: list[str], seed: int
) -> dict[str, Curve]:
    total = int(checkpoints[-1])
    sums = {name: (np.zeros(checkpoints.size), np.zeros(checkpoints.size)) for name in methods}
    for rep in range(reps):
        world = np.random.default_rng([seed, rep])
        q = true_scores(m, world)
        uniforms = world.random(total)  # the observer: shared by every method
        for index, name in enumerate(methods):
            rmse, rho = run_study(
                q,
                uniforms,
                make_chooser(name, m, floor),
                batch,
                checkpoints,
                np.random.default_rng([seed, rep, index]),
            )
            sums[name][0][:] += rmse
            sums[name][1][:] += rho
    return {name: Curve(checkpoints, s[0] / reps, s[1] / reps) for name, s in sums.items()}


def grid(m: int, every: int, budgets: list[float]) -> IntArray:
    """Checkpoints: every ``every`` comparisons and at each budget (in standard trials)."""
    trial = m * (m - 1) // 2
    points = [int(round(b * trial)) for b in budgets]
    regular = np.arange(every, max(points) + 1, every)
    return np.unique(np.concatenate([regular, points])).astype(np.int64)


def needed(curve: Curve, target: float) -> float | None:
    """Comparisons at which the mean RMSE first reaches ``target`` (linear between points)."""
    below = np.flatnonzero(curve.rmse <= target)
    if not below.size:
        return None
    k = int(below[0])
    if k == 0:
        return float(curve.comparisons[0])
    x0, x1 = curve.comparisons[k - 1], curve.comparisons[k]
    y0, y1 = curve.rmse[k - 1], curve.rmse[k]
    return float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def value_at(curve: Curve, comparisons: int) -> tuple[float, float]:
    k = int(np.flatnonzero(curve.comparisons == comparisons)[0])
    return float(curve.rmse[k]), float(curve.spearman[k])


def report(found: dict[str, Curve], m: int, budgets: list[float], target_trials: float) -> None:
    trial = m * (m - 1) // 2
    names = list(found)
    for label, column in (("RMSE of z-scores", 0), ("Spearman ρ", 1)):
        print(f"{label}:\n")
        print("| trials | comparisons | " + " | ".join(names) + " |")
        print("|---:|---:|" + "---:|" * len(names))
        for b in budgets:
            n = int(round(b * trial))
            cells = " | ".join(f"{value_at(found[name], n)[column]:.4f}" for name in names)
            print(f"| {b:g} | {n} | {cells} |")
        print()
    target_n = int(round(target_trials * trial))
    target = value_at(found["balanced"], target_n)[0]
    print(
        f"Headline ({m} conditions): balanced reaches RMSE {target:.4f} at {target_trials:g} "
        f"standard trials ({target_n} comparisons). To reach it:"
    )
    width = max(len(name) for name in names)
    for name in names:
        reached = needed(found[name], target)
        if reached is None:
            last = int(found[name].comparisons[-1])
            print(f"  {name:>{width}}: not reached within {last} comparisons")
        else:
            fewer = round(100 * (1 - reached / target_n)) + 0  # + 0: no "-0"
            print(
                f"  {name:>{width}}: {reached:8.0f} comparisons = {reached / target_n:.2f}× "
                f"balanced ({fewer}% fewer)"
            )


def time_priorities(m: int, batch: int, repeats: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = true_scores(m, rng)
    n = m * (m - 1) // 2
    first, second = np.triu_indices(m, k=1)
    p = stats.norm.cdf((q[first] - q[second]) / THURSTONE_SD)
    outcome = np.where(rng.random(n) < p, 0, 1)
    counts = count_pairs(first, second, outcome, n_systems=m, ordered=False)
    for size in (1, batch):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            pair_priorities(counts, batch=size)
            times.append(time.perf_counter() - start)
        arena = []
        for _ in range(repeats):
            start = time.perf_counter()
            arena_rule(counts)
            arena.append(time.perf_counter() - start)
        print(
            f"One recomputation at {m} systems, one standard trial of votes ({n}), batch {size}: "
            f"median {1e3 * statistics.median(times):.1f} ms (min {1e3 * min(times):.1f}, "
            f"max {1e3 * max(times):.1f}; target < 50 ms); arena rule "
            f"{1e3 * statistics.median(arena):.1f} ms"
        )


def plot(found: dict[str, Curve], m: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in found:
        ax.plot(found[name].comparisons, found[name].rmse, label=name)
    ax.set_xlabel("comparisons")
    ax.set_ylabel("RMSE of z-scored scores")
    ax.set_yscale("log")
    ax.set_title(f"{m} conditions, Thurstone observer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="repetitions at 20 conditions")
    parser.add_argument("--batch", type=int, default=10, help="comparisons between recomputations")
    parser.add_argument("--floor", type=int, default=0, help="votes per pair before adaptivity")
    parser.add_argument(
        "--weightings",
        nargs="+",
        choices=WEIGHTINGS,
        default=list(WEIGHTINGS),
        help="variants of our rule at 20 conditions (the large run uses the first)",
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--large", type=int, default=200, help="conditions of the large run (0: skip)"
    )
    parser.add_argument("--large-reps", type=int, default=3)
    parser.add_argument("--large-batch", type=int, default=100)
    parser.add_argument("--large-trials", type=float, default=3.0)
    parser.add_argument("--plot", type=Path, default=ROOT / "var" / "bench" / "selection.png")
    args = parser.parse_args()
    print(
        f"Ours: pair_priorities(weighting=…, floor={args.floor}), the planned batch served, "
        f"recomputed every {args.batch} comparisons; the arena rule sampled every "
        f"{args.batch}.\n"
    )
    start = time.perf_counter()
    m = 20
    budgets = [1 + k / 2 for k in range(19)]
    points = grid(m, args.batch, budgets)
    methods = method_names(args.weightings)
    found = curves(m, args.reps, args.batch, points, args.floor, methods, args.seed)
    print(f"{m} conditions, {args.reps} repetitions, mean over repetitions:\n")
    report(found, m, budgets, 3.0)
    plot(found, m, args.plot)
    print(f"\n(plot: {args.plot}; {time.perf_counter() - start:.0f} s)\n")
    if args.large:
        start = time.perf_counter()
        n = args.large
        trial = n * (n - 1) // 2
        budgets = [k / 2 for k in range(1, int(2 * args.large_trials) + 1)]
        # Fits at 200 systems are the slow part: measure every tenth of a trial.
        points = grid(n, trial // 10, budgets)
        methods = method_names(args.weightings[:1])
        large = curves(n, args.large_reps, args.large_batch, points, args.floor, methods, args.seed)
        print(
            f"{n} conditions, {args.large_reps} repetitions, recomputed every "
            f"{args.large_batch} comparisons:\n"
        )
        report(large, n, budgets, args.large_trials)
        print(f"\n({time.perf_counter() - start:.0f} s)\n")
    time_priorities(200, args.batch, 15, args.seed)


if __name__ == "__main__":
    main()
