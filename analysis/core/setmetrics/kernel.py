"""Kernel distances between feature sets: KID (unbiased polynomial MMD² over subsets) and
CMMD (biased Gaussian-RBF MMD on CLIP embeddings, × 1000).
"""

import numpy as np
import numpy.typing as npt

from analysis.core.setmetrics.resample import (
    DEFAULT_LEVEL,
    DEFAULT_REPLICATES,
    MAX_MATRIX_IMAGES,
    bootstrap_interval,
    validate_bootstrap,
)
from analysis.core.setmetrics.results import SetMetric, finite_or_none
from analysis.core.setmetrics.streaming import validate_pair
from analysis.core.types import FloatArray, IntArray

# Jayasumana et al. (2024) and google-research/cmmd distance.py.
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0
# How far an embedding's norm may stray from 1 before CMMD notes it is not L2-normalised.
_UNIT_NORM_TOLERANCE = 1e-3


def polynomial_kernel(
    x: FloatArray, y: FloatArray, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> FloatArray:
    """k(x, y) = (γ xᵀy + coef0)^degree, γ = 1/d by default (Bińkowski et al. 2018)."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    kernel: FloatArray = (x @ y.T * g + coef0) ** degree
    return kernel


def mmd2_unbiased(k_xx: FloatArray, k_xy: FloatArray, k_yy: FloatArray) -> float:
    """Unbiased MMD² of two equal-size samples from their kernel matrices: within-set sums
    without the diagonal over m(m − 1), the cross sum with its diagonal over m²
    (torch-fidelity ``mmd_est="unbiased"``, torchmetrics ``maximum_mean_discrepancy``)."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / m**2)


def polynomial_mmd2(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased polynomial-kernel MMD² of two equal-size feature sets (one KID subset)."""
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(f"x and y must have as many rows: {xs.shape[0]} vs {ys.shape[0]}")

    def k(a: FloatArray, b: FloatArray) -> FloatArray:
        return polynomial_kernel(a, b, degree=degree, gamma=gamma, coef0=coef0)

    return mmd2_unbiased(k(xs, xs), k(xs, ys), k(ys, ys))


def _weighted_mmd2_unbiased(
    k_xx: FloatArray, k_xy: FloatArray, k_yy: FloatArray, cx: IntArray, cy: IntArray
) -> float:
    """Unbiased MMD² of a bootstrap resample given as per-row counts: within-set pairs of
    different original images only (a repeated image paired with itself would add k(x, x),
    which the unbiased estimator exists to leave out)."""
    wx, wy = cx.astype(np.float64), cy.astype(np.float64)
    within_x = (wx @ k_xx @ wx - (wx**2) @ np.diag(k_xx)) / (wx.sum() ** 2 - (wx**2).sum())
    within_y = (wy @ k_yy @ wy - (wy**2) @ np.diag(k_yy)) / (wy.sum() ** 2 - (wy**2).sum())
    return float(within_x + within_y - 2.0 * (wx @ k_xy @ wy) / (wx.sum() * wy.sum()))


def kid(
    *,
    real: npt.ArrayLike,
    fake: npt.ArrayLike,
    extractor_id: str,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> SetMetric:
    """Kernel Inception Distance: the unbiased MMD² with the cubic polynomial kernel,
    averaged over random subsets.

    Each of ``subsets`` draws ``subset_size`` rows without replacement from each set
    (torch-fidelity, torchmetrics); ``value`` is the mean and ``std`` the population
    standard deviation over subsets. KID can be negative. A bootstrap replicate computes
    the unbiased MMD² of the whole resampled sets (same expectation as the subset mean;
    subsets only save time), from kernel matrices computed once.

    Parameters
    ----------
    real, fake : (n, d) array_like
    extractor_id : str
    subsets, subset_size : int
        100 and 1000 as torch-fidelity, torchmetrics and clean-fid.
    degree, gamma, coef0 : int, float or None, float
        Kernel (γ xᵀy + coef0)^degree; γ = 1/d when None.
    replicates, level : int, float
    rng : numpy.random.Generator, int or None

    Returns
    -------
    SetMetric

    Raises
    ------
    ValueError
        When either set has fewer rows than ``subset_size`` (clean-fid would silently
        shrink the subsets; here the caller chooses), or ``subset_size`` < 2.

    References
    ----------
    Bińkowski et al. (2018), "Demystifying MMD GANs", ICLR, Sec. 3 and eq. (3).

    Example
    -------
    >>> x = np.random.default_rng(0).normal(size=(60, 4))
    >>> kid(real=x, fake=x + 5, extractor_id="demo", subset_size=50, replicates=0).value > 0
    True
    """
    validate_bootstrap(replicates, level)
    real_rows, fake_rows = validate_pair(real, fake)
    n_real, n_fake, dim = real_rows.shape[0], fake_rows.shape[0], real_rows.shape[1]
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    if min(n_real, n_fake) < subset_size:
        raise ValueError(
            f"subset_size={subset_size} exceeds the rows of a set (real {n_real}, fake "
            f"{n_fake}); pass subset_size={min(n_real, n_fake)} or fewer"
        )
    generator = np.random.default_rng(rng)
    per_subset = np.empty(subsets)
    for s in range(subsets):
        x = real_rows[generator.choice(n_real, subset_size, replace=False)]
        y = fake_rows[generator.choice(n_fake, subset_size, replace=False)]
        per_subset[s] = polynomial_mmd2(x, y, degree=degree, gamma=gamma, coef0=coef0)

    def k(a: FloatArray, b: FloatArray) -> FloatArray:
        return polynomial_kernel(a, b, degree=degree, gamma=gamma, coef0=coef0)

    matrices: list[FloatArray] = []

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        assert real_counts is not None
        if not matrices:
            matrices.extend(
                [k(real_rows, real_rows), k(real_rows, fake_rows), k(fake_rows, fake_rows)]
            )
        k_xx, k_xy, k_yy = matrices
        return _weighted_mmd2_unbiased(k_xx, k_xy, k_yy, real_counts, fake_counts)

    interval = bootstrap_interval(
        statistic,
        n_fake=n_fake,
        n_real=n_real,
        replicates=replicates,
        level=level,
        rng=generator,
        max_images=MAX_MATRIX_IMAGES,
    )
    g = "1/d" if gamma is None else f"{gamma:g}"
    return SetMetric(
        metric="kid",
        value=finite_or_none(per_subset.mean()),
        std=finite_or_none(per_subset.std()),
        n_real=n_real,
        n_fake=n_fake,
        dim=dim,
        method=f"unbiased MMD², kernel (x·y·{g} + {coef0:g})^{degree}, "
        f"{subsets} subsets of {subset_size}",
        extractor_id=extractor_id,
        low=interval.low,
        high=interval.high,
        level=level,
        replicates=interval.replicates,
        interval_reason=interval.reason,
        samples=interval.samples,
        notes=(),
    )


def rbf_kernel(x: FloatArray, y: FloatArray, *, sigma: float = CMMD_SIGMA) -> FloatArray:
    """exp(−‖x − y‖² / (2σ²)), squared distances expanded as ‖x‖² + ‖y‖² − 2xᵀy."""
    squared = (x**2).sum(axis=1)[:, None] + (y**2).sum(axis=1)[None, :] - 2.0 * x @ y.T
    kernel: FloatArray = np.exp(-np.clip(squared, 0.0, None) / (2.0 * sigma**2))
    return kernel


def rbf_mmd2_biased(x: npt.ArrayLike, y: npt.ArrayLike, *, sigma: float = CMMD_SIGMA) -> float:
    """The biased (V-statistic) MMD² with a Gaussian RBF kernel: means of the full kernel
    matrices, diagonals included (google-research/cmmd ``mmd``); sets may differ in size."""
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(
        rbf_kernel(xs, xs, sigma=sigma).mean()
        + rbf_kernel(ys, ys, sigma=sigma).mean()
        - 2.0 * rbf_kernel(xs, ys, sigma=sigma).mean()
    )


def cmmd(
    *,
    real: npt.ArrayLike,
    fake: npt.ArrayLike,
    extractor_id: str,
    sigma: float = CMMD_SIGMA,
    scale: float = CMMD_SCALE,
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> SetMetric:
    """CMMD: ``scale`` × the biased Gaussian-RBF MMD² between L2-normalised CLIP embeddings.

    Parameters
    ----------
    real, fake : (n, d) array_like
        Embeddings, L2-normalised by the extractor (a note says so when they are not).
    extractor_id : str
    sigma, scale : float
        10 and 1000 as the paper's code.
    replicates, level : int, float
    rng : numpy.random.Generator, int or None

    Returns
    -------
    SetMetric

    References
    ----------
    Jayasumana et al. (2024), "Rethinking FID: Towards a Better Evaluation Metric for
    Image Generation", CVPR, Sec. 4 (eq. for MMD² and σ = 10, ×1000).

    Example
    -------
    >>> x = np.eye(3)
    >>> cmmd(real=x, fake=x, extractor_id="demo", replicates=0).value
    0.0
    """
    validate_bootstrap(replicates, level)
    real_rows, fake_rows = validate_pair(real, fake)
    n_real, n_fake, dim = real_rows.shape[0], fake_rows.shape[0], real_rows.shape[1]
    k_xx = rbf_kernel(real_rows, real_rows, sigma=sigma)
    k_xy = rbf_kernel(real_rows, fake_rows, sigma=sigma)
    k_yy = rbf_kernel(fake_rows, fake_rows, sigma=sigma)
    value = scale * (k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean())

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        assert real_counts is not None
        wx, wy = real_counts / n_real, fake_counts / n_fake
        return float(scale * (wx @ k_xx @ wx + wy @ k_yy @ wy - 2.0 * wx @ k_xy @ wy))

    interval = bootstrap_interval(
        statistic,
        n_fake=n_fake,
        n_real=n_real,
        replicates=replicates,
        level=level,
        rng=np.random.default_rng(rng),
        max_images=MAX_MATRIX_IMAGES,
    )
    norms = np.concatenate([np.linalg.norm(real_rows, axis=1), np.linalg.norm(fake_rows, axis=1)])
    notes: tuple[str, ...] = ()
    if np.abs(norms - 1.0).max() > _UNIT_NORM_TOLERANCE:
        notes = (
            "embeddings are not unit-norm: CMMD as published expects L2-normalised CLIP embeddings",
        )
    return SetMetric(
        metric="cmmd",
        value=finite_or_none(value),
        std=None,
        n_real=n_real,
        n_fake=n_fake,
        dim=dim,
        method=f"biased MMD², Gaussian RBF σ={sigma:g}, ×{scale:g}",
        extractor_id=extractor_id,
        low=interval.low,
        high=interval.high,
        level=level,
        replicates=interval.replicates,
        interval_reason=interval.reason,
        samples=interval.samples,
        notes=notes,
    )
