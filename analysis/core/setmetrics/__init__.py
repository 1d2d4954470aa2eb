"""Set-level metrics on feature arrays: Fréchet distance and FD∞, KID, CMMD, Inception
Score, precision/recall and density/coverage, with streaming feature statistics.

Pure numpy/SciPy in float64. Every public metric takes ``real=``/``fake=`` by keyword and
returns a :class:`SetMetric` (or a small container of them) carrying the image counts,
feature dimension, method, extractor id, a bootstrap interval over images, and notes
where a small N makes the number weaker than it looks. Formulas and the reference
implementations matched are listed in METRICS.md §2.
"""

from analysis.core.setmetrics.frechet import (
    FDInfinity,
    fd,
    fd_infinity,
    frechet_distance,
    frechet_distance_stats,
)
from analysis.core.setmetrics.inception import inception_score
from analysis.core.setmetrics.kernel import (
    cmmd,
    kid,
    mmd2_unbiased,
    polynomial_mmd2,
    rbf_mmd2_biased,
)
from analysis.core.setmetrics.prdc import PRDC, prdc
from analysis.core.setmetrics.results import SetMetric
from analysis.core.setmetrics.streaming import FeatureStats

__all__ = [
    "FDInfinity",
    "FeatureStats",
    "PRDC",
    "SetMetric",
    "cmmd",
    "fd",
    "fd_infinity",
    "frechet_distance",
    "frechet_distance_stats",
    "inception_score",
    "kid",
    "mmd2_unbiased",
    "polynomial_mmd2",
    "prdc",
    "rbf_mmd2_biased",
]
