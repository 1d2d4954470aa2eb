"""Proportions with honest intervals."""

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.core.types import FloatArray


def two_sided_z(level: float) -> float:
    """The normal quantile that leaves (1 − level) / 2 in each tail (1.96 at 0.95)."""
    return float(stats.norm.ppf(1 - (1 - level) / 2))


def wilson_interval(
    successes: npt.NDArray[Any], trials: npt.NDArray[Any], level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for binomial proportions (NaN where there are no trials).

    References
    ----------
    Wilson (1927), JASA 22(158); Brown, Cai & DasGupta (2001), Statistical Science 16(2).

    Example
    -------
    >>> low, high = wilson_interval(np.array([5.0]), np.array([10.0]))
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.237, 0.763)
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = two_sided_z(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)
