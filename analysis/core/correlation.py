"""An automated metric beside people: system-level correlation with the Bradley–Terry
scores, with bootstrap intervals and exact permutation p-values, and the pairs of
systems the metric orders against a significant human preference.

A system-level correlation counts systems, not votes: with n systems there are only n!
orderings, so with 4 systems even a perfect Spearman correlation has an exact two-sided
p of 2/24 ≈ 0.083, and 3 systems can show nothing. Every result carries notes that say
how little its n can show. Metrics are oriented so that higher means better
(``lower_is_better`` flips FID and friends) before anything is computed.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.core.bootstrap import bootstrap_raters, bootstrap_votes, rater_tables
from analysis.core.bt import DEFAULT_L2, BTFit, fit_bradley_terry
from analysis.core.results import Leaderboard, LeaderboardOptions, finite
from analysis.core.types import FloatArray, Outcome
from analysis.core.votes import VoteTable

__all__ = [
    "COEFFICIENTS",
    "Coefficient",
    "Disagreement",
    "HumanReplicates",
    "MetricComparison",
    "SystemCorrelation",
    "compare_metric",
    "correlate",
    "correlation_coefficients",
    "disagreements",
    "human_replicates",
    "permutation_p_values",
]

COEFFICIENTS = ("kendall_tau_b", "spearman", "pearson")
# Up to this many systems every ordering is enumerated (8! = 40,320); above it a seeded
# Monte Carlo permutation test, and above _MONTE_CARLO_MAX the asymptotic tests of SciPy.
EXACT_MAX = 8
PERMUTATIONS = 9_999
_MONTE_CARLO_MAX = 60
_BLOCK = 2_000
# Permutation statistics this close to the observed one count as equally extreme
# (the same ordering computed in another order of summation).
_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Coefficient:
    """One correlation coefficient with its percentile interval over paired bootstrap
    replicates (``None`` where there were none) and its two-sided permutation p-value.
    ``min_p_value`` is the smallest p any data of this size and these ties can reach:
    above the test level, no result of this size can be significant."""

    name: str
    value: float | None
    low: float | None
    high: float | None
    p_value: float | None
    min_p_value: float | None
    replicates: int


@dataclass(frozen=True)
class SystemCorrelation:
    """A metric against a criterion's Bradley–Terry scores, system by system.

    ``metric_values`` are as given; ``oriented`` are the values with higher = better
    (negated when ``lower_is_better``). ``interval`` says how the bootstrap paired the
    two sides, ``p_method`` how the p-values were computed, ``notes`` what n can show.
    """

    metric: str
    criterion: str | None
    lower_is_better: bool
    systems: tuple[str, ...]
    human: tuple[float, ...]
    metric_values: tuple[float, ...]
    oriented: tuple[float, ...]
    coefficients: tuple[Coefficient, ...]
    level: float
    interval: str
    p_method: str
    notes: tuple[str, ...]

    def coefficient(self, name: str) -> Coefficient:
        return next(c for c in self.coefficients if c.name == name)


@dataclass(frozen=True)
class Disagreement:
    """Two systems people order significantly while the metric orders them the other
    way. ``human_gap`` is score(preferred) − score(other) in log-strength units with its
    percentile interval; ``metric_gap`` the oriented metric of the preferred minus the
    other's (negative: the metric prefers the other); the votes between the two are the
    evidence."""

    preferred: str
    other: str
    human_gap: float
    human_gap_low: float | None
    human_gap_high: float | None
    metric_preferred: float
    metric_other: float
    metric_gap: float
    votes: int
    preferred_wins: int
    other_wins: int
    ties: int


@dataclass(frozen=True)
class MetricComparison:
    """A metric beside people: the correlations and the disagreements."""

    correlation: SystemCorrelation
    disagreements: tuple[Disagreement, ...]


@dataclass(frozen=True)
class HumanReplicates:
    """Bradley–Terry scores of the systems of one comparison component and their
    bootstrap replicates (replicates, systems), resampled ``by`` vote or rater."""

    systems: tuple[str, ...]
    scores: FloatArray
    samples: FloatArray
    by: str


def _validate_pair(x: FloatArray, y: FloatArray) -> None:
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"human and metric must be 1-d of equal length, not {x.shape}, {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("human and metric values must be finite")


def _pearson_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    """Pearson's r of each row of x with the same row of y (NaN where one is constant)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=-1) / den
    return np.asarray(np.where(den > 0, np.clip(r, -1.0, 1.0), np.nan), dtype=np.float64)


