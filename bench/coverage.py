"""Coverage of the leaderboard's intervals: every scenario × interval method, on simulated
studies with known truth.

For each scenario of ``tests/unit/analysis/coverage_study.py`` (six systems with
log-strengths spread ±1, a few thousand decisive votes, raters who differ in activity,
taste, position bias and honesty) and each interval method, it simulates ``--datasets``
studies, asks the leaderboard for its 95% intervals and prints a markdown table: the
share of (study, system) intervals that contain the pooled Bradley–Terry estimand (what
the leaderboard estimates: the pooled fit's limit over the rater population, attenuated
by rater noise, bias and spam) and the generating θ, the mean interval width in Elo and
the number of studies. A method the leaderboard does not offer is shown as n/a; where
the method that ran differs from the one asked for ("auto", or a fallback with too few
raters), the row says which ran on how many studies. The Monte Carlo standard error of a
coverage near 0.95 is at most √(0.95 · 0.05 / datasets) (≈ 0.011 at 400 studies).

Run: .venv/bin/python bench/coverage.py [--datasets 400] [--replicates 500]
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.analysis.coverage_study import (
    NOMINAL,
    SCENARIOS,
    CoverageResult,
    MethodUnavailable,
    coverage,
)

METHODS = ("rater", "vote", "sandwich", "fisher", "auto")
HEADER = (
    "| scenario | method | coverage of pooled BT | coverage of θ | mean width (Elo) | datasets |",
    "|---|---|---:|---:|---:|---:|",
)


def method_label(result: CoverageResult) -> str:
    """The method asked for, and what ran where that differs."""
    if set(result.ran) == {result.method}:
        return result.method
    ran = ", ".join(f"{name} {count}" for name, count in sorted(result.ran.items()))
    return f"{result.method} (ran: {ran})"


def row(scenario: str, method: str, result: CoverageResult | None) -> str:
    if result is None:
        return f"| {scenario} | {method} | n/a | n/a | n/a | 0 |"
    width = "∞" if math.isinf(result.width_elo) else f"{result.width_elo:.1f}"
    return (
        f"| {scenario} | {method_label(result)} | {result.pooled:.3f} | {result.theta:.3f} "
        f"| {width} | {result.datasets} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=400, help="studies per scenario")
    parser.add_argument("--replicates", type=int, default=500, help="bootstrap replicates")
    parser.add_argument("--seed", type=int, default=1, help="the studies' seed")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args()
    print(
        f"Nominal {NOMINAL:.2f}; Monte Carlo SE of a coverage near it ≤ "
        f"{math.sqrt(NOMINAL * (1 - NOMINAL) / args.datasets):.3f} ({args.datasets} studies, "
        f"{args.replicates} bootstrap replicates).\n"
    )
    print("\n".join(HEADER))
    start = time.perf_counter()
    for scenario in args.scenarios:
        for method in args.methods:
            try:
                result: CoverageResult | None = coverage(
                    scenario,
                    method,
                    datasets=args.datasets,
                    replicates=args.replicates,
                    seed=args.seed,
                )
            except MethodUnavailable:
                result = None
            print(row(scenario, method, result), flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
