"""Inception Score from classifier logits (or probabilities).

IS = exp(E_x KL(p(y|x) ‖ p(y))), p(y) the mean of p(y|x) within a split, reported as
mean and population standard deviation over splits (Salimans et al. 2016, the original
OpenAI code, torch-fidelity; torchmetrics reports the ddof-1 standard deviation).
Computed from log-probabilities throughout, so large logits neither overflow nor turn
0·log 0 into NaN.
"""

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.core.setmetrics.resample import (
    DEFAULT_LEVEL,
    DEFAULT_REPLICATES,
    bootstrap_interval,
    counts_to_rows,
    validate_bootstrap,
)
from analysis.core.setmetrics.results import SetMetric, finite_or_none
from analysis.core.types import FloatArray, IntArray


def _log_probabilities(scores: npt.ArrayLike, probabilities: bool) -> FloatArray:
    rows = np.asarray(scores, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise ValueError(f"logits must be 2-d (images, classes ≥ 2), got shape {rows.shape}")
    if probabilities:
        if (rows < 0).any() or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("probabilities must be non-negative rows summing to 1")
        with np.errstate(divide="ignore"):
            log_p: FloatArray = np.log(rows)
        return log_p
    if not np.isfinite(rows).all():
        raise ValueError("logits contain NaN or infinite values")
    log_softmax: FloatArray = special.log_softmax(rows, axis=1)
    return log_softmax


def split_scores(log_p: FloatArray, splits: int) -> FloatArray:
    """exp(mean KL(p(y|x) ‖ p(y))) of each split; split s holds rows
    [s·n // splits, (s + 1)·n // splits) (torch-fidelity)."""
    n = log_p.shape[0]
    bounds = [s * n // splits for s in range(splits + 1)]
    scores = np.empty(splits)
    for s in range(splits):
        part = log_p[bounds[s] : bounds[s + 1]]
        log_marginal = special.logsumexp(part, axis=0) - np.log(part.shape[0])
        p = np.exp(part)
        # Classes with p(y|x) = 0 add nothing (0·log 0 = 0); their logs (−inf) are skipped.
        log_ratio = np.subtract(part, log_marginal, out=np.zeros_like(part), where=p > 0)
        terms = p * log_ratio
        scores[s] = np.exp(terms.sum(axis=1).mean())
    return scores


def inception_score(
    logits: npt.ArrayLike,
    *,
    extractor_id: str,
    splits: int = 10,
    probabilities: bool = False,
    shuffle: bool = True,
    replicates: int = DEFAULT_REPLICATES,
    level: float = DEFAULT_LEVEL,
    rng: np.random.Generator | int | None = 0,
) -> SetMetric:
    """Inception Score of generated images from their class logits.

    Parameters
    ----------
    logits : (n, classes) array_like
        Classifier logits (the 1008-way ``logits_unbiased`` of the FID InceptionV3 for
        published comparability), or probabilities with ``probabilities=True``.
    extractor_id : str
    splits : int
        10 as the original code.
    probabilities : bool
        The rows are already probabilities.
    shuffle : bool
        Shuffle rows (with ``rng``) before splitting, as torch-fidelity and torchmetrics
        do; off keeps the given order.
    replicates, level : int, float
    rng : numpy.random.Generator, int or None

    Returns
    -------
    SetMetric
        ``value`` the mean over splits, ``std`` their population standard deviation,
        ``n_real`` None (no reference set).

    Raises
    ------
    ValueError
        With fewer images than splits, or malformed logits/probabilities.

    References
    ----------
    Salimans et al. (2016), "Improved Techniques for Training GANs", NeurIPS, Sec. 4;
    Barratt & Sharma (2018), "A Note on the Inception Score".

    Example
    -------
    >>> one_hot = np.repeat(np.eye(4) * 50.0, 5, axis=0)
    >>> round(inception_score(one_hot, extractor_id="demo", splits=1, replicates=0).value, 6)
    4.0
    """
    validate_bootstrap(replicates, level)
    log_p = _log_probabilities(logits, probabilities)
    n, classes = log_p.shape
    if splits < 1 or n < splits:
        raise ValueError(f"splits must lie in [1, {n}] (the images), got {splits}")
    generator = np.random.default_rng(rng)
    ordered = log_p[generator.permutation(n)] if shuffle else log_p
    scores = split_scores(ordered, splits)

    def statistic(fake_counts: IntArray, real_counts: IntArray | None) -> float:
        rows = counts_to_rows(fake_counts)
        return float(split_scores(log_p[generator.permutation(rows)], splits).mean())

    interval = bootstrap_interval(
        statistic,
        n_fake=n,
        n_real=None,
        replicates=replicates,
        level=level,
        rng=generator,
    )
    notes = ("Inception Score measures ImageNet-class confidence and variety, not realism",)
    return SetMetric(
        metric="inception_score",
        value=finite_or_none(scores.mean()),
        std=finite_or_none(scores.std()),
        n_real=None,
        n_fake=n,
        dim=classes,
        method=f"{splits} splits, {'shuffled' if shuffle else 'in order'}",
        extractor_id=extractor_id,
        low=interval.low,
        high=interval.high,
        level=level,
        replicates=interval.replicates,
        interval_reason=interval.reason,
        samples=interval.samples,
        notes=notes,
    )
