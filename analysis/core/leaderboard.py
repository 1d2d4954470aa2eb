"""A leaderboard from votes: scores with honest intervals, ranks, both-bad rates, position
bias, breakdowns; and how far the raters agree. Used by the command line and by the app.

Honesty rules, each with a notice in the result:
- Scores are compared only inside a comparison component (systems linked by votes).
- Where the win graph is not strongly connected, the bound the data cannot give is open.
- Cluster intervals need enough raters (Kish's effective number); below it, a bootstrap by
  vote is used and the result says so.
- A bootstrap bound decided by replicates without a maximum-likelihood estimate is open.
"""

from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np

from analysis.core.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    majority_agreement,
    percent_agreement,
    split_half_reliability,
)
from analysis.core.bootstrap import (
    BootstrapResult,
    bootstrap_raters,
    bootstrap_votes,
    rater_tables,
)
from analysis.core.bt import DEFAULT_L2, BTFit, fit_bradley_terry
from analysis.core.counts import PairCounts, counts_of_cells, pair_cells
from analysis.core.graph import OpenSides, comparison_components, effective_raters, open_sides
from analysis.core.rates import two_sided_z, wilson_interval
from analysis.core.results import (
    DEFAULT_OPTIONS,
    INTERVALS,
    AgreementSummary,
    Breakdown,
    BreakdownGroup,
    Component,
    Leaderboard,
    LeaderboardOptions,
    Notice,
    PositionEffect,
    RaterMajority,
    SystemRow,
    Uncertainty,
    finite,
    to_elo,
)
from analysis.core.sandwich import cluster_covariance
from analysis.core.types import BoolArray, FloatArray, IntArray, Outcome
from analysis.core.votes import VoteTable, canonical_answer

__all__ = ["INTERVALS", "LeaderboardOptions", "leaderboard", "rater_agreement"]

# Groups of a breakdown with fewer votes than this are listed but not fitted.
MIN_BREAKDOWN_VOTES = 20
# The cluster method "auto" picks: in the coverage study (tests/unit/analysis/test_coverage.py,
# bench/coverage.py) the sandwich with t(G* − 1) covered 0.93–0.94 where the rater
# bootstrap covered 0.80–0.92 (4 raters; a few raters casting most votes), in closed form.
DEFAULT_CLUSTER_METHOD = "sandwich"
CLUSTER_METHODS = ("rater", "sandwich")
ESTIMAND = (
    "Bradley–Terry log-strengths (Davidson ties) of the pooled votes of the rater "
    "population, centred within each comparison component; where raters differ in taste "
    "this pooled score is attenuated relative to any single rater's"
)
DESCRIPTIONS = {
    "rater": "bootstrap by rater (cluster), {replicates} replicates, percentile",
    "sandwich": (
        "cluster-robust (sandwich) by rater, CR1, Student t with G* − 1 df (G*: effective raters)"
    ),
    "vote": "bootstrap by vote, {replicates} replicates, percentile",
    "fisher": "Wald, observed information (votes treated as independent)",
}
# Below this many effective raters a cluster interval is still the honest one, but wide:
# the result says so.
_FEW_EFFECTIVE_RATERS = 10.0
# Scores closer than this (log units) share a rank.
_RANK_TOLERANCE = 1e-9


def _validate(votes: VoteTable, options: LeaderboardOptions) -> None:
    if options.interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {options.interval!r}")
    if options.anchor is not None and options.anchor not in votes.systems:
        raise ValueError(
            f"anchor {options.anchor!r} is not one of the systems {list(votes.systems)}"
        )
    if votes.n_votes == 0:
        raise ValueError("there are no votes to rank")
    if options.min_votes < 0 or not options.min_effective_raters >= 2:
        raise ValueError("min_votes must be >= 0 and min_effective_raters >= 2")
    if options.interval in CLUSTER_METHODS and not (votes.rater >= 0).any():
        raise ValueError(f"interval={options.interval!r} clusters by rater and needs rater ids")