def _spearman_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    """Spearman's rho: Pearson's r of mid-ranks (ties share the average rank)."""
    return _pearson_rows(
        stats.rankdata(x, axis=-1).astype(np.float64), stats.rankdata(y, axis=-1).astype(np.float64)
    )


def _tau_b_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    """Kendall's tau-b, (concordant − discordant) / √(pairs untied in x · untied in y)."""
    i, j = np.triu_indices(x.shape[-1], 1)
    sx, sy = np.sign(x[..., j] - x[..., i]), np.sign(y[..., j] - y[..., i])
    den = np.sqrt((sx * sx).sum(axis=-1) * (sy * sy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sx * sy).sum(axis=-1) / den
    return np.asarray(np.where(den > 0, tau, np.nan), dtype=np.float64)


_ROWS = {"kendall_tau_b": _tau_b_rows, "spearman": _spearman_rows, "pearson": _pearson_rows}


def correlation_coefficients(x: FloatArray, y: FloatArray) -> dict[str, float]:
    """Kendall's tau-b, Spearman's rho and Pearson's r of two 1-d arrays (NaN where one
    is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _validate_pair(x, y)
    return {name: float(f(x[None], y[None])[0]) for name, f in _ROWS.items()}


def permutation_p_values(
    x: FloatArray,
    y: FloatArray,
    *,
    permutations: int = PERMUTATIONS,
    rng: np.random.Generator | int | None = 0,
) -> tuple[dict[str, float], dict[str, float | None], str]:
    """Two-sided permutation p-values of the three coefficients under independence.

    Up to :data:`EXACT_MAX` values every ordering of ``y`` is enumerated (exact); up to
    60 a Monte Carlo permutation test with ``permutations`` draws, p = (b + 1)/(N + 1);
    beyond, SciPy's asymptotic tests (t for Pearson and Spearman, normal for tau-b).

    Returns
    -------
    p_values, min_p_values, method
        ``min_p_values``: the smallest p attainable with these ties (exact test only,
        else None); ``method`` describes the test.

    References
    ----------
    Good (2005), Permutation, Parametric and Bootstrap Tests of Hypotheses, ch. 3.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _validate_pair(x, y)
    n = x.size
    observed = {name: float(f(x[None], y[None])[0]) for name, f in _ROWS.items()}
    if n > _MONTE_CARLO_MAX:
        tests = {
            "kendall_tau_b": stats.kendalltau(x, y).pvalue,
            "spearman": stats.spearmanr(x, y).pvalue,
            "pearson": stats.pearsonr(x, y).pvalue,
        }
        return (
            {k: float(v) for k, v in tests.items()},
            dict.fromkeys(COEFFICIENTS),
            f"asymptotic (SciPy), n = {n}",
        )
    exact = n <= EXACT_MAX
    generator = np.random.default_rng(rng)
    extreme = dict.fromkeys(COEFFICIENTS, 0)
    at_max = dict.fromkeys(COEFFICIENTS, 0)
    top = dict.fromkeys(COEFFICIENTS, 0.0)
    total = math.factorial(n) if exact else permutations
    if exact:
        orders = np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)
        blocks = [orders[s : s + _BLOCK * 10] for s in range(0, orders.shape[0], _BLOCK * 10)]
    else:
        blocks = [
            generator.permuted(np.tile(np.arange(n), (min(_BLOCK, total - s), 1)), axis=1)
            for s in range(0, total, _BLOCK)
        ]
    values: dict[str, list[FloatArray]] = {name: [] for name in COEFFICIENTS}
    for order in blocks:
        shuffled = y[order]
        for name, f in _ROWS.items():
            stat = np.abs(f(np.broadcast_to(x, shuffled.shape), shuffled))
            extreme[name] += int((stat >= abs(observed[name]) - _TIE_TOLERANCE).sum())
            if exact:
                values[name].append(stat)
    p: dict[str, float] = {}
    min_p: dict[str, float | None] = {}
    for name in COEFFICIENTS:
        if math.isnan(observed[name]):
            p[name], min_p[name] = math.nan, None
            continue
        if exact:
            every = np.concatenate(values[name])
            top[name] = float(np.nanmax(every))
            at_max[name] = int((every >= top[name] - _TIE_TOLERANCE).sum())
            p[name] = extreme[name] / total
            min_p[name] = at_max[name] / total
        else:
            p[name] = (extreme[name] + 1) / (total + 1)
            min_p[name] = None
    method = (
        f"exact permutation ({n}! = {total} orderings)"
        if exact
        else f"Monte Carlo permutation ({total} draws)"
    )
    return p, min_p, method


