"""A per-asset measure beside people's votes, item by item: how often the asset with
the better measure is the one people chose, beside the human ceiling, as ImageReward
(Xu et al. 2023), HPSv2 (Wu et al. 2023) and PickScore (Kirstain et al. 2023) report
preference prediction; and rank correlation between per-asset human scores and the
measure.

Ties in votes ("tie", "both bad") predict nothing and are left out of every share, and
counted. A tie in the measure gets half credit (a coin flip between the two assets).
"""

from dataclasses import dataclass

import numpy as np

from analysis.core.correlation import (
    Coefficient,
    _validate_pair,
    correlation_coefficients,
    permutation_p_values,
)
from analysis.core.results import finite
from analysis.core.types import FloatArray, IntArray, Outcome

__all__ = [
    "ItemAgreement",
    "ItemCorrelation",
    "asset_win_rates",
    "item_agreement",
    "item_correlation",
]


@dataclass(frozen=True)
class ItemAgreement:
    """How well a per-asset measure predicts votes.

    ``vote_accuracy``: share of decisive votes where the asset with the better measure
    was chosen. ``majority_accuracy``: the same over comparisons (an unordered pair of
    assets), against the majority of their decisive votes; comparisons split evenly are
    left out (``split_comparisons``). ``human_ceiling``: share of votes that agree with
    the majority of the *other* decisive votes on the same comparison (leave-one-out;
    an even split of the others gives half credit), over the ``ceiling_votes`` in
    comparisons with at least two decisive votes; ``accuracy_on_ceiling_votes`` is the
    measure's accuracy on exactly those votes, to read beside it.
    """

    measure: str
    lower_is_better: bool
    decisive_votes: int
    tie_votes_excluded: int
    missing_measure_votes: int
    measure_ties: int
    vote_accuracy: float | None
    comparisons: int
    split_comparisons: int
    majority_accuracy: float | None
    ceiling_votes: int
    human_ceiling: float | None
    accuracy_on_ceiling_votes: float | None


@dataclass(frozen=True)
class ItemCorrelation:
    """Per-asset human scores against a per-asset measure (no intervals: items are the
    units, and the p-values treat them as exchangeable)."""

    measure: str
    human_score: str
    n_items: int
    coefficients: tuple[Coefficient, ...]
    p_method: str
    notes: tuple[str, ...]


def _validate_votes(first: IntArray, second: IntArray, outcome: IntArray, n: int) -> None:
    if not (first.shape == second.shape == outcome.shape and first.ndim == 1):
        raise ValueError("asset_first, asset_second and outcome must be 1-d of equal length")
    for name, a in (("asset_first", first), ("asset_second", second)):
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"{name} must index measure (0..{n - 1})")
    if (first == second).any():
        raise ValueError("asset_first and asset_second must differ in every vote")


def _share(credit: FloatArray) -> float | None:
    return finite(float(credit.mean())) if credit.size else None