def _method(
    options: LeaderboardOptions, rater: IntArray
) -> tuple[str, float | None, Notice | None]:
    """The interval method for these votes, their effective raters, and why the method
    differs from the one asked for (None when it does not)."""
    n_eff = effective_raters(rater)
    asked = options.interval
    if asked in ("vote", "fisher"):
        return asked, n_eff, None
    if n_eff is None:
        return (
            "vote",
            None,
            Notice(
                "no_rater_ids",
                "The votes carry no rater ids: intervals treat every vote as independent, "
                "which is too narrow if some people cast many of them.",
            ),
        )
    if n_eff < options.min_effective_raters:
        n_raters = int(np.unique(rater[rater >= 0]).size)
        return (
            "vote",
            n_eff,
            Notice(
                "few_raters",
                f"{n_raters} rater{'s' if n_raters != 1 else ''} ({n_eff:.1f} effective, "
                f"Kish): too few for intervals by rater (at least "
                f"{options.min_effective_raters:g} effective): intervals come from a bootstrap "
                "by vote, which treats votes as independent and is too narrow when raters "
                "differ. Collect votes from more raters.",
            ),
        )
    chosen = DEFAULT_CLUSTER_METHOD if asked == "auto" else asked
    if n_eff < _FEW_EFFECTIVE_RATERS:
        return (
            chosen,
            n_eff,
            Notice(
                "few_effective_raters",
                f"Only {n_eff:.1f} effective raters (Kish): intervals by rater are honest but "
                "wide (Student t with few degrees of freedom); more raters narrow them most.",
            ),
        )
    return chosen, n_eff, None


def _tallies(votes: VoteTable) -> dict[str, IntArray]:
    m = len(votes.systems)
    first_won, second_won = votes.outcome == Outcome.FIRST, votes.outcome == Outcome.SECOND

    def count(systems: IntArray, mask: BoolArray) -> IntArray:
        return np.bincount(systems[mask], minlength=m)

    def both_sides(mask: BoolArray) -> IntArray:
        return count(votes.first, mask) + count(votes.second, mask)

    return {
        "wins": count(votes.first, first_won) + count(votes.second, second_won),
        "losses": count(votes.second, first_won) + count(votes.first, second_won),
        "ties": both_sides(votes.outcome == Outcome.TIE),
        "both_bad": both_sides(votes.outcome == Outcome.BOTH_BAD),
        "votes": both_sides(np.ones(votes.n_votes, dtype=bool)),
    }


def _position(votes: VoteTable, options: LeaderboardOptions) -> PositionEffect | None:
    if not votes.position_known:
        return None
    decisive = votes.outcome <= Outcome.SECOND
    left = int((votes.outcome == Outcome.FIRST).sum())
    n = int(decisive.sum())
    low, high = wilson_interval(np.array([left]), np.array([n]), options.level)
    effect = effect_low = effect_high = None
    try:
        fit = fit_bradley_terry(
            votes.counts(ordered=True),
            ties=options.ties,
            both_bad=options.both_bad,
            position=True,
            l2=options.l2 or DEFAULT_L2,
        )
    except ValueError:
        fit = None
    if fit is not None and n:
        z = two_sided_z(options.level)
        value, se = fit.position_effect or 0.0, fit.position_se or 0.0
        effect, effect_low, effect_high = value, value - z * se, value + z * se
    return PositionEffect(
        left_share=finite(left / n) if n else None,
        left_share_low=finite(low[0]),
        left_share_high=finite(high[0]),
        decisive_votes=n,
        effect=finite(effect),
        effect_low=finite(effect_low),
        effect_high=finite(effect_high),
    )


