"""Production readiness: what a system costs to run, how robust it is across prompt
categories, how it differs between groups named in the prompts, and which system a
budget and a latency bound leave as best by human judgment.

Plain numpy on arrays the Django side loads; every figure carries its count, and a figure
the data cannot give is ``None`` with the reason in ``notes``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.core.rates import wilson_interval
from analysis.core.results import BreakdownGroup, finite
from analysis.core.types import FloatArray, Outcome


@dataclass(frozen=True)
class GenerationRecord:
    """One system's generation log: per output made, its seconds (wall, as the worker
    timed it), GPU-seconds and peak GPU memory where the backend reported them, and the
    media seconds for video; per item attempted, whether it failed and how many tries
    it took."""

    system: str
    seconds: Sequence[float]
    gpu_seconds: Sequence[float | None]
    peak_memory_mb: Sequence[float | None]
    media_seconds: Sequence[float | None]
    items: int
    failed: int
    retried: int
    price_per_image: float | None = None  # entered by hand for an API model


@dataclass(frozen=True)
class Operations:
    """A system's operational figures. ``cost_per_image`` is its hand-entered price, or
    its GPU-seconds at the report's GPU-hour price; ``cost_basis`` says which."""

    system: str
    outputs: int
    seconds_per_image: float | None
    gpu_seconds_per_image: float | None
    gpu_seconds_per_media_second: float | None
    latency_p50: float | None
    latency_p95: float | None
    peak_memory_mb: float | None
    items: int
    failure_rate: float | None
    retry_rate: float | None
    cost_per_image: float | None
    cost_basis: str


def _mean(values: Sequence[float | None]) -> tuple[float | None, int]:
    found = np.array([v for v in values if v is not None], dtype=np.float64)
    return (finite(float(found.mean())) if found.size else None), int(found.size)


# Outputs below which no 95th percentile of latency is stated: fewer cannot place one.
P95_MIN_OUTPUTS = 20


def operations(record: GenerationRecord, *, gpu_hour_price: float | None) -> Operations:
    """Per-image means and latency quantiles (p95 by linear interpolation, stated only
    with P95_MIN_OUTPUTS outputs or more)."""
    seconds = np.asarray(record.seconds, dtype=np.float64)
    gpu, gpu_n = _mean(record.gpu_seconds)
    per_media = None
    pairs = [
        (g, m) for g, m in zip(record.gpu_seconds, record.media_seconds, strict=True)
        if g is not None and m
    ]  # fmt: skip
    if pairs:
        per_media = finite(sum(g for g, _ in pairs) / sum(m for _, m in pairs))
    memory = [m for m in record.peak_memory_mb if m is not None]
    cost, basis = None, "unknown: no price entered and no GPU-seconds recorded"
    if record.price_per_image is not None:
        cost, basis = record.price_per_image, "price per image entered by hand"
    elif gpu is not None and gpu_hour_price is not None:
        # Ten decimals: a cheap system costs a few millionths per image.
        cost, basis = finite(gpu * gpu_hour_price / 3600, 10), "GPU-seconds at the GPU-hour price"
    return Operations(
        system=record.system,
        outputs=int(seconds.size),
        seconds_per_image=finite(float(seconds.mean())) if seconds.size else None,
        gpu_seconds_per_image=gpu if gpu_n else None,
        gpu_seconds_per_media_second=per_media,
        latency_p50=finite(float(np.quantile(seconds, 0.5))) if seconds.size else None,
        latency_p95=(
            finite(float(np.quantile(seconds, 0.95))) if seconds.size >= P95_MIN_OUTPUTS else None
        ),
        peak_memory_mb=finite(max(memory)) if memory else None,
        items=record.items,
        failure_rate=finite(record.failed / record.items) if record.items else None,
        retry_rate=finite(record.retried / record.items) if record.items else None,
        cost_per_image=cost,
        cost_basis=basis,
    )


def pareto_front(score: Sequence[float | None], cost: Sequence[float | None]) -> list[bool]:
    """Which systems no other dominates: none is at least as good and at least as cheap
    and strictly better in one (point estimates; unknown figures are off the front)."""
    known = [
        (s, c) if s is not None and c is not None else None
        for s, c in zip(score, cost, strict=True)
    ]
    front = []
    for mine in known:
        if mine is None:
            front.append(False)
            continue
        dominated = any(
            other is not None
            and other[0] >= mine[0]
            and other[1] <= mine[1]
            and (other[0] > mine[0] or other[1] < mine[1])
            for other in known
        )
        front.append(not dominated)
    return front


@dataclass(frozen=True)
class CategoryScore:
    category: str
    score: float | None  # Elo, relative to the systems judged in that category
    low: float | None
    high: float | None
    votes: int


@dataclass(frozen=True)
class Robustness:
    """A system's standing per prompt category (each category fitted on its own, so a
    score is relative to the systems judged there), its worst category and the spread
    between its best and worst."""

    system: str
    categories: tuple[CategoryScore, ...]
    worst: str | None
    spread: float | None


def robustness(systems: Sequence[str], groups: Sequence[BreakdownGroup]) -> list[Robustness]:
    """Per system, from the leaderboard's per-category fits."""
    out = []
    for system in systems:
        rows = []
        for group in groups:
            row = next((r for r in group.rows if r.system == system), None)
            if group.fitted and row is not None:
                rows.append(
                    CategoryScore(group.value, row.elo, row.elo_low, row.elo_high, row.votes)
                )
        scored = [r for r in rows if r.score is not None]
        worst = min(scored, key=lambda r: r.score or 0.0).category if scored else None
        spread = None
        if len(scored) >= 2:
            values = [r.score for r in scored if r.score is not None]
            spread = finite(max(values) - min(values))
        out.append(Robustness(system, tuple(rows), worst, spread))
    return out


