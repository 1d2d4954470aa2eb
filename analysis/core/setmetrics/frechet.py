"""Fréchet distance between Gaussians fitted to two feature sets (FID, FD-DINOv2, FVD),
and FD∞, its extrapolation to infinitely many images.

FD = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2} (Dowson & Landau 1982; Heusel et al.
2017). ``method="eigh"`` (default) takes the trace from the eigenvalues of a symmetric
matrix similar to Σ₁Σ₂ (LᵀΣ₂L from a Cholesky factor, or Σ₁^{1/2} Σ₂ Σ₁^{1/2} when no
covariance has one), with negative round-off clipped to zero: the fastest form and
symmetric by construction. ``method="sqrtm"`` repeats pytorch-fid's
and clean-fid's ``calculate_frechet_distance`` step by step, including the retry with
ε·I added to both covariances when the matrix square root is not finite.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg

from analysis.core.setmetrics.resample import (
    DEFAULT_LEVEL,
    DEFAULT_REPLICATES,
    bootstrap_interval,
    counts_to_rows,
    validate_bootstrap,
)
from analysis.core.setmetrics.results import SetMetric, finite_or_none
from analysis.core.setmetrics.streaming import FeatureStats, validate_pair
from analysis.core.types import FloatArray, IntArray

METHODS = ("eigh", "sqrtm")
# pytorch-fid / clean-fid: the offset added to both covariances when sqrtm fails.
SQRTM_EPS = 1e-6


def _validate_gaussian(
    mu1: npt.ArrayLike, cov1: npt.ArrayLike, mu2: npt.ArrayLike, cov2: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    m1, m2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = (
        np.atleast_2d(np.asarray(cov1, np.float64)),
        np.atleast_2d(np.asarray(cov2, np.float64)),
    )
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,):
        raise ValueError(f"mu1 and mu2 must be vectors of one length, got {m1.shape}, {m2.shape}")
    if c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(f"cov1 and cov2 must be {d}×{d}, got {c1.shape}, {c2.shape}")
    return m1, c1, m2, c2


def _trace_sqrt_product_eigh(cov1: FloatArray, cov2: FloatArray) -> float:
    """tr (Σ₁Σ₂)^{1/2} from the eigenvalues of a symmetric matrix similar to Σ₁Σ₂.

    With a Cholesky factor Σ = LLᵀ of either covariance, LᵀΣ'L has the eigenvalues of
    ΣΣ' and needs no eigenvectors: about 3× faster than rooting Σ₁ by eigh. A singular
    covariance (fewer images than dimensions, dead features) has no factor; then
    Σ₁^{1/2} Σ₂ Σ₁^{1/2}, with Σ₁'s root by eigh, gives the same eigenvalues."""
    for factored, other in ((cov1, cov2), (cov2, cov1)):
        try:
            lower = linalg.cholesky(factored, lower=True, check_finite=False)
        except linalg.LinAlgError:
            continue
        middle = lower.T @ other @ lower
        break
    else:
        w, v = linalg.eigh(cov1)
        root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        middle = root1 @ cov2 @ root1
    eigenvalues = linalg.eigvalsh((middle + middle.T) / 2, check_finite=False)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def _trace_sqrt_product_sqrtm(cov1: FloatArray, cov2: FloatArray, eps: float) -> tuple[float, bool]:
    """pytorch-fid's tr sqrtm(Σ₁Σ₂) with its ε retry; returns the trace and whether the
    retry ran. ``sqrtm`` is called without the deprecated ``disp`` argument: its result
    array is the same, and its singular-matrix warning is the case the retry handles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
        retried = not np.isfinite(covmean).all()
        if retried:
            offset = np.eye(cov1.shape[0]) * eps
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = np.max(np.abs(covmean.imag))
            raise ValueError(f"Imaginary component {largest} in sqrtm(cov1 @ cov2)")
        covmean = covmean.real
    return float(np.trace(covmean)), retried


def frechet_distance(
    mu1: npt.ArrayLike,
    cov1: npt.ArrayLike,
    mu2: npt.ArrayLike,
    cov2: npt.ArrayLike,
    *,
    method: str = "eigh",
    eps: float = SQRTM_EPS,
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    Parameters
    ----------
    mu1, mu2 : (d,) array_like
    cov1, cov2 : (d, d) array_like
        Symmetric positive semi-definite covariances.
    method : {"eigh", "sqrtm"}
        ``"eigh"``: trace of the root from a symmetric eigendecomposition;
        ``"sqrtm"``: pytorch-fid/clean-fid's ``scipy.linalg.sqrtm`` path.
    eps : float
        The ``"sqrtm"`` retry offset (pytorch-fid: 1e-6).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On mismatched shapes, an unknown method, or (``"sqrtm"``) a clearly complex root.

    References
    ----------
    Dowson & Landau (1982), J. Multivariate Anal. 12, eq. (2); Heusel et al. (2017),
    "GANs trained by a two time-scale update rule…", NeurIPS, eq. (6).

    Example
    -------
    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    4.0
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    m1, c1, m2, c2 = _validate_gaussian(mu1, cov1, mu2, cov2)
    return _frechet(m1, c1, m2, c2, method, eps)[0]


def _frechet(
    m1: FloatArray, c1: FloatArray, m2: FloatArray, c2: FloatArray, method: str, eps: float
) -> tuple[float, bool]:
    """The distance and whether the sqrtm retry ran."""
    diff = m1 - m2
    if method == "eigh":
        trace_root, retried = _trace_sqrt_product_eigh(c1, c2), False
    else:
        trace_root, retried = _trace_sqrt_product_sqrtm(c1, c2, eps)
    value = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * trace_root)
    return value, retried


def frechet_distance_stats(
    real: FeatureStats, fake: FeatureStats, *, method: str = "eigh"
) -> float:
    """Fréchet distance between two sets' streaming statistics."""
    return frechet_distance(real.mean, real.cov, fake.mean, fake.cov, method=method)