@dataclass(frozen=True)
class _Spread:
    """A component's uncertainty: replicate scores (bootstraps) or a covariance of the
    centred scores with the quantile to scale it by (Wald and sandwich)."""

    boot: BootstrapResult | None
    cov: FloatArray | None
    quantile: float

    def bounds(self, base: int | None, level: float) -> tuple[FloatArray, FloatArray]:
        """Intervals of every score minus the ``base`` system's (centred when None)."""
        if self.boot is not None:
            samples = self.boot.samples
            shifted = samples - samples[:, [base]] if base is not None else samples
            tail = 100 * (1 - level) / 2
            low, high = np.percentile(shifted, [tail, 100 - tail], axis=0)
            return low, high
        assert self.cov is not None
        variance = np.diag(self.cov)
        if base is not None:
            variance = variance + variance[base] - 2 * self.cov[:, base]
        half = self.quantile * np.sqrt(np.clip(variance, 0, None))
        return -half, half

    def better(self, scores: FloatArray) -> BoolArray:
        """[i, j]: i's score is above j's beyond the level."""
        if self.boot is not None:
            return self.boot.better
        assert self.cov is not None
        variance = np.diag(self.cov)
        se = np.sqrt(np.clip(variance[:, None] + variance[None, :] - 2 * self.cov, 0, None))
        return np.asarray((scores[:, None] - scores[None, :]) > self.quantile * se)


def _spread(
    method: str,
    fit: BTFit,
    counts: PairCounts,
    votes: VoteTable,
    n_eff: float | None,
    options: LeaderboardOptions,
) -> tuple[_Spread, str]:
    if method in CLUSTER_METHODS:
        tables, _ = rater_tables(counts, votes.first, votes.second, votes.outcome, votes.rater)
        if method == "rater":
            boot = bootstrap_raters(
                fit,
                counts,
                tables,
                replicates=options.replicates,
                level=options.level,
                rng=options.seed,
            )
            return _Spread(boot, None, 0.0), method
        cluster = cluster_covariance(fit, counts, tables)
        return _Spread(None, cluster.cov, cluster.quantile(options.level, n_eff)), method
    if method == "vote":
        boot = bootstrap_votes(
            fit, counts, replicates=options.replicates, level=options.level, rng=options.seed
        )
        return _Spread(boot, None, 0.0), method
    return _Spread(None, fit.cov, two_sided_z(options.level)), "fisher"


def _fit_component(counts: PairCounts, options: LeaderboardOptions) -> tuple[BTFit, list[Notice]]:
    """The point fit; with l2=0 and no maximum-likelihood estimate, the default prior."""
    try:
        fit = fit_bradley_terry(counts, ties=options.ties, both_bad=options.both_bad, l2=options.l2)
        return fit, []
    except ValueError as exc:
        if options.l2 != 0:
            raise
        fit = fit_bradley_terry(counts, ties=options.ties, both_bad=options.both_bad, l2=DEFAULT_L2)
        return fit, [Notice("no_mle", f"{exc}. The estimates shown use l2={DEFAULT_L2:g}.")]


@dataclass(frozen=True)
class _Part:
    """One comparison component, fitted: its rows by rank, and the win probabilities and
    significance (True/False, None: cannot be tested) between them in that order."""

    component: Component
    rows: list[SystemRow]
    probabilities: FloatArray
    better: list[list[bool | None]]
    notices: list[Notice]
    # [a][b]: the interval of a's score minus b's (None where a side is not bounded).
    difference: list[list[tuple[float | None, float | None]]]