def _small_n_notes(n: int, min_p: Mapping[str, float | None]) -> list[str]:
    if n < 3:
        return [
            f"{n} system{'s' if n != 1 else ''} with scores: a correlation needs at least 3 "
            "and is not computed."
        ]
    notes = [f"A system-level correlation counts systems, not votes: n = {n}."]
    rho = min_p.get("spearman")
    if n == 3:
        notes.append(
            "With 3 systems there are only 6 orderings: even a perfect correlation has an "
            "exact two-sided p of 1/3. It says nothing about whether the metric tracks people."
        )
    elif rho is not None and rho > 0.05:
        notes.append(
            f"With {n} systems the strongest possible Spearman correlation has an exact "
            f"two-sided p of {rho:.3f}: no correlation among so few systems can be "
            "significant at 0.05. Read it as a description, not evidence."
        )
    elif n <= 10:
        notes.append(
            f"With {n} systems a correlation must be very strong to be significant, and its "
            "interval is wide: one system more or less can change it a lot."
        )
    return notes


def correlate(
    human: FloatArray,
    metric: FloatArray,
    *,
    lower_is_better: bool,
    human_samples: FloatArray | None = None,
    metric_samples: FloatArray | None = None,
    level: float = 0.95,
    permutations: int = PERMUTATIONS,
    rng: np.random.Generator | int | None = 0,
) -> tuple[tuple[Coefficient, ...], str, list[str]]:
    """Kendall tau-b, Spearman and Pearson between human scores and a metric, oriented
    so that higher means better, with percentile intervals from paired replicates.

    Parameters
    ----------
    human : ndarray (n,)
        Human scores per system (higher = preferred).
    metric : ndarray (n,)
        The metric per system, as reported.
    lower_is_better : bool
        The metric is better when lower (FID): it is negated first.
    human_samples : ndarray (replicates, n), optional
        Bootstrap replicates of the human scores.
    metric_samples : ndarray (replicates, n), optional
        Replicates of the metric drawn jointly with ``human_samples`` (replicate r of
        both from the same resample), for set metrics resampled over images; without
        them the metric is held fixed.
    level : float
        Interval coverage.
    permutations, rng
        For the Monte Carlo permutation test (more than 8 systems).

    Returns
    -------
    coefficients, p_method, notes

    Raises
    ------
    ValueError
        For arrays of mismatched shapes or non-finite values.

    References
    ----------
    Kendall (1945), "The treatment of ties in ranking problems", Biometrika 33 (tau-b);
    Efron & Tibshirani (1993), ch. 13 (percentile intervals).

    Example
    -------
    >>> coefs, _, _ = correlate(np.array([2.0, 1.0, 0.0, -1.0]),
    ...     np.array([10.9, 17.9, 18.4, 26.2]), lower_is_better=True)
    >>> [c.value for c in coefs]
    [1.0, 1.0, 0.95785208161]
    """
    x = np.asarray(human, dtype=np.float64)
    sign = -1.0 if lower_is_better else 1.0
    y = sign * np.asarray(metric, dtype=np.float64)
    _validate_pair(x, y)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    n = x.size
    if n < 3:
        empty = tuple(Coefficient(name, None, None, None, None, None, 0) for name in COEFFICIENTS)
        return empty, "none", _small_n_notes(n, {})
    values = correlation_coefficients(x, y)
    p, min_p, method = permutation_p_values(x, y, permutations=permutations, rng=rng)
    hs = None if human_samples is None else np.asarray(human_samples, dtype=np.float64)
    ms = None if metric_samples is None else sign * np.asarray(metric_samples, dtype=np.float64)
    if hs is not None and hs.shape[1:] != (n,):
        raise ValueError(f"human_samples must be (replicates, {n}), not {hs.shape}")
    if ms is not None:
        if ms.shape[1:] != (n,):
            raise ValueError(f"metric_samples must be (replicates, {n}), not {ms.shape}")
        if hs is not None and hs.shape[0] != ms.shape[0]:
            raise ValueError("human_samples and metric_samples must pair replicate by replicate")
    if hs is None and ms is not None:
        hs = np.broadcast_to(x, ms.shape)
    if hs is not None and ms is None:
        ms = np.broadcast_to(y, hs.shape)
    tail = 100 * (1 - level) / 2
    coefficients = []
    for name, f in _ROWS.items():
        low = high = None
        used = 0
        if hs is not None and ms is not None:
            r = f(hs, ms)
            r = r[np.isfinite(r)]
            used = int(r.size)
            if used >= 2:
                low, high = (float(v) for v in np.percentile(r, [tail, 100 - tail]))
        coefficients.append(
            Coefficient(
                name=name,
                value=finite(values[name], 12),
                low=finite(low, 12),
                high=finite(high, 12),
                p_value=finite(p[name], 12),
                min_p_value=finite(min_p[name], 12),
                replicates=used,
            )
        )
    return tuple(coefficients), method, _small_n_notes(n, min_p)