@dataclass(frozen=True)
class GroupGap:
    """A system's win rate (ties as half) on the prompts of one group against the other
    groups of the same attribute, and the difference with a Newcombe interval."""

    attribute: str
    group: str
    system: str
    votes: int
    win_rate: float | None
    other_votes: int
    other_win_rate: float | None
    difference: float | None
    low: float | None
    high: float | None


def newcombe_difference(
    k1: float, n1: float, k2: float, n2: float, level: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """p1 − p2 with Newcombe's hybrid score interval (method 10), from Wilson intervals.

    References
    ----------
    Newcombe (1998), Statistics in Medicine 17(8), 873–890.
    """
    if n1 <= 0 or n2 <= 0:
        return None, None, None
    (l1,), (u1,) = wilson_interval(np.array([k1]), np.array([n1]), level)
    (l2,), (u2,) = wilson_interval(np.array([k2]), np.array([n2]), level)
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return finite(d), finite(low), finite(high)


def group_gaps(
    *,
    systems: Sequence[str],
    first: np.ndarray,
    second: np.ndarray,
    credit_first: FloatArray,
    group: Sequence[str | None],
    attribute: str,
    level: float = 0.95,
) -> list[GroupGap]:
    """For each group value and system: its win rate on that group's prompts against
    the rest of the attribute's prompts. ``credit_first`` is the first system's share of
    each vote (1, ½ for a tie or both bad, 0); ``group`` the vote's prompt's value (None:
    the prompt does not carry the attribute)."""
    labels = np.array([g if g is not None else "" for g in group], dtype=object)
    values = sorted({g for g in group if g is not None})
    out: list[GroupGap] = []
    if len(values) < 2:
        return out
    # With two groups the second's rows would mirror the first's: one comparison each.
    compared = values[:1] if len(values) == 2 else values
    for k, system in enumerate(systems):
        in_vote = (first == k) | (second == k)
        credit = np.where(first == k, credit_first, 1.0 - credit_first)
        for value in compared:
            mine = in_vote & (labels == value)
            rest = in_vote & (labels != value) & (labels != "")
            n1, n2 = int(mine.sum()), int(rest.sum())
            k1, k2 = float(credit[mine].sum()), float(credit[rest].sum())
            d, low, high = newcombe_difference(k1, n1, k2, n2, level)
            out.append(
                GroupGap(
                    attribute=attribute, group=value, system=system,
                    votes=n1, win_rate=finite(k1 / n1) if n1 else None,
                    other_votes=n2, other_win_rate=finite(k2 / n2) if n2 else None,
                    difference=d, low=low, high=high,
                )
            )  # fmt: skip
    return out


@dataclass(frozen=True)
class Decision:
    """What a budget per image and a latency bound leave. ``probability`` is the share of
    the report's bootstrap replicates in which ``best`` scores above ``runner_up``."""

    budget: float | None
    latency: float | None
    remaining: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]  # (system, why)
    best: str | None
    runner_up: str | None
    probability: float | None
    notes: tuple[str, ...]


def decide(
    *,
    systems: Sequence[str],
    scores: Sequence[float | None],
    costs: Sequence[float | None],
    latencies: Sequence[float | None],
    replicate_systems: Sequence[str],
    replicates: FloatArray,
    budget: float | None,
    latency: float | None,
) -> Decision:
    """Filter by budget and latency (a system whose figure is unknown is excluded when a
    bound is set: it cannot be shown to meet it), rank the rest by human score, and set
    the best against the runner-up on the replicates."""
    remaining, excluded, notes = [], [], []
    for system, cost, p50 in zip(systems, costs, latencies, strict=True):
        if budget is not None and cost is None:
            excluded.append((system, "no cost known"))
        elif budget is not None and cost is not None and cost > budget:
            excluded.append((system, f"costs {cost:.4g} per image"))
        elif latency is not None and p50 is None:
            excluded.append((system, "no latency recorded"))
        elif latency is not None and p50 is not None and p50 > latency:
            excluded.append((system, f"median latency {p50:.3g} s"))
        else:
            remaining.append(system)
    score = dict(zip(systems, scores, strict=True))
    ranked = sorted((s for s in remaining if score[s] is not None), key=lambda s: -(score[s] or 0))
    unscored = [s for s in remaining if score[s] is None]
    if unscored:
        notes.append(f"Not ranked (no score in the main comparison): {', '.join(unscored)}.")
    best = ranked[0] if ranked else None
    runner = ranked[1] if len(ranked) > 1 else None
    probability = None
    if best is not None and runner is not None:
        if best in replicate_systems and runner in replicate_systems:
            a, b = replicate_systems.index(best), replicate_systems.index(runner)
            probability = finite(float(np.mean(replicates[:, a] > replicates[:, b])), 4)
        else:
            notes.append(f"{best} and {runner} were not compared in one connected group.")
    elif best is not None:
        notes.append("Only one system meets the bounds: nothing to set it against.")
    else:
        notes.append("No system meets the bounds.")
    return Decision(
        budget, latency, tuple(remaining), tuple(excluded), best, runner, probability, tuple(notes)
    )


def credit_first(outcome: np.ndarray) -> FloatArray:
    """The first system's share of each vote: 1 when it won, 0 when it lost, ½ for a tie
    or both bad."""
    out = np.full(outcome.shape, 0.5)
    out[outcome == Outcome.FIRST] = 1.0
    out[outcome == Outcome.SECOND] = 0.0
    return out