def _rank_component(
    index: int,
    votes: VoteTable,
    members: IntArray,
    method: str,
    tallies: dict[str, IntArray],
    options: LeaderboardOptions,
) -> _Part:
    """Fit, intervals and ranks of the systems ``members`` (indices into the full
    table), from ``votes`` restricted to them (systems renumbered 0..k-1)."""
    names = votes.systems
    k = len(names)
    counts = votes.counts(ordered=False)
    fit, notices = _fit_component(counts, options)
    design = fit.design
    sides = open_sides(k, design.i, design.j, fit.a, fit.b, fit.t)
    n_eff = effective_raters(votes.rater)
    if method in CLUSTER_METHODS and (n_eff is None or n_eff < options.min_effective_raters):
        method = "vote"  # this component alone has too few raters (said in the notice)
    spread, method = _spread(method, fit, counts, votes, n_eff, options)
    tail = (1 - options.level) / 2
    high_open, low_open = sides.high.copy(), sides.low.copy()
    boot = spread.boot
    if boot is not None:
        # More than the tail's share of replicates without a bound there: the percentile
        # bound is not the data's.
        resample_open = (boot.open_high > tail) | (boot.open_low > tail)
        high_open |= boot.open_high > tail
        low_open |= boot.open_low > tail
        # Every replicate the same (one vote, one rater): no spread to read a bound from.
        flat = np.ptp(boot.samples, axis=0) < _RANK_TOLERANCE
        if flat.any():
            resample_open |= flat
            high_open |= flat
            low_open |= flat
            notices.append(
                Notice(
                    "no_spread",
                    f"Every bootstrap replicate gave {_names(tuple(np.array(names)[flat]))} "
                    "the same score: the resamples say nothing about its uncertainty, so "
                    "its interval is shown open.",
                )
            )
        if boot.without_mle:
            notices.append(
                Notice(
                    "replicates_without_mle",
                    f"{boot.without_mle} of {options.replicates} bootstrap replicates of "
                    f"{_names(names)} have no maximum-likelihood estimate (a system that never "
                    "lost or never won in the resample); bounds they decide are shown open.",
                )
            )
        if boot.non_converged:
            notices.append(
                Notice(
                    "non_converged",
                    f"{boot.non_converged} bootstrap replicates did not converge.",
                )
            )
    else:
        resample_open = np.zeros(k, dtype=bool)
    scores = fit.scores
    decisive = float((fit.a + fit.b).sum())
    tie_strength = fit.tie_strength if decisive > 0 else None
    if decisive == 0:
        notices.append(
            Notice(
                "ties_only",
                f"Every vote between {_names(names)} was a tie: the tie strength and how far "
                "apart the systems are cannot be estimated.",
            )
        )
    elif sides.separated:
        notices.append(_separation_notice(names, sides, fit.l2))
    # Between strong groups of a separated component the difference is not identified.
    group = sides.group if sides.separated else np.zeros(k, dtype=np.int64)
    raw_better = spread.better(scores)
    better = [
        [
            None if a == b or group[a] != group[b] or decisive == 0 else bool(raw_better[a, b])
            for b in range(k)
        ]
        for a in range(k)
    ]
    base = names.index(options.anchor) if options.anchor in names else None
    low, high = spread.bounds(None, options.level)
    shown_low, shown_high = spread.bounds(base, options.level) if base is not None else (low, high)
    shift = scores[base] if base is not None else 0.0
    se = np.sqrt(np.clip(np.diag(spread.cov), 0, None)) if spread.cov is not None else None
    order = sorted(range(k), key=lambda s: (-scores[s], names[s]))
    rows = []
    for s in order:
        g = int(members[s])
        n_votes = int(tallies["votes"][g])
        flags = []
        if n_votes < options.min_votes:
            flags.append("preliminary")
        if high_open[s] and tallies["losses"][g] == 0:
            flags.append("never_lost")
        if low_open[s] and tallies["wins"][g] == 0:
            flags.append("never_won")
        if high_open[s]:
            flags.append("open_above")
        if low_open[s]:
            flags.append("open_below")
        if resample_open[s] and not (sides.high[s] or sides.low[s]):
            flags.append("resample_open")
        centred = scores[s]
        if boot is not None:
            c_low, c_high = low[s], high[s]
            d_low, d_high = shown_low[s], shown_high[s]
        else:
            c_low, c_high = centred + low[s], centred + high[s]
            d_low, d_high = centred - shift + shown_low[s], centred - shift + shown_high[s]
        rows.append(
            SystemRow(
                system=names[s],
                component=index,
                rank=1 + int((scores > centred + _RANK_TOLERANCE).sum()),
                rank_low=1 + sum(better[t][s] is True for t in range(k)),
                rank_high=k - sum(better[s][t] is True for t in range(k)),
                score=finite(centred),
                score_low=None if low_open[s] else finite(c_low),
                score_high=None if high_open[s] else finite(c_high),
                elo=to_elo(centred - shift),
                elo_low=None if low_open[s] else to_elo(d_low),
                elo_high=None if high_open[s] else to_elo(d_high),
                se=finite(se[s]) if se is not None else None,
                **_counts(tallies, g, options.level),
                preliminary=n_votes < options.min_votes,
                flags=tuple(flags),
            )
        )
    difference = _differences(spread, scores, options.level, better, open_side=low_open | high_open)
    probabilities = fit.win_probabilities()[np.ix_(order, order)]
    component = Component(
        index=index,
        systems=tuple(names[s] for s in order),
        votes=votes.n_votes,
        raters=int(np.unique(votes.rater[votes.rater >= 0]).size),
        effective_raters=finite(n_eff, 2),
        interval=method,
        tie_strength=finite(tie_strength),
        separated=sides.separated or decisive == 0,
        converged=fit.converged,
        replicates_without_mle=boot.without_mle if boot is not None else 0,
        non_converged=boot.non_converged if boot is not None else 0,
    )
    return _Part(
        component=component,
        rows=rows,
        probabilities=probabilities,
        better=[[better[a][b] for b in order] for a in order],
        notices=notices,
        difference=[[difference[a][b] for b in order] for a in order],
    )


