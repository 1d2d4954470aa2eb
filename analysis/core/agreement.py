"""Inter-rater agreement on units judged by several raters.

Units are whatever several raters judged alike: a (prompt, pair of systems, criterion)
comparison, or an item of a rating study. Ratings come in long form (unit, rater, value);
values are category codes for nominal data or numbers for ordinal and interval data.
Where agreement is undefined (every rating identical, so no disagreement is even
expected), the result says so instead of dividing by zero.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.core.types import BoolArray, FloatArray, IntArray

LEVELS = ("nominal", "ordinal", "interval")


@dataclass(frozen=True)
class Agreement:
    """An agreement coefficient; ``value`` is NaN when ``defined`` is False."""

    value: float
    defined: bool
    reason: str
    n_units: int
    n_ratings: int

    def as_dict(self) -> dict[str, object]:
        return {
            "value": self.value if self.defined else None,
            "defined": self.defined,
            "reason": self.reason,
            "n_units": self.n_units,
            "n_ratings": self.n_ratings,
        }


def _undefined(reason: str, n_units: int, n_ratings: int) -> Agreement:
    return Agreement(math.nan, False, reason, n_units, n_ratings)


def _validate_long(
    unit: IntArray, rater: IntArray, value: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    unit, rater, value = np.asarray(unit), np.asarray(rater), np.asarray(value, dtype=np.float64)
    if not unit.shape == rater.shape == value.shape or unit.ndim != 1:
        raise ValueError("unit, rater and value must be 1-d arrays of the same length")
    keep = ~np.isnan(value)
    return unit[keep], rater[keep], value[keep]


def value_counts(unit: IntArray, value: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per unit, how many ratings took each value: (units, values) counts and the values."""
    units, unit_index = np.unique(unit, return_inverse=True)
    values, value_index = np.unique(value, return_inverse=True)
    cell = unit_index.reshape(-1) * values.size + value_index.reshape(-1)
    table = np.bincount(cell, minlength=units.size * values.size).astype(np.float64)
    return table.reshape(units.size, values.size), values