def _fit(counts_votes: VoteTable, options: LeaderboardOptions) -> BTFit:
    counts = counts_votes.counts(ordered=False)
    try:
        return fit_bradley_terry(
            counts, ties=options.ties, both_bad=options.both_bad, l2=options.l2
        )
    except ValueError:
        return fit_bradley_terry(
            counts, ties=options.ties, both_bad=options.both_bad, l2=DEFAULT_L2
        )


def human_replicates(votes: VoteTable, board: Leaderboard) -> HumanReplicates:
    """Bootstrap replicates of the scores of the leaderboard's largest comparison
    component, resampled as the study's intervals were: by rater where they cluster on
    raters (rater bootstrap, sandwich), by vote otherwise (vote bootstrap, Wald), with
    the board's options (replicates, seed, tie model).

    Raises
    ------
    ValueError
        When the largest component has fewer than two systems.
    """
    component = board.components[0]
    if len(component.systems) < 2:
        raise ValueError("no two systems were compared: there are no scores to correlate")
    options = board.options
    members = np.array([votes.systems.index(s) for s in component.systems], dtype=np.int64)
    sub = votes.restrict(members)
    fit = _fit(sub, options)
    counts = sub.counts(ordered=False)
    if component.interval in ("rater", "sandwich"):
        tables, _ = rater_tables(counts, sub.first, sub.second, sub.outcome, sub.rater)
        boot = bootstrap_raters(
            fit, counts, tables, replicates=options.replicates, rng=options.seed
        )
    else:
        boot = bootstrap_votes(fit, counts, replicates=options.replicates, rng=options.seed)
    return HumanReplicates(component.systems, fit.scores, boot.samples, boot.by)


def _pair_votes(votes: VoteTable, a: int, b: int) -> tuple[int, int, int, int]:
    """Votes between systems a and b: total, a's wins, b's wins, ties (both bad too)."""
    ab = (votes.first == a) & (votes.second == b)
    ba = (votes.first == b) & (votes.second == a)
    o = votes.outcome
    a_wins = int((ab & (o == Outcome.FIRST)).sum() + (ba & (o == Outcome.SECOND)).sum())
    b_wins = int((ab & (o == Outcome.SECOND)).sum() + (ba & (o == Outcome.FIRST)).sum())
    total = int((ab | ba).sum())
    return total, a_wins, b_wins, total - a_wins - b_wins


def disagreements(
    votes: VoteTable,
    board: Leaderboard,
    metric: Mapping[str, float],
    *,
    lower_is_better: bool,
    replicates: HumanReplicates | None = None,
) -> tuple[Disagreement, ...]:
    """Every pair of systems that people order significantly (the leaderboard's
    ``significantly_better``) while the oriented metric orders them the other way,
    largest human gap first. Systems without a metric value are skipped. The gap's
    interval comes from ``replicates`` (percentile of the paired differences, at the
    board's level) when given."""
    sign = -1.0 if lower_is_better else 1.0
    order = board.order
    score = {r.system: r.score for r in board.rows}
    column = {s: k for k, s in enumerate(replicates.systems)} if replicates else {}
    tail = 100 * (1 - board.options.level) / 2
    found = []
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            if board.significantly_better[i][j] is not True or a not in metric or b not in metric:
                continue
            gap_metric = sign * (metric[a] - metric[b])
            sa, sb = score[a], score[b]
            if gap_metric >= 0 or sa is None or sb is None:
                continue
            low = high = None
            if replicates is not None and a in column and b in column:
                diff = replicates.samples[:, column[a]] - replicates.samples[:, column[b]]
                low, high = (float(v) for v in np.percentile(diff, [tail, 100 - tail]))
            total, a_wins, b_wins, ties = _pair_votes(
                votes, votes.systems.index(a), votes.systems.index(b)
            )
            found.append(
                Disagreement(
                    preferred=a,
                    other=b,
                    human_gap=float(finite(sa - sb) or 0.0),
                    human_gap_low=finite(low),
                    human_gap_high=finite(high),
                    metric_preferred=float(metric[a]),
                    metric_other=float(metric[b]),
                    metric_gap=float(finite(gap_metric, 12) or 0.0),
                    votes=total,
                    preferred_wins=a_wins,
                    other_wins=b_wins,
                    ties=ties,
                )
            )
    return tuple(sorted(found, key=lambda d: (-d.human_gap, d.preferred, d.other)))