def _differences(
    spread: _Spread,
    scores: FloatArray,
    level: float,
    better: list[list[bool | None]],
    *,
    open_side: BoolArray,
) -> list[list[tuple[float | None, float | None]]]:
    """[a][b]: the interval of score a − score b by the component's own method (the
    bootstrap's percentiles of the difference, or the covariance's), or (None, None)
    where it cannot be tested (``better`` says so) or either system's interval is open."""
    k = len(scores)
    out: list[list[tuple[float | None, float | None]]] = [[(None, None)] * k for _ in range(k)]
    for b in range(k):
        low, high = spread.bounds(b, level)
        for a in range(k):
            if better[a][b] is None or open_side[a] or open_side[b]:
                continue
            if spread.boot is None:  # offsets around the estimate
                gap = scores[a] - scores[b]
                low_a, high_a = gap + low[a], gap + high[a]
            else:
                low_a, high_a = low[a], high[a]
            out[a][b] = (finite(low_a), finite(high_a))
    return out


class _Tally(TypedDict):
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: float | None
    both_bad_rate: float | None
    both_bad_low: float | None
    both_bad_high: float | None


def _counts(tallies: dict[str, IntArray], g: int, level: float) -> _Tally:
    n = int(tallies["votes"][g])
    both_bad = int(tallies["both_bad"][g])
    low, high = wilson_interval(np.array([both_bad]), np.array([n]), level)
    draws = tallies["ties"][g] + both_bad
    return {
        "votes": n,
        "wins": int(tallies["wins"][g]),
        "losses": int(tallies["losses"][g]),
        "ties": int(tallies["ties"][g]),
        "both_bad": both_bad,
        "win_rate": finite((tallies["wins"][g] + draws / 2) / n) if n else None,
        "both_bad_rate": finite(both_bad / n) if n else None,
        "both_bad_low": finite(low[0]) if n else None,
        "both_bad_high": finite(high[0]) if n else None,
    }


