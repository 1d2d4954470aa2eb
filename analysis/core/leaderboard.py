"""A leaderboard from votes: scores with intervals, ranks, both-bad rates, position bias,
breakdowns; and how far the raters agree. Used by the command line and by the app."""

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis.core.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    majority_agreement,
    percent_agreement,
    split_half_reliability,
)
from analysis.core.bootstrap import bootstrap_raters, bootstrap_votes, fisher_interval, rater_tables
from analysis.core.bt import DEFAULT_L2, ELO_PER_UNIT, BTFit, fit_bradley_terry
from analysis.core.rates import two_sided_z, wilson_interval
from analysis.core.types import BoolArray, FloatArray, IntArray, Outcome
from analysis.core.votes import VoteTable, canonical_answer

INTERVALS = ("auto", "rater", "vote", "fisher")
# Groups of a breakdown with fewer votes than this are listed but not fitted.
MIN_BREAKDOWN_VOTES = 20


@dataclass(frozen=True)
class LeaderboardOptions:
    """How to fit and how to state uncertainty.

    ``interval="auto"`` bootstraps raters when rater ids are known (their votes are
    correlated) and votes otherwise; ``"fisher"`` uses the observed information only.
    """

    ties: str = "davidson"
    both_bad: str = "tie"
    l2: float = DEFAULT_L2
    interval: str = "auto"
    replicates: int = 1000
    level: float = 0.95
    anchor: str | None = None
    seed: int | None = 0
    breakdowns: tuple[str, ...] = ("criterion", "category", "source")


def _validate(votes: VoteTable, options: LeaderboardOptions) -> None:
    if options.interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {options.interval!r}")
    if options.anchor is not None and options.anchor not in votes.systems:
        raise ValueError(
            f"anchor {options.anchor!r} is not one of the systems {list(votes.systems)}"
        )
    if votes.n_votes == 0:
        raise ValueError("there are no votes to rank")


def _clean(value: Any) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


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


def _position(votes: VoteTable, options: LeaderboardOptions) -> dict[str, Any] | None:
    if not votes.position_known:
        return None
    decisive = votes.outcome <= Outcome.SECOND
    left = int((votes.outcome == Outcome.FIRST).sum())
    n = int(decisive.sum())
    low, high = wilson_interval(np.array([left]), np.array([n]), options.level)
    result: dict[str, Any] = {
        "left_share": _clean(left / n) if n else None,
        "left_share_low": _clean(low[0]),
        "left_share_high": _clean(high[0]),
        "decisive_votes": n,
    }
    try:
        fit = fit_bradley_terry(
            votes.counts(ordered=True),
            ties=options.ties,
            both_bad=options.both_bad,
            position=True,
            l2=options.l2,
        )
    except ValueError:
        return result
    z = two_sided_z(options.level)
    effect, se = fit.position_effect or 0.0, fit.position_se or 0.0
    result.update(
        effect=_clean(effect),
        effect_low=_clean(effect - z * se),
        effect_high=_clean(effect + z * se),
        adjusted_scores=[_clean(s) for s in fit.scores],
    )
    return result


def _fit(votes: VoteTable, options: LeaderboardOptions) -> BTFit:
    return fit_bradley_terry(
        votes.counts(ordered=False), ties=options.ties, both_bad=options.both_bad, l2=options.l2
    )


def _breakdown(votes: VoteTable, options: LeaderboardOptions, name: str) -> dict[str, Any]:
    label = votes.labels[name]
    groups = {}
    z = two_sided_z(options.level)
    for code, value in enumerate(label.values):
        part = votes.select(label.codes == code)
        present = np.unique(np.concatenate([part.first, part.second]))
        if part.n_votes < MIN_BREAKDOWN_VOTES or present.size < 2:
            groups[value] = {"votes": part.n_votes, "fitted": False, "systems": []}
            continue
        fit = _fit(part, options)
        se = fit.standard_errors
        rows = [
            {
                "system": votes.systems[k],
                "elo": _clean(1000 + ELO_PER_UNIT * fit.scores[k]),
                "elo_low": _clean(1000 + ELO_PER_UNIT * (fit.scores[k] - z * se[k])),
                "elo_high": _clean(1000 + ELO_PER_UNIT * (fit.scores[k] + z * se[k])),
            }
            for k in np.argsort(-fit.scores)
            if k in present
        ]
        groups[value] = {
            "votes": part.n_votes,
            "fitted": True,
            "interval": "fisher",
            "systems": rows,
        }
    return groups