def _small_n_notes(n_real: int, n_fake: int, dim: int) -> tuple[str, ...]:
    if min(n_real, n_fake) > dim:
        return ()
    return (
        f"covariance singular: {min(n_real, n_fake)} images ≤ {dim} dimensions; FD is "
        "defined but dominated by its 1/N bias (compare only at equal N, prefer KID or "
        "CMMD, or FD∞)",
    )


def fd(
    *,
    real: npt.ArrayLike,
    fake: npt.ArrayLike,
    extractor_id: str,
    method: str = "eigh",
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> SetMetric:
    """Fréchet distance between real and fake feature rows, with a bootstrap interval.

    Parameters
    ----------
    real, fake : (n, d) array_like
        Feature rows of the reference and the generated images.
    extractor_id : str
        Names the features (recorded, not interpreted).
    method : {"eigh", "sqrtm"}
    replicates, level : int, float
        Bootstrap replicates (0 for none) and interval level. Each replicate needs one
        d×d eigendecomposition (about a second at d = 2048).
    rng : numpy.random.Generator, int or None

    Returns
    -------
    SetMetric

    Raises
    ------
    ValueError
        With fewer than two rows in a set, or sets of different dimension.

    References
    ----------
    Heusel et al. (2017), NeurIPS, eq. (6).

    Example
    -------
    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> fd(real=x, fake=x, extractor_id="demo", replicates=0).value < 1e-9
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    validate_bootstrap(replicates, level)
    real_rows, fake_rows = validate_pair(real, fake)
    generator = np.random.default_rng(rng)
    real_stats, fake_stats = (
        FeatureStats.from_features(real_rows),
        FeatureStats.from_features(fake_rows),
    )
    value, retried = _frechet(
        real_stats.mean, real_stats.cov, fake_stats.mean, fake_stats.cov, method, SQRTM_EPS
    )

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        r = FeatureStats.from_features(real_rows, counts=real_counts)
        f = FeatureStats.from_features(fake_rows, counts=fake_counts)
        return _frechet(r.mean, r.cov, f.mean, f.cov, method, SQRTM_EPS)[0]

    interval = bootstrap_interval(
        statistic,
        n_fake=fake_rows.shape[0],
        n_real=real_rows.shape[0],
        replicates=replicates,
        level=level,
        rng=generator,
    )
    n_real, n_fake, dim = real_rows.shape[0], fake_rows.shape[0], real_rows.shape[1]
    notes = _small_n_notes(n_real, n_fake, dim)
    if retried:
        notes += (f"sqrtm was not finite; retried with {SQRTM_EPS}·I added (as pytorch-fid)",)
    return SetMetric(
        metric="fd",
        value=finite_or_none(value),
        std=None,
        n_real=n_real,
        n_fake=n_fake,
        dim=dim,
        method=method,
        extractor_id=extractor_id,
        low=interval.low,
        high=interval.high,
        level=level,
        replicates=interval.replicates,
        interval_reason=interval.reason,
        samples=interval.samples,
        notes=notes,
    )


@dataclass(frozen=True)
class FDInfinity:
    """FD∞ (``metric.value``, the intercept of FD_N against 1/N), the fitted slope (the
    bias constant k in FD_N ≈ FD∞ + k/N), the sizes N and FD_N values fitted, and the
    fit's R²."""

    metric: SetMetric
    slope: float
    sizes: tuple[int, ...]
    values: tuple[float, ...]
    r_squared: float | None


def default_sizes(n: int, n_points: int = 15) -> tuple[int, ...]:
    """dgm-eval's sizes: ``n_points`` evenly spaced in [min(5000, max(n // 10, 2)), n]."""
    sizes = np.linspace(min(5000, max(n // 10, 2)), n, n_points).astype(int)
    return tuple(int(s) for s in np.unique(sizes))


def _fit_infinity(
    real_stats: FeatureStats,
    fake_rows: FloatArray,
    sizes: tuple[int, ...],
    method: str,
    generator: np.random.Generator,
) -> tuple[float, float, FloatArray]:
    """Intercept and slope of FD_N on 1/N, and the FD_N values, one subsample each."""
    values = np.empty(len(sizes))
    for i, size in enumerate(sizes):
        rows = fake_rows[generator.choice(fake_rows.shape[0], size, replace=False)]
        f = FeatureStats.from_features(rows)
        values[i] = _frechet(real_stats.mean, real_stats.cov, f.mean, f.cov, method, SQRTM_EPS)[0]
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=np.float64), values, 1)
    return float(intercept), float(slope), values


def fd_infinity(
    *,
    real: npt.ArrayLike,
    fake: npt.ArrayLike,
    extractor_id: str,
    sizes: tuple[int, ...] | None = None,
    method: str = "eigh",
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> FDInfinity:
    """FD∞: Fréchet distances of fake subsamples of several sizes N against all real
    rows, a least-squares line in 1/N, extrapolated to 1/N = 0.

    Parameters
    ----------
    real, fake : (n, d) array_like
    extractor_id : str
    sizes : tuple of int, optional
        Subsample sizes (each at most the fake count); default :func:`default_sizes`.
    method : {"eigh", "sqrtm"}
    replicates, level : int, float
        Bootstrap over images; each replicate repeats the whole fit (len(sizes) FDs).
    rng : numpy.random.Generator, int or None

    Returns
    -------
    FDInfinity

    Raises
    ------
    ValueError
        With fewer than three distinct sizes, or a size outside [2, n_fake].

    References
    ----------
    Chong & Forsyth (2020), "Effectively Unbiased FID and Inception Score and where to
    find them", CVPR, Sec. 3 (FID_N = FID∞ + k/N).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(400, 3)), rng.normal(1.0, size=(400, 3))
    >>> abs(fd_infinity(real=x, fake=y, extractor_id="demo", replicates=0).metric.value - 3) < 0.5
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    validate_bootstrap(replicates, level)
    real_rows, fake_rows = validate_pair(real, fake)
    n_real, n_fake, dim = real_rows.shape[0], fake_rows.shape[0], real_rows.shape[1]
    chosen = default_sizes(n_fake) if sizes is None else tuple(sorted({int(s) for s in sizes}))
    if len(chosen) < 3:
        raise ValueError(f"FD∞ needs at least three distinct sizes, got {chosen}")
    if chosen[0] < 2 or chosen[-1] > n_fake:
        raise ValueError(f"sizes must lie in [2, {n_fake}] (the fake rows), got {chosen}")
    generator = np.random.default_rng(rng)
    real_stats = FeatureStats.from_features(real_rows)
    intercept, slope, values = _fit_infinity(real_stats, fake_rows, chosen, method, generator)
    fitted = intercept + slope / np.asarray(chosen, dtype=np.float64)
    spread = float(((values - values.mean()) ** 2).sum())
    r_squared = 1.0 - float(((values - fitted) ** 2).sum()) / spread if spread > 0 else None

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        r = FeatureStats.from_features(real_rows, counts=real_counts)
        resampled = fake_rows[counts_to_rows(fake_counts)]
        return _fit_infinity(r, resampled, chosen, method, generator)[0]

    interval = bootstrap_interval(
        statistic,
        n_fake=n_fake,
        n_real=n_real,
        replicates=replicates,
        level=level,
        rng=generator,
    )
    notes = _small_n_notes(n_real, chosen[0], dim)
    if r_squared is not None and r_squared < 0.9:
        notes += (
            f"FD_N is not close to linear in 1/N (R² = {r_squared:.2f}): the "
            "extrapolation is unreliable",
        )
    metric = SetMetric(
        metric="fd_infinity",
        value=finite_or_none(intercept),
        std=None,
        n_real=n_real,
        n_fake=n_fake,
        dim=dim,
        method=f"{method}, linear in 1/N, N = {chosen[0]}…{chosen[-1]} ({len(chosen)} sizes)",
        extractor_id=extractor_id,
        low=interval.low,
        high=interval.high,
        level=level,
        replicates=interval.replicates,
        interval_reason=interval.reason,
        samples=interval.samples,
        notes=notes,
    )
    return FDInfinity(
        metric=metric,
        slope=slope,
        sizes=chosen,
        values=tuple(float(v) for v in values),
        r_squared=r_squared,
    )