def _names(names: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _separation_notice(names: tuple[str, ...], sides: OpenSides, l2: float) -> Notice:
    parts = []
    above = [n for n, h, lo in zip(names, sides.high, sides.low, strict=True) if h and not lo]
    below = [n for n, h, lo in zip(names, sides.high, sides.low, strict=True) if lo and not h]
    both = [n for n, h, lo in zip(names, sides.high, sides.low, strict=True) if h and lo]
    if above:
        parts.append(
            f"{_names(tuple(above))}: never lost to a system outside their group (no upper bound)"
        )
    if below:
        parts.append(
            f"{_names(tuple(below))}: never beat a system outside their group (no lower bound)"
        )
    if both:
        parts.append(f"{_names(tuple(both))}: between such groups (no bound either way)")
    return Notice(
        "separation",
        "The win graph is separated. "
        + "; ".join(parts)
        + f". Those bounds are shown open, the scores shown rest on the prior (l2={l2:g}) "
        "rather than the data, and comparisons between the groups are not tested.",
    )


def _unvoted(index: int, g: int, name: str, tallies: dict[str, IntArray], level: float) -> _Part:
    row = SystemRow(
        system=name,
        component=index,
        rank=None,
        rank_low=None,
        rank_high=None,
        score=None,
        score_low=None,
        score_high=None,
        elo=None,
        elo_low=None,
        elo_high=None,
        se=None,
        **_counts(tallies, g, level),
        preliminary=True,
        flags=("no_votes", "preliminary"),
    )
    component = Component(index, (name,), 0, 0, None, "none", None, False, True, 0, 0)
    return _Part(component, [row], np.full((1, 1), np.nan), [[None]], [], [[(None, None)]])


def _breakdown(votes: VoteTable, options: LeaderboardOptions, name: str) -> Breakdown:
    label = votes.labels[name]
    groups = []
    inner = replace(options, interval="fisher", breakdowns=(), anchor=None)
    for code, value in enumerate(label.values):
        part = votes.select(label.codes == code)
        present = np.unique(np.concatenate([part.first, part.second]))
        if part.n_votes < MIN_BREAKDOWN_VOTES or present.size < 2:
            reason = f"fewer than {MIN_BREAKDOWN_VOTES} votes"
            groups.append(BreakdownGroup(value, part.n_votes, False, reason, ()))
            continue
        board = leaderboard(part, inner)
        rows = tuple(r for r in board.rows if r.votes > 0)
        groups.append(BreakdownGroup(value, part.n_votes, True, None, rows))
    return Breakdown(name, tuple(groups))


def leaderboard(votes: VoteTable, options: LeaderboardOptions = DEFAULT_OPTIONS) -> Leaderboard:
    """Fit and summarise: everything the leaderboard page, the API and the command line
    show, as one typed result.

    Each comparison component (systems linked by votes) is fitted and ranked on its own;
    intervals use ``options.interval`` where the data support it and say why not where
    they do not (see the module docstring).

    Parameters
    ----------
    votes : VoteTable
        The votes.
    options : LeaderboardOptions
        Fit and interval options.

    Returns
    -------
    Leaderboard

    Raises
    ------
    ValueError
        For bad options, no votes, or a cluster interval asked of votes without raters.

    Example
    -------
    >>> from analysis.core.votes import make_vote_table
    >>> votes = make_vote_table(systems=("a", "b"), first=np.array([0, 0, 1]),
    ...     second=np.array([1, 1, 0]), outcome=np.array([0, 0, 0]), position_known=False)
    >>> [row.system for row in leaderboard(votes).rows]
    ['a', 'b']
    """
    _validate(votes, options)
    m = len(votes.systems)
    method, n_eff, method_notice = _method(options, votes.rater)
    tallies = _tallies(votes)
    labels = comparison_components(m, votes.first, votes.second)
    parts: list[_Part] = []
    for index in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == index)
        if members.size == 1:
            g = int(members[0])
            parts.append(_unvoted(index, g, votes.systems[g], tallies, options.level))
            continue
        sub = votes.restrict(members)
        parts.append(_rank_component(index, sub, members, method, tallies, options))
    notices = [method_notice] if method_notice else []
    voted = [p for p in parts if p.component.votes > 0]
    if len(voted) > 1:
        groups = "; ".join(f"{{{_names(p.component.systems)}}}" for p in voted)
        notices.append(
            Notice(
                "disconnected",
                f"The systems form {len(voted)} groups never compared with each other: "
                f"{groups}. Scores, ranks and significance hold within a group only.",
            )
        )
    unvoted = [p.component.systems[0] for p in parts if p.component.votes == 0]
    if unvoted:
        notices.append(Notice("no_votes", f"No votes yet for {_names(tuple(unvoted))}."))
    for part in parts:
        notices.extend(part.notices)
    preliminary = [r.system for p in voted for r in p.rows if r.preliminary]
    if preliminary:
        notices.append(
            Notice(
                "preliminary",
                f"{_names(tuple(preliminary))}: fewer than {options.min_votes} votes, "
                "marked preliminary.",
            )
        )
    rows = [row for part in parts for row in part.rows]
    size = len(rows)
    probabilities: list[list[float | None]] = [[None] * size for _ in range(size)]
    better: list[list[bool | None]] = [[None] * size for _ in range(size)]
    low: list[list[float | None]] = [[None] * size for _ in range(size)]
    high: list[list[float | None]] = [[None] * size for _ in range(size)]
    start = 0
    for part in parts:
        k = len(part.rows)
        for a in range(k):
            for b in range(k):
                probabilities[start + a][start + b] = finite(part.probabilities[a, b])
                better[start + a][start + b] = part.better[a][b]
                low[start + a][start + b], high[start + a][start + b] = part.difference[a][b]
        start += k
    main = parts[0].component
    replicates = options.replicates if main.interval in ("rater", "vote") else None
    return Leaderboard(
        options=options,
        n_votes=votes.n_votes,
        n_raters=int(np.unique(votes.rater[votes.rater >= 0]).size),
        effective_raters=finite(n_eff, 2),
        n_systems=m,
        uncertainty=Uncertainty(
            requested=options.interval,
            method=main.interval,
            description=DESCRIPTIONS.get(main.interval, "none").format(
                replicates=options.replicates
            ),
            estimand=ESTIMAND,
            level=options.level,
            replicates=replicates,
            min_effective_raters=options.min_effective_raters,
        ),
        rows=tuple(rows),
        components=tuple(p.component for p in parts),
        win_probability=tuple(tuple(r) for r in probabilities),
        significantly_better=tuple(tuple(r) for r in better),
        difference_low=tuple(tuple(r) for r in low),
        difference_high=tuple(tuple(r) for r in high),
        position=_position(votes, options),
        breakdowns=tuple(
            _breakdown(votes, options, name)
            for name in options.breakdowns
            if name in votes.labels and len(votes.labels[name].values) > 1
        ),
        notices=tuple(notices),
    )


