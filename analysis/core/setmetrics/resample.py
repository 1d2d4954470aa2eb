"""Percentile bootstrap over images for set metrics.

A replicate draws each set's images with replacement, independently, as per-image counts
(a multinomial draw), and recomputes the metric from those counts: Fréchet distances from
count-weighted streaming statistics, kernel and nearest-neighbour metrics from matrices
indexed by the counts. The interval describes how much the metric moves when the images
are redrawn at the same N; it is not an interval for the metric's large-N limit (FD is
biased upward at small N and a resample's duplicates add to that bias).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.core.types import IntArray

DEFAULT_REPLICATES = 200
DEFAULT_LEVEL = 0.95
# Below this many images in a set, a percentile interval shows the resampling scheme more
# than the data (each replicate repeats a large share of very few images).
MIN_BOOTSTRAP_IMAGES = 20
# Kernel and nearest-neighbour bootstraps hold n×n matrices (8 bytes a cell): above this
# many images in a set they would need gigabytes.
MAX_MATRIX_IMAGES = 5000


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    replicates: int
    reason: str | None
    # The replicate values in draw order (empty without an interval): replicate b of
    # several systems drawn with equal seeds and sizes shares the reference resample,
    # so they pair with another bootstrap, as the report's correlation needs.
    samples: tuple[float, ...] = ()


def validate_bootstrap(replicates: int, level: float) -> None:
    """Raise ValueError for a negative replicate count or a level outside (0, 1)."""
    if replicates < 0:
        raise ValueError(f"replicates must be 0 or more, got {replicates}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def counts_to_rows(counts: IntArray) -> IntArray:
    """Row indices of a resample, each row repeated as often as it was drawn."""
    return np.repeat(np.arange(counts.size), counts)


def bootstrap_interval(
    statistic: Callable[[IntArray, IntArray | None], float],
    *,
    n_fake: int,
    n_real: int | None,
    replicates: int,
    level: float,
    rng: np.random.Generator,
    max_images: int | None = None,
) -> Interval:
    """Percentile interval of ``statistic(fake_counts, real_counts)`` over replicates, or
    no interval with the reason (too few images, too many for the matrices, none asked)."""
    validate_bootstrap(replicates, level)
    sizes = [n_fake] if n_real is None else [n_fake, n_real]
    if replicates == 0:
        return Interval(None, None, 0, "no bootstrap replicates were requested")
    if min(sizes) < MIN_BOOTSTRAP_IMAGES:
        return Interval(
            None,
            None,
            0,
            f"too few images for a bootstrap interval ({min(sizes)} < {MIN_BOOTSTRAP_IMAGES})",
        )
    if max_images is not None and max(sizes) > max_images:
        return Interval(
            None,
            None,
            0,
            f"bootstrap skipped: {max(sizes)} images exceed the {max_images} "
            "its n×n matrices allow",
        )
    values = np.empty(replicates)
    for b in range(replicates):
        fake_counts = rng.multinomial(n_fake, np.full(n_fake, 1.0 / n_fake))
        real_counts = (
            None if n_real is None else rng.multinomial(n_real, np.full(n_real, 1.0 / n_real))
        )
        values[b] = statistic(fake_counts, real_counts)
    finite = values[np.isfinite(values)]
    if finite.size < replicates:
        return Interval(
            None,
            None,
            replicates,
            f"{replicates - finite.size} of {replicates} replicates gave no finite value",
        )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(float(low), float(high), replicates, None, tuple(map(float, values)))
