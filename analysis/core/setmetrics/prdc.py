"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et
al. 2020) from k-nearest-neighbour balls in feature space.

A sample's radius is the distance to its k-th nearest neighbour in its own set, itself
excluded. Precision: share of fake samples inside some real ball; recall: share of real
samples inside some fake ball (k = 3, ``<=`` as torch-fidelity ``metric_prc``). Density:
real balls containing each fake sample, counted and divided by k·n_fake; coverage: share
of real samples whose nearest fake sample is inside their ball (k = 5, strict ``<`` as
the ``prdc`` package). The sets are keyword-only: the references take them positionally
in opposite orders, and swapping them swaps precision and recall.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist

from analysis.core.setmetrics.resample import (
    DEFAULT_LEVEL,
    DEFAULT_REPLICATES,
    MAX_MATRIX_IMAGES,
    bootstrap_interval,
    counts_to_rows,
    validate_bootstrap,
)
from analysis.core.setmetrics.results import SetMetric, finite_or_none
from analysis.core.setmetrics.streaming import validate_pair
from analysis.core.types import FloatArray, IntArray

NAMES = ("precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class PRDC:
    precision: SetMetric
    recall: SetMetric
    density: SetMetric
    coverage: SetMetric


def _radii(within: FloatArray, origin: IntArray, k: int) -> FloatArray:
    """Distance to the k-th nearest other sample; copies of the same original image (a
    bootstrap repeat, and the sample itself) are not neighbours."""
    masked = np.where(origin[:, None] == origin[None, :], np.inf, within)
    radii: FloatArray = np.partition(masked, k - 1, axis=1)[:, k - 1]
    return radii


def _prdc_values(
    d_real: FloatArray,
    d_fake: FloatArray,
    d_cross: FloatArray,
    real_origin: IntArray,
    fake_origin: IntArray,
    k_pr: int,
    k_dc: int,
) -> FloatArray:
    """(precision, recall, density, coverage) from the three distance matrices."""
    real_pr, real_dc = _radii(d_real, real_origin, k_pr), _radii(d_real, real_origin, k_dc)
    fake_pr = _radii(d_fake, fake_origin, k_pr)
    precision = (d_cross <= real_pr[:, None]).any(axis=0).mean()
    recall = (d_cross <= fake_pr[None, :]).any(axis=1).mean()
    density = (d_cross < real_dc[:, None]).sum() / (k_dc * d_cross.shape[1])
    coverage = (d_cross.min(axis=1) < real_dc).mean()
    return np.array([precision, recall, density, coverage], dtype=np.float64)


def prdc(
    *,
    real: npt.ArrayLike,
    fake: npt.ArrayLike,
    extractor_id: str,
    k_pr: int = 3,
    k_dc: int = 5,
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` against ``real``.

    Parameters
    ----------
    real, fake : (n, d) array_like
        Keyword-only: the reference (real) and the generated (fake) feature rows.
    extractor_id : str
    k_pr, k_dc : int
        Neighbours for the precision/recall radii (3) and density/coverage radii (5).
    replicates, level : int, float
        One bootstrap for all four; radii are recomputed within each resample.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    PRDC

    Raises
    ------
    ValueError
        When a set has no more than ``max(k_pr, k_dc)`` rows (no k-th other neighbour).

    References
    ----------
    Kynkäänniemi et al. (2019), "Improved Precision and Recall Metric for Assessing
    Generative Models", NeurIPS, eqs. (1)–(3); Naeem et al. (2020), "Reliable Fidelity
    and Diversity Metrics for Generative Models", ICML, eqs. (4)–(5).

    Example
    -------
    >>> x = np.random.default_rng(0).normal(size=(30, 2))
    >>> prdc(real=x, fake=x, extractor_id="demo", replicates=0).coverage.value
    1.0
    """
    validate_bootstrap(replicates, level)
    real_rows, fake_rows = validate_pair(real, fake)
    n_real, n_fake, dim = real_rows.shape[0], fake_rows.shape[0], real_rows.shape[1]
    k_max = max(k_pr, k_dc)
    if min(k_pr, k_dc) < 1:
        raise ValueError(f"k_pr and k_dc must be at least 1, got {k_pr}, {k_dc}")
    if min(n_real, n_fake) <= k_max:
        raise ValueError(
            f"each set needs more than {k_max} rows for k-nearest-neighbour radii "
            f"(real {n_real}, fake {n_fake})"
        )
    d_real = cdist(real_rows, real_rows)
    d_fake = cdist(fake_rows, fake_rows)
    d_cross = cdist(real_rows, fake_rows)
    values = _prdc_values(d_real, d_fake, d_cross, np.arange(n_real), np.arange(n_fake), k_pr, k_dc)
    generator = np.random.default_rng(rng)
    replicate_values: list[FloatArray] = []

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        assert real_counts is not None
        r, f = counts_to_rows(real_counts), counts_to_rows(fake_counts)
        replicate_values.append(
            _prdc_values(
                d_real[np.ix_(r, r)], d_fake[np.ix_(f, f)], d_cross[np.ix_(r, f)], r, f, k_pr, k_dc
            )
        )
        return 0.0

    # One pass of replicates serves all four metrics; the interval is read off below.
    interval = bootstrap_interval(
        statistic,
        n_fake=n_fake,
        n_real=n_real,
        replicates=replicates,
        level=level,
        rng=generator,
        max_images=MAX_MATRIX_IMAGES,
    )
    bounds: list[tuple[float | None, float | None]] = [(None, None)] * 4
    if replicate_values:
        tail = (1.0 - level) / 2.0
        quantiles = np.quantile(np.vstack(replicate_values), [tail, 1.0 - tail], axis=0)
        bounds = [(float(quantiles[0, i]), float(quantiles[1, i])) for i in range(4)]
    notes: tuple[str, ...] = ()
    if min(n_real, n_fake) < 10 * k_max:
        notes = (
            f"few images for {k_max}-nearest-neighbour balls (real {n_real}, fake {n_fake}): "
            "radii are noisy and the values move with every added image",
        )
    methods = (f"k={k_pr}, <=", f"k={k_pr}, <=", f"k={k_dc}, <", f"k={k_dc}, <")
    metrics = [
        SetMetric(
            metric=name,
            value=finite_or_none(values[i]),
            std=None,
            n_real=n_real,
            n_fake=n_fake,
            dim=dim,
            method=methods[i],
            extractor_id=extractor_id,
            low=bounds[i][0],
            high=bounds[i][1],
            level=level,
            replicates=interval.replicates,
            interval_reason=interval.reason,
            samples=tuple(float(row[i]) for row in replicate_values),
            notes=notes,
        )
        for i, name in enumerate(NAMES)
    ]
    return PRDC(*metrics)