def compare_metric(
    votes: VoteTable,
    board: Leaderboard,
    metric: Mapping[str, float],
    *,
    name: str,
    lower_is_better: bool,
    criterion: str | None = None,
    metric_samples: Mapping[str, Sequence[float]] | None = None,
    replicates: HumanReplicates | None = None,
) -> MetricComparison:
    """A metric beside a criterion's leaderboard: the three correlations over the
    systems of the largest comparison component that have a metric value, with
    intervals from paired replicates, and the disagreements.

    Parameters
    ----------
    votes : VoteTable
        The votes ``board`` was fitted on.
    board : Leaderboard
        The criterion's leaderboard (its options choose the bootstrap).
    metric : mapping of system to value
        The metric as reported.
    name : str
        The metric's name.
    lower_is_better : bool
        Orientation of the metric.
    criterion : str, optional
        The criterion's name, for the result.
    metric_samples : mapping of system to replicate values, optional
        The metric's replicates over images, drawn jointly with the human replicates
        (replicate r of each system from the same resample); the human side must then
        have as many replicates. Without them the metric is held fixed.
    replicates : HumanReplicates, optional
        Precomputed human replicates (from :func:`human_replicates`); computed when
        absent.

    Returns
    -------
    MetricComparison

    Raises
    ------
    ValueError
        When no two systems were compared, or replicate counts do not pair up.

    Example
    -------
    >>> from analysis.core.leaderboard import leaderboard
    >>> from analysis.core.votes import make_vote_table
    >>> v = make_vote_table(systems=("a", "b", "c"), first=np.array([0, 1, 0] * 20),
    ...     second=np.array([1, 2, 2] * 20), outcome=np.zeros(60, int), position_known=False)
    >>> board = leaderboard(v)
    >>> r = compare_metric(v, board, {"a": 1.0, "b": 2.0, "c": 3.0}, name="fid",
    ...     lower_is_better=True)
    >>> r.correlation.coefficient("spearman").value
    1.0
    """
    reps = replicates if replicates is not None else human_replicates(votes, board)
    score = {r.system: r.score for r in board.rows}
    systems = tuple(s for s in reps.systems if s in metric and score.get(s) is not None)
    notes: list[str] = []
    left_out = sorted(set(board.order) - set(systems))
    if left_out:
        notes.append(
            f"Left out (no metric value, or outside the largest group of compared systems): "
            f"{', '.join(left_out)}."
        )
    unbounded = sorted(
        r.system for r in board.rows
        if r.system in systems and {"never_lost", "never_won"} & set(r.flags)
    )  # fmt: skip
    if unbounded:
        notes.append(
            f"{', '.join(unbounded)} never lost or never won: their scores' distance from the "
            "others rests on the fit's prior, not on the votes. Only their order is evidence: "
            "read Kendall's and Spearman's coefficients, not Pearson's r, which uses that "
            "distance."
        )
    columns = [reps.systems.index(s) for s in systems]
    human = np.array([score[s] for s in systems], dtype=np.float64)
    values = np.array([metric[s] for s in systems], dtype=np.float64)
    samples = None
    how = f"bootstrap by {reps.by} ({reps.samples.shape[0]} replicates), metric held fixed"
    if metric_samples is not None:
        samples = np.array([list(metric_samples[s]) for s in systems], dtype=np.float64).T
        how = (
            f"bootstrap by {reps.by} ({reps.samples.shape[0]} replicates) paired with the "
            "metric's replicates over images"
        )
    coefficients, p_method, small = correlate(
        human,
        values,
        lower_is_better=lower_is_better,
        human_samples=reps.samples[:, columns],
        metric_samples=samples,
        level=board.options.level,
        rng=board.options.seed,
    )
    sign = -1.0 if lower_is_better else 1.0
    correlation = SystemCorrelation(
        metric=name,
        criterion=criterion,
        lower_is_better=lower_is_better,
        systems=systems,
        human=tuple(float(v) for v in human),
        metric_values=tuple(float(v) for v in values),
        oriented=tuple(float(sign * v) for v in values),
        coefficients=coefficients,
        level=board.options.level,
        interval=how,
        p_method=p_method,
        notes=tuple(small + notes),
    )
    found = disagreements(
        votes,
        board,
        {s: float(metric[s]) for s in systems},
        lower_is_better=lower_is_better,
        replicates=reps,
    )
    return MetricComparison(correlation, found)