def leaderboard(
    votes: VoteTable, options: LeaderboardOptions = LeaderboardOptions()
) -> dict[str, Any]:
    """Fit and summarise: everything the leaderboard page, the API and the command line
    show, as plain JSON-ready data.

    Raises
    ------
    ValueError
        For bad options, no votes, or data the chosen fit cannot handle.
    """
    _validate(votes, options)
    counts = votes.counts(ordered=False)
    fit = fit_bradley_terry(counts, ties=options.ties, both_bad=options.both_bad, l2=options.l2)
    m = len(votes.systems)
    anchor = votes.systems.index(options.anchor) if options.anchor else None
    base = fit.scores[anchor] if anchor is not None else 0.0
    raters_known = bool((votes.rater >= 0).any())
    method = options.interval
    if method == "auto":
        method = "rater" if raters_known else "vote"
    if method == "rater" and not raters_known:
        raise ValueError("a rater bootstrap needs rater ids")
    fisher_low, fisher_high = fisher_interval(fit, options.level)
    boot = None
    if method == "vote":
        boot = bootstrap_votes(
            fit, counts, replicates=options.replicates, level=options.level, rng=options.seed
        )
    elif method == "rater":
        tables, _ = rater_tables(counts, votes.first, votes.second, votes.outcome, votes.rater)
        boot = bootstrap_raters(
            fit,
            counts,
            tables,
            replicates=options.replicates,
            level=options.level,
            rng=options.seed,
        )

    def elo(x: FloatArray) -> FloatArray:
        return 1000.0 + ELO_PER_UNIT * (np.asarray(x) - base)

    order = np.argsort(-fit.scores)
    if boot is not None:
        elo_low, elo_high = boot.elo_interval(anchor)
        rank_low, rank_high = boot.rank_low, boot.rank_high
        better = boot.better
        interval = f"{method} bootstrap, {options.replicates} replicates, percentile"
    else:
        elo_low, elo_high = elo(fisher_low), elo(fisher_high)
        rank_low = rank_high = np.argsort(order) + 1  # no interval: the point rank
        z = two_sided_z(options.level)
        better = (fit.scores[:, None] - fit.scores[None, :]) > z * fit.difference_se
        interval = "Wald, observed information"
    tallies = _tallies(votes)
    bb_low, bb_high = wilson_interval(tallies["both_bad"], tallies["votes"], options.level)
    rows = []
    for rank, k in enumerate(order.tolist(), start=1):
        n_k = tallies["votes"][k]
        draws = tallies["ties"][k] + tallies["both_bad"][k]
        rows.append(
            {
                "rank": rank,
                "system": votes.systems[k],
                "elo": _clean(elo(fit.scores[k])),
                "elo_low": _clean(elo_low[k]),
                "elo_high": _clean(elo_high[k]),
                "rank_low": int(rank_low[k]),
                "rank_high": int(rank_high[k]),
                "score": _clean(fit.scores[k]),
                "se": _clean(fit.standard_errors[k]),
                "fisher_low": _clean(elo(fisher_low[k])),
                "fisher_high": _clean(elo(fisher_high[k])),
                "votes": int(n_k),
                "wins": int(tallies["wins"][k]),
                "losses": int(tallies["losses"][k]),
                "ties": int(tallies["ties"][k]),
                "both_bad": int(tallies["both_bad"][k]),
                "win_rate": _clean((tallies["wins"][k] + draws / 2) / n_k) if n_k else None,
                "both_bad_rate": _clean(tallies["both_bad"][k] / n_k) if n_k else None,
                "both_bad_low": _clean(bb_low[k]),
                "both_bad_high": _clean(bb_high[k]),
            }
        )
    names = [votes.systems[k] for k in order.tolist()]
    probabilities = fit.win_probabilities()[np.ix_(order, order)]
    result: dict[str, Any] = {
        "options": asdict(options),
        "interval": interval,
        "level": options.level,
        "n_votes": votes.n_votes,
        "n_raters": int(np.unique(votes.rater[votes.rater >= 0]).size),
        "n_systems": m,
        "systems": rows,
        "order": names,
        "tie_strength": _clean(fit.tie_strength) if fit.tie_strength is not None else None,
        "converged": fit.converged,
        "win_probability": [[_clean(p) for p in row] for row in probabilities],
        "significantly_better": [[bool(better[i, j]) for j in order] for i in order],
        "position": _position(votes, options),
        "breakdowns": {
            name: _breakdown(votes, options, name)
            for name in options.breakdowns
            if name in votes.labels and len(votes.labels[name].values) > 1
        },
    }
    if boot is not None and boot.non_converged:
        result["notes"] = [f"{boot.non_converged} bootstrap replicates did not converge"]
    return result


def rater_agreement(votes: VoteTable, *, splits: int = 50, seed: int | None = 0) -> dict[str, Any]:
    """Agreement between raters who judged the same comparison (Krippendorff's nominal
    alpha, Fleiss' kappa, raw agreement) and the split-half reliability of the scores
    (None with fewer than four raters), and each rater's agreement with the others'
    majority. Votes without a unit or a rater are left out."""
    _, _, answer = canonical_answer(votes)
    keep = (votes.unit >= 0) & (votes.rater >= 0)
    unit, rater, value = votes.unit[keep], votes.rater[keep], answer[keep].astype(np.float64)
    split_half = None
    if np.unique(rater).size >= 4:

        def scores(mask: BoolArray) -> FloatArray:
            return fit_bradley_terry(votes.select(mask).counts(ordered=False)).scores

        split_half = asdict(split_half_reliability(votes.rater, scores, splits=splits, rng=seed))
    return {
        "krippendorff_alpha": krippendorff_alpha(unit, rater, value, level="nominal").as_dict(),
        "fleiss_kappa": fleiss_kappa(unit, rater, value).as_dict(),
        "percent_agreement": percent_agreement(unit, rater, value).as_dict(),
        "split_half": split_half,
        "raters_vs_majority": [
            {"rater": votes.raters[r.rater], "agreed": r.agreed, "compared": r.compared}
            for r in majority_agreement(unit, rater, value)
            if r.compared
        ],
    }


def json_ready(value: Any) -> Any:
    """JSON has no NaN or infinity: undefined numbers become null (numpy scalars too)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