def _pairable(
    unit: IntArray, rater: IntArray, value: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Value counts (units, values) of the units rated at least twice, their number of
    ratings, and the values."""
    unit, rater, value = _validate_long(unit, rater, value)
    table, values = value_counts(unit, value)
    per_unit = table.sum(axis=1)
    keep = per_unit >= 2
    return table[keep], per_unit[keep], values


_NO_PAIRS = "no unit was rated by two raters"


def krippendorff_alpha(
    unit: IntArray, rater: IntArray, value: FloatArray, *, level: str = "nominal"
) -> Agreement:
    """Krippendorff's alpha from ratings in long form.

    Parameters
    ----------
    unit, rater : ndarray, shape (n,)
        Which unit each rating belongs to and who gave it.
    value : ndarray of float, shape (n,)
        The rating; NaN is a missing rating.
    level : {"nominal", "ordinal", "interval"}
        Level of measurement, which sets the difference function.

    Returns
    -------
    Agreement
        Undefined when no disagreement is expected (one value only) or no unit has two
        ratings.

    Raises
    ------
    ValueError
        For arrays of different shapes or an unknown level.

    References
    ----------
    Krippendorff (2011), "Computing Krippendorff's alpha-reliability", eqs. for the
    coincidence matrix and the nominal, ordinal and interval metrics.

    Example
    -------
    >>> unit, rater = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    >>> krippendorff_alpha(unit, rater, np.array([1.0, 1.0, 2.0, 2.0])).value
    1.0
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    table, per_unit, values = _pairable(unit, rater, value)
    n_units = per_unit.size
    if n_units == 0:
        return _undefined(_NO_PAIRS, 0, 0)
    weighted = table / (per_unit - 1)[:, None]
    coincidence = weighted.T @ table - np.diag(weighted.sum(axis=0))
    n_value = coincidence.sum(axis=1)
    n = n_value.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(values.size)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    else:
        cumulative = np.cumsum(n_value)
        between = cumulative[None, :] - cumulative[:, None] + n_value[:, None]
        between = np.where(
            np.arange(values.size)[None, :] >= np.arange(values.size)[:, None], between, between.T
        )
        delta = (between - (n_value[:, None] + n_value[None, :]) / 2) ** 2
    observed = float((coincidence * delta).sum() / n)
    expected = float((np.outer(n_value, n_value) * delta).sum() / (n * (n - 1)))
    if expected == 0:
        return _undefined(
            "every rating has the same value: no disagreement is expected", n_units, int(n)
        )
    return Agreement(1.0 - observed / expected, True, "", n_units, int(n))


def fleiss_kappa(unit: IntArray, rater: IntArray, value: FloatArray) -> Agreement:
    """Fleiss' kappa over units with two or more ratings (units may have different
    numbers of raters: each unit's agreement uses its own count).

    Returns
    -------
    Agreement
        Undefined when chance agreement is 1 (one category only).

    References
    ----------
    Fleiss (1971), Psychological Bulletin 76(5), eqs. 2–6.

    Example
    -------
    >>> unit, rater = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    >>> fleiss_kappa(unit, rater, np.array([0.0, 0.0, 1.0, 1.0])).value
    1.0
    """
    table, per_unit, _ = _pairable(unit, rater, value)
    if per_unit.size == 0:
        return _undefined(_NO_PAIRS, 0, 0)
    agreement = ((table**2).sum(axis=1) - per_unit) / (per_unit * (per_unit - 1))
    shares = table.sum(axis=0) / per_unit.sum()
    chance = float((shares**2).sum())
    n_units, n_ratings = per_unit.size, int(per_unit.sum())
    if chance >= 1.0:
        return _undefined(
            "every rating falls in one category: chance agreement is 1", n_units, n_ratings
        )
    return Agreement(
        (float(agreement.mean()) - chance) / (1 - chance), True, "", n_units, n_ratings
    )


def percent_agreement(unit: IntArray, rater: IntArray, value: FloatArray) -> Agreement:
    """The share of agreeing pairs of ratings within a unit, averaged over units."""
    table, per_unit, _ = _pairable(unit, rater, value)
    if per_unit.size == 0:
        return _undefined(_NO_PAIRS, 0, 0)
    share = ((table * (table - 1)).sum(axis=1)) / (per_unit * (per_unit - 1))
    return Agreement(float(share.mean()), True, "", per_unit.size, int(per_unit.sum()))


@dataclass(frozen=True)
class RaterAgreement:
    rater: int
    agreed: int
    compared: int

    @property
    def share(self) -> float:
        return self.agreed / self.compared if self.compared else math.nan


def majority_agreement(unit: IntArray, rater: IntArray, value: FloatArray) -> list[RaterAgreement]:
    """Each rater's agreement with the majority of the other raters of the same units
    (leave-one-out). Units where the others tie for the majority are left out."""
    unit, rater, value = _validate_long(unit, rater, value)
    if value.size == 0:
        return []
    table, values = value_counts(unit, value)
    _, unit_index = np.unique(unit, return_inverse=True)
    value_index = np.searchsorted(values, value)
    others = table[unit_index].copy()
    others[np.arange(value.size), value_index] -= 1
    top = others.max(axis=1)
    clear = (others == top[:, None]).sum(axis=1) == 1
    usable = clear & (others.sum(axis=1) >= 2)
    agreed = usable & (others.argmax(axis=1) == value_index)
    codes, index = np.unique(rater, return_inverse=True)
    agreed_n = np.bincount(index.reshape(-1), weights=agreed, minlength=codes.size)
    usable_n = np.bincount(index.reshape(-1), weights=usable, minlength=codes.size)
    return [
        RaterAgreement(int(code), int(a), int(u))
        for code, a, u in zip(codes.tolist(), agreed_n.tolist(), usable_n.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class SplitHalf:
    """Split-half reliability of scores: Spearman between halves of the raters, and the
    Spearman–Brown projection to the full set, averaged over random splits."""

    half_correlation: float
    reliability: float
    low: float
    high: float
    splits: int  # splits where both halves' scores varied


def split_half_reliability(
    rater: IntArray,
    score: Callable[[BoolArray], FloatArray],
    *,
    splits: int = 50,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> SplitHalf:
    """Split the raters at random into two halves, score the systems on each half's votes
    (``score`` maps a boolean vote mask to per-system scores), correlate the halves with
    Spearman's rho and project to the whole panel with Spearman–Brown, 2r / (1 + r).

    References
    ----------
    Spearman (1910), Brown (1910), British Journal of Psychology 3.
    """
    generator = np.random.default_rng(rng)  # a Generator passes through
    raters = np.unique(rater[rater >= 0])
    if raters.size < 4:
        raise ValueError(f"split-half reliability needs at least 4 raters, not {raters.size}")
    correlations = []
    for _ in range(splits):
        half = generator.permutation(raters)[: raters.size // 2]
        in_half = np.isin(rater, half, kind="table")  # integer codes: no sort needed
        first, second = score(in_half), score(~in_half & (rater >= 0))
        if np.ptp(first) == 0 or np.ptp(second) == 0:
            continue  # a half whose scores do not vary has no rank correlation
        correlations.append(float(stats.spearmanr(first, second).statistic))
    r_values = np.array([r for r in correlations if math.isfinite(r)])
    if r_values.size == 0:
        return SplitHalf(math.nan, math.nan, math.nan, math.nan, 0)
    projected = _spearman_brown(r_values)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(projected, [tail, 100 - tail])
    mean_r = float(r_values.mean())
    reliability = float(_spearman_brown(np.array([mean_r]))[0])
    return SplitHalf(mean_r, reliability, float(low), float(high), int(r_values.size))


def _spearman_brown(r: FloatArray) -> FloatArray:
    """2r / (1 + r), floored at −1: halves that disagree completely (r = −1, common with
    few raters) mean no reliability, not minus infinity."""
    with np.errstate(divide="ignore", invalid="ignore"):
        projected = 2 * r / (1 + r)
    return np.asarray(np.where(r <= -1, -1.0, np.maximum(projected, -1.0)))