def judgments(votes: VoteTable) -> tuple[IntArray, IntArray, FloatArray]:
    """(unit, rater, answer) of the votes with both a unit and a rater, each answer
    relative to the pair's lower system: what the agreement statistics compare."""
    _, _, answer = canonical_answer(votes)
    keep = (votes.unit >= 0) & (votes.rater >= 0)
    return votes.unit[keep], votes.rater[keep], answer[keep].astype(np.float64)


def rater_agreement(
    votes: VoteTable, *, splits: int = 50, seed: int | None = 0
) -> AgreementSummary:
    """Agreement between raters who judged the same comparison (Krippendorff's nominal
    alpha, Fleiss' kappa, raw agreement) and the split-half reliability of the scores
    (None with fewer than four raters), and each rater's agreement with the others'
    majority. Votes without a unit or a rater are left out."""
    unit, rater, value = judgments(votes)
    split_half = None
    if np.unique(rater).size >= 4:
        n = len(votes.systems)
        cells = pair_cells(votes.first, votes.second, votes.outcome, n_systems=n, ordered=False)

        def scores(mask: BoolArray) -> FloatArray:
            # A half's counts from the cells: selecting a whole table (labels too) forty
            # times was a fifth of a million-vote report's build.
            half = counts_of_cells(cells[mask], n_systems=n, ordered=False)
            return fit_bradley_terry(half).scores

        split_half = split_half_reliability(votes.rater, scores, splits=splits, rng=seed)
    return AgreementSummary(
        krippendorff_alpha=krippendorff_alpha(unit, rater, value, level="nominal"),
        fleiss_kappa=fleiss_kappa(unit, rater, value),
        percent_agreement=percent_agreement(unit, rater, value),
        split_half=split_half,
        raters_vs_majority=tuple(
            RaterMajority(votes.raters[r.rater], r.agreed, r.compared)
            for r in majority_agreement(unit, rater, value)
            if r.compared
        ),
    )