def item_agreement(
    asset_first: IntArray,
    asset_second: IntArray,
    outcome: IntArray,
    measure: FloatArray,
    *,
    name: str,
    lower_is_better: bool,
) -> ItemAgreement:
    """Pairwise preference prediction by a per-asset measure, with the human ceiling.

    Parameters
    ----------
    asset_first, asset_second : ndarray of int (votes,)
        The two assets of each vote (indices into ``measure``).
    outcome : ndarray of int (votes,)
        :class:`Outcome` codes relative to ``asset_first``.
    measure : ndarray (assets,)
        The measure per asset; NaN where unknown (those votes are left out, counted).
    name : str
        The measure's name.
    lower_is_better : bool
        The measure is better when lower: it is negated first.

    Returns
    -------
    ItemAgreement

    Raises
    ------
    ValueError
        For arrays of mismatched shapes or asset indices out of range.

    References
    ----------
    Xu et al. (2023), "ImageReward", NeurIPS, §4 (preference accuracy and the
    agreement between annotators); Kirstain et al. (2023), "Pick-a-Pic", §5.

    Example
    -------
    >>> r = item_agreement(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([0, 1, 1]),
    ...     np.array([2.0, 1.0]), name="sharpness", lower_is_better=False)
    >>> r.vote_accuracy, r.human_ceiling
    (0.666667, 0.333333)
    """
    first = np.asarray(asset_first, dtype=np.int64)
    second = np.asarray(asset_second, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    values = (-1.0 if lower_is_better else 1.0) * np.asarray(measure, dtype=np.float64)
    _validate_votes(first, second, outcome, values.size)
    decisive = (outcome == Outcome.FIRST) | (outcome == Outcome.SECOND)
    known = np.isfinite(values[first]) & np.isfinite(values[second])
    keep = decisive & known
    winner = np.where(outcome == Outcome.FIRST, first, second)[keep]
    loser = np.where(outcome == Outcome.FIRST, second, first)[keep]
    diff = values[winner] - values[loser]
    credit = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    # Comparisons: unordered asset pairs; "low" is the pair's lower asset index.
    low, high = np.minimum(winner, loser), np.maximum(winner, loser)
    _, unit = np.unique(np.stack([low, high]), axis=1, return_inverse=True)
    unit = unit.ravel()
    chose_low = (winner == low).astype(np.int64)
    k = np.bincount(unit)
    w = np.bincount(unit, weights=chose_low).astype(np.int64)
    # The measure's pick per comparison: 1 low, 0 high, 0.5 a tie.
    unit_low = np.zeros(k.size, dtype=np.int64)
    unit_high = np.zeros(k.size, dtype=np.int64)
    unit_low[unit], unit_high[unit] = low, high
    measure_diff = values[unit_low] - values[unit_high]
    decided = 2 * w != k
    majority_low = 2 * w > k
    unit_credit = np.where(
        measure_diff == 0, 0.5, ((measure_diff > 0) == majority_low).astype(np.float64)
    )[decided]
    # Leave one out: the other k - 1 votes' majority against this vote's choice.
    others = k[unit] - 1
    others_low = w[unit] - chose_low
    in_ceiling = others >= 1
    loo = np.where(
        2 * others_low == others,
        0.5,
        ((2 * others_low > others) == (chose_low == 1)).astype(np.float64),
    )
    return ItemAgreement(
        measure=name,
        lower_is_better=lower_is_better,
        decisive_votes=int(keep.sum()),
        tie_votes_excluded=int((~decisive).sum()),
        missing_measure_votes=int((decisive & ~known).sum()),
        measure_ties=int((diff == 0).sum()),
        vote_accuracy=_share(credit),
        comparisons=int(k.size),
        split_comparisons=int((~decided).sum()),
        majority_accuracy=_share(unit_credit),
        ceiling_votes=int(in_ceiling.sum()),
        human_ceiling=_share(loo[in_ceiling]),
        accuracy_on_ceiling_votes=_share(credit[in_ceiling]),
    )


def asset_win_rates(
    asset_first: IntArray, asset_second: IntArray, outcome: IntArray, n_assets: int
) -> tuple[FloatArray, IntArray]:
    """Each asset's win rate (wins plus half its ties and both-bad votes, over its
    votes; NaN without votes) and its number of votes: the per-item human score."""
    first = np.asarray(asset_first, dtype=np.int64)
    second = np.asarray(asset_second, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    _validate_votes(first, second, outcome, n_assets)
    draw = (outcome == Outcome.TIE) | (outcome == Outcome.BOTH_BAD)
    points_first = np.where(outcome == Outcome.FIRST, 1.0, np.where(draw, 0.5, 0.0))
    points = np.bincount(first, points_first, n_assets) + np.bincount(
        second, np.where(outcome == Outcome.SECOND, 1.0, np.where(draw, 0.5, 0.0)), n_assets
    )
    votes = np.bincount(first, minlength=n_assets) + np.bincount(second, minlength=n_assets)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(votes > 0, points / votes, np.nan)
    return np.asarray(rate, dtype=np.float64), votes.astype(np.int64)


def item_correlation(
    human: FloatArray,
    metric: FloatArray,
    *,
    name: str,
    lower_is_better: bool,
    human_score: str = "win rate",
    rng: np.random.Generator | int | None = 0,
) -> ItemCorrelation:
    """Kendall's tau-b, Spearman's rho and Pearson's r between per-asset human scores
    and a per-asset measure (oriented so that higher means better), over the assets
    where both are known, with permutation p-values (exact up to 8 assets, Monte Carlo
    up to 60, asymptotic beyond)."""
    x = np.asarray(human, dtype=np.float64)
    y = (-1.0 if lower_is_better else 1.0) * np.asarray(metric, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"human and metric must have equal shapes, not {x.shape}, {y.shape}")
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    _validate_pair(x, y)
    notes = []
    if (~both).any():
        notes.append(f"{int((~both).sum())} assets without a human score or a measure left out.")
    if x.size < 3:
        coefs = tuple(
            Coefficient(c, None, None, None, None, None, 0)
            for c in ("kendall_tau_b", "spearman", "pearson")
        )
        return ItemCorrelation(
            name, human_score, int(x.size), coefs, "none", (*notes, "Fewer than 3 assets.")
        )
    values = correlation_coefficients(x, y)
    p, min_p, method = permutation_p_values(x, y, rng=rng)
    coefs = tuple(
        Coefficient(c, finite(values[c], 12), None, None, finite(p[c], 12), finite(min_p[c], 12), 0)
        for c in values
    )
    return ItemCorrelation(name, human_score, int(x.size), coefs, method, tuple(notes))
