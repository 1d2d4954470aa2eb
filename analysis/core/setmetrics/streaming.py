"""Streaming feature statistics: count, sum and sum of outer products, in float64.

Features arrive per batch (and per asset from a cache), so the mean and covariance a
Fréchet distance needs are accumulated rather than computed from one big array. Sums are
kept around a fixed shift (the first batch's mean): ``Σxxᵀ − nμμᵀ`` cancels
catastrophically when features have a large mean relative to their spread (non-negative
ReLU pool features do), and a shift near the mean keeps the subtraction small.
"""

import numpy as np
import numpy.typing as npt

from analysis.core.types import FloatArray


def as_rows(features: npt.ArrayLike, name: str = "features") -> FloatArray:
    """A 2-d float64 copy-free view of ``features`` (rows = images)."""
    rows = np.asarray(features, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (images, dimensions), got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return rows


class FeatureStats:
    """Count, shifted sum and shifted sum of outer products of feature rows.

    ``mean`` and ``cov`` (unbiased, ddof = 1, as pytorch-fid, clean-fid and torchmetrics)
    are derived on demand. ``update`` adds a batch in place; ``merge`` returns the
    statistics of both sets together, whatever the order the rows came in.

    Example
    -------
    >>> stats = FeatureStats(dim=2)
    >>> stats.update(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> stats.update(np.array([[4.0, 5.0]]))
    >>> stats.n, stats.mean.tolist()
    (3, [2.0, 3.0])
    """

    __slots__ = ("dim", "n", "shift", "total", "outer")

    def __init__(self, *, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        self.dim = dim
        self.n = 0
        self.shift = np.zeros(dim)
        self.total = np.zeros(dim)
        self.outer = np.zeros((dim, dim))

    @classmethod
    def from_features(
        cls, features: npt.ArrayLike, *, counts: npt.ArrayLike | None = None
    ) -> "FeatureStats":
        """Statistics of the rows of ``features``, each taken ``counts[i]`` times when
        given (a bootstrap resample without copying rows)."""
        rows = as_rows(features)
        stats = cls(dim=rows.shape[1])
        if counts is None:
            stats.update(rows)
            return stats
        weights = np.asarray(counts, dtype=np.float64)
        if weights.shape != (rows.shape[0],) or (weights < 0).any():
            raise ValueError("counts must be one non-negative count per row of features")
        n = int(round(weights.sum()))
        if n == 0:
            return stats
        stats.shift = weights @ rows / n
        centred = rows - stats.shift
        stats.n = n
        stats.total = weights @ centred
        stats.outer = (centred * weights[:, None]).T @ centred
        return stats

    def update(self, batch: npt.ArrayLike) -> None:
        """Add the rows of ``batch`` (images, dim)."""
        rows = as_rows(batch, "batch")
        if rows.shape[1] != self.dim:
            raise ValueError(f"batch has {rows.shape[1]} dimensions, the statistics {self.dim}")
        if rows.shape[0] == 0:
            return
        if self.n == 0:
            self.shift = rows.mean(axis=0)
        centred = rows - self.shift
        self.n += rows.shape[0]
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """The statistics of both sets of rows together (neither input changes)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        merged = FeatureStats(dim=self.dim)
        merged.n = self.n + other.n
        merged.shift = self.shift.copy()
        # Re-express the other's sums around this shift: x − s1 = (x − s2) + (s2 − s1).
        delta = other.shift - self.shift if other.n else np.zeros(self.dim)
        merged.total = self.total + other.total + other.n * delta
        cross = np.outer(delta, other.total)
        merged.outer = self.outer + other.outer + cross + cross.T + other.n * np.outer(delta, delta)
        return merged

    @property
    def mean(self) -> FloatArray:
        if self.n < 1:
            raise ValueError("the mean needs at least one row")
        mean: FloatArray = self.shift + self.total / self.n
        return mean

    @property
    def cov(self) -> FloatArray:
        """Unbiased covariance (ddof = 1), exactly symmetric."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least two rows, got {self.n}")
        centre = self.total / self.n
        cov = (self.outer - self.n * np.outer(centre, centre)) / (self.n - 1)
        symmetric: FloatArray = (cov + cov.T) / 2
        return symmetric


def validate_pair(real: npt.ArrayLike, fake: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both sets as float64 rows of one dimension, each with at least two rows."""
    real_rows, fake_rows = as_rows(real, "real"), as_rows(fake, "fake")
    if real_rows.shape[1] != fake_rows.shape[1]:
        raise ValueError(
            f"real and fake differ in dimension: {real_rows.shape[1]} vs {fake_rows.shape[1]}"
        )
    for name, rows in (("real", real_rows), ("fake", fake_rows)):
        if rows.shape[0] < 2:
            raise ValueError(f"{name} needs at least two rows, got {rows.shape[0]}")
    return real_rows, fake_rows
