"""The typed result every set metric returns.

A number the data cannot give is ``None`` (never NaN), and what the reader must know to
read it (a singular covariance, a skipped interval) is said in ``notes`` and
``interval_reason`` rather than left to a confident-looking number.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SetMetric:
    """One set-level metric of a generated set against a reference set.

    ``value`` is the metric; ``std`` the spread the reference implementations report
    beside it (KID: over subsets, Inception Score: over splits; ddof 0), not a standard
    error. ``low``/``high`` form a percentile bootstrap interval at ``level`` over images
    (each set resampled independently, ``replicates`` times); when they are ``None``,
    ``interval_reason`` says why; ``samples`` holds the replicate values. ``n_real`` is
    ``None`` for metrics without a reference set (Inception Score). ``method`` names the
    estimator and its settings, ``extractor_id`` the feature extractor the caller used.
    """

    metric: str
    value: float | None
    std: float | None
    n_real: int | None
    n_fake: int
    dim: int
    method: str
    extractor_id: str
    low: float | None
    high: float | None
    level: float
    replicates: int
    interval_reason: str | None
    notes: tuple[str, ...]
    samples: tuple[float, ...] = ()  # the bootstrap replicates behind low/high


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None
