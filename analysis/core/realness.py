"""Real or generated: a rater sees one image (for a limited exposure or without limit)
and answers "real" or "generated"; the pool mixes real reference images with the
systems' outputs (a two-alternative forced choice, 2AFC).

Per system this module reports

- the **human error rate on its images** (the "fooled rate"): the share of the system's
  generated images judged real. Higher = more realistic; 0.5 = people cannot tell.
- **HYPE∞** (Zhou et al. 2019), implemented as the *pooled* error rate of the system's
  session mix: (generated images of the system judged real + real images judged
  generated) / (judgments of both), where the real judgments are those of the raters who
  judged at least one of the system's images. In HYPE's own design every rater sees 50
  real and 50 generated images, so the pooled rate equals both the mean of the raters'
  error rates and the balanced rate (fake error + real error) / 2; with other mixes it
  weighs the two by their judgment counts. A rater who judged several systems counts
  their real judgments towards each of them. HYPE_time (the adaptive exposure
  staircase) is not computed; judgments with an exposure are broken down by exposure.
  The "human error rate" of Stein et al. (2023, Table 11) is this pooled rate: each of
  their participants judged 100 real and 100 generated images of one model.
- the rater population's **sensitivity d′ and criterion c** from signal detection
  theory, generated images being the signal: hit = a generated image called generated,
  false alarm = a real image called generated.

Intervals are clustered by rater: a rater's judgments share their eye and habits, so
the raters, not the judgments, are the independent units. A share p̂ = Σ y_g / Σ n_g
(y_g errors in n_g judgments of rater g) has the cluster-robust (CR1, linearised
ratio) variance

    V = G / (G − 1) · Σ_g (y_g − p̂ n_g)² / (Σ_g n_g)²

with G raters, and the interval p̂ ± t · √V, t of Student with G* − 1 degrees of
freedom (G*: Kish's effective number of raters), clipped to [0, 1], as the
leaderboard's sandwich interval (:mod:`analysis.core.sandwich`). Where every rater
judged the same number of images, √V is exactly the standard error of the mean of the
raters' own rates, s / √G with s their standard deviation (ddof = 1).

Numbers follow :mod:`analysis.core.results`: what the data cannot give is ``None``
with a ``reason``, never NaN.

References
----------
Zhou, Gordon, Krishna, Narcomey, Fei-Fei & Bernstein (2019), "HYPE: A Benchmark for
Human eYe Perceptual Evaluation of Generative Models", NeurIPS (HYPE∞, section 3.2);
Macmillan & Creelman (2005), Detection Theory: A User's Guide, 2nd ed., ch. 1–2
(d′ and c); Hautus (1995), "Corrections for extreme proportions and their biasing
effects on estimated values of d′", Behavior Research Methods 27(1) (log-linear
correction); Cameron & Miller (2015), J. Human Resources 50(2), section VI (CR1, few
clusters); Stein et al. (2023), "Exposing flaws of generative model evaluation metrics
and their unfair treatment of diffusion models", NeurIPS (the published data the tests
reproduce).
"""

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.core.graph import effective_raters
from analysis.core.results import finite
from analysis.core.sandwich import ClusterCovariance
from analysis.core.types import BoolArray, FloatArray, IntArray

__all__ = [
    "ANSWERS",
    "GENERATED",
    "INTERVAL_METHOD",
    "LOG_LINEAR",
    "REAL",
    "Detection",
    "ExposureRealness",
    "Proportion",
    "RaterRealness",
    "Realness",
    "SystemRealness",
    "detection",
    "fooled_replicates",
    "realness",
]

REAL = "real"
GENERATED = "generated"
ANSWERS = (REAL, GENERATED)
INTERVAL_METHOD = (
    "cluster-robust (CR1) by rater, linearised ratio estimator, Student t with G* − 1 df "
    "(G*: Kish's effective raters), clipped to [0, 1]"
)
# Hautus's (1995) log-linear correction: 0.5 added to the hits and the false alarms, 1 to
# the generated and the real judgments. It is applied to every rate, not only to 0 and 1:
# correcting only the extreme ones would make d′ jump where a count reaches the edge.
LOG_LINEAR = 0.5
# Below this the raters' rates are equal up to rounding (a standard error under 1e-12).
_ZERO_VARIANCE = 1e-24
# Output digits: enough that a published standard error is reproduced to 1e-12.
_DIGITS = 12


@dataclass(frozen=True)
class Proportion:
    """A share of judgments with its interval clustered by rater.

    ``value`` = ``count`` / ``judgments``; ``se``, ``low`` and ``high`` come from the
    cluster-robust variance over ``raters`` raters (``effective_raters``: Kish's
    number). ``reason`` says why ``value`` or the interval is ``None``.
    """

    value: float | None
    low: float | None
    high: float | None
    se: float | None
    count: int
    judgments: int
    raters: int
    effective_raters: float | None
    reason: str | None


@dataclass(frozen=True)
class Detection:
    """Signal-detection sensitivity ``d_prime`` = z(H) − z(F) and criterion
    ``criterion`` = −(z(H) + z(F)) / 2 (positive: a lean towards "real"), from the
    log-linear corrected hit rate H and false-alarm rate F (the raw counts are given too).
    ``reason`` says why they are ``None``."""

    d_prime: float | None
    criterion: float | None
    hit_rate: float | None
    false_alarm_rate: float | None
    hits: int
    generated_judgments: int
    false_alarms: int
    real_judgments: int
    reason: str | None


@dataclass(frozen=True)
class ExposureRealness:
    """A system's fooled rate among the judgments made at one exposure (``None``:
    unlimited)."""

    exposure_ms: float | None
    fooled: Proportion


@dataclass(frozen=True)
class SystemRealness:
    """One system. ``fooled``: its generated images judged real (the human error rate on
    them); ``real_error``: real images judged generated by the same raters; ``hype_infinity``:
    both errors pooled (the module docstring gives the exact definition); ``detection``:
    d′ and c of those raters pooled. ``reason`` is set when the system has no judgments."""

    system: str
    raters: int
    fooled: Proportion
    real_error: Proportion
    hype_infinity: Proportion
    detection: Detection
    by_exposure: tuple[ExposureRealness, ...]
    reason: str | None


@dataclass(frozen=True)
class RaterRealness:
    """One rater over all their judgments: ``fooled_rate`` on generated images (every
    system), ``error_rate`` on all images, and their d′ and c. ``flags``:
    ``"same_answer"`` when every answer was the same."""

    rater: str
    judgments: int
    fooled_rate: float | None
    error_rate: float | None
    detection: Detection
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Realness:
    """A real-or-generated study: ``systems`` in the order given (or sorted by name),
    ``raters`` sorted by id, and the ``notes`` the reader must know."""

    systems: tuple[SystemRealness, ...]
    raters: tuple[RaterRealness, ...]
    n_judgments: int
    n_raters: int
    real_judgments: int
    level: float
    interval_method: str
    notes: tuple[str, ...]

    def system(self, name: str) -> SystemRealness:
        return next(s for s in self.systems if s.system == name)


def _validate_judgments(
    rater: npt.ArrayLike,
    source: npt.ArrayLike,
    answer: npt.ArrayLike,
    exposure_ms: npt.ArrayLike | None,
    level: float,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], BoolArray, FloatArray | None]:
    """Arrays of equal length; answers "real"/"generated"; exposures positive or inf."""
    r, s, a = (np.asarray(x) for x in (rater, source, answer))
    for name, x in (("rater", r), ("source", s), ("answer", a)):
        if x.ndim != 1:
            raise ValueError(f"{name} must be 1-d, not of shape {x.shape}")
    if not r.size == s.size == a.size:
        raise ValueError(
            f"rater, source and answer must have equal lengths, not {r.size}, {s.size}, {a.size}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    answers = a.astype(str)
    bad = sorted(set(np.unique(answers).tolist()) - set(ANSWERS))
    if bad:
        raise ValueError(f"answer must be {REAL!r} or {GENERATED!r}, not {bad[:3]!r}")
    exposure = None
    if exposure_ms is not None:
        exposure = np.asarray(exposure_ms, dtype=np.float64)
        if exposure.shape != r.shape:
            raise ValueError(f"exposure_ms must have the length of rater ({r.size})")
        if np.isnan(exposure).any() or (exposure <= 0).any():
            raise ValueError("exposure_ms must be positive (np.inf: unlimited), without NaN")
    return r.astype(str), s.astype(str), answers == REAL, exposure


def detection(
    hits: int, generated_judgments: int, false_alarms: int, real_judgments: int
) -> Detection:
    """d′ and c of a 2AFC real-or-generated judgment, generated images being the signal.

    Parameters
    ----------
    hits : int
        Generated images called generated.
    generated_judgments : int
        Judgments of generated images.
    false_alarms : int
        Real images called generated.
    real_judgments : int
        Judgments of real images.

    Returns
    -------
    Detection
        With the log-linear corrected rates H = (hits + 0.5) / (generated + 1) and
        F = (false alarms + 0.5) / (real + 1), applied to every rate, so d′ is finite
        when a rater is perfect; ``None`` with a reason without both kinds of images.

    Raises
    ------
    ValueError
        For negative counts or more hits (false alarms) than judgments.

    References
    ----------
    Macmillan & Creelman (2005), eq. 1.5 (d′) and 2.1 (c); Hautus (1995).

    Example
    -------
    >>> round(detection(100, 100, 0, 100).d_prime, 3)
    5.159
    """
    for name, k, n in (
        ("hits", hits, generated_judgments),
        ("false_alarms", false_alarms, real_judgments),
    ):
        if not 0 <= k <= n:
            raise ValueError(f"{name} must lie in [0, {n}], not {k}")
    missing = [
        what for what, n in (("generated", generated_judgments), ("real", real_judgments)) if n == 0
    ]
    if missing:
        return Detection(
            None,
            None,
            None,
            None,
            hits,
            generated_judgments,
            false_alarms,
            real_judgments,
            f"no judgments of {' or '.join(missing)} images: d′ needs both",
        )
    h = (hits + LOG_LINEAR) / (generated_judgments + 2 * LOG_LINEAR)
    f = (false_alarms + LOG_LINEAR) / (real_judgments + 2 * LOG_LINEAR)
    zh, zf = float(stats.norm.ppf(h)), float(stats.norm.ppf(f))
    return Detection(
        d_prime=finite(zh - zf, _DIGITS),
        criterion=finite(-(zh + zf) / 2, _DIGITS),
        hit_rate=finite(h, _DIGITS),
        false_alarm_rate=finite(f, _DIGITS),
        hits=hits,
        generated_judgments=generated_judgments,
        false_alarms=false_alarms,
        real_judgments=real_judgments,
        reason=None,
    )


def _proportion(errors: BoolArray, rater: IntArray, level: float, what: str) -> Proportion:
    """The share of ``errors`` with its rater-clustered interval (``what``: the images)."""
    n = np.bincount(rater).astype(np.float64)
    y = np.bincount(rater, weights=errors.astype(np.float64), minlength=n.size)
    y, n = y[n > 0], n[n > 0]
    g, total, count = int(n.size), float(n.sum()), int(errors.sum())
    if total == 0:
        return Proportion(None, None, None, None, 0, 0, 0, None, f"no judgments of {what}")
    p = y.sum() / total
    n_eff = effective_raters(rater)

    def without_interval(reason: str) -> Proportion:
        return Proportion(finite(p, _DIGITS), None, None, None, count, int(total), g, n_eff, reason)

    if g < 2:
        return without_interval(
            "one rater: an interval clustered by rater needs at least two raters"
        )
    variance = g / (g - 1) * float(((y - p * n) ** 2).sum()) / total**2
    if variance < _ZERO_VARIANCE:
        return without_interval(
            f"all {g} raters have the same rate ({p:.3g}): the rater-clustered standard "
            "error is 0 and gives no interval"
        )
    cluster = ClusterCovariance(cov=np.array([[variance]]), clusters=g)
    se = float(cluster.standard_errors[0])
    half = cluster.quantile(level, n_eff) * se
    return Proportion(
        value=finite(p, _DIGITS),
        low=finite(max(0.0, p - half), _DIGITS),
        high=finite(min(1.0, p + half), _DIGITS),
        se=finite(se, _DIGITS),
        count=count,
        judgments=int(total),
        raters=g,
        effective_raters=n_eff,
        reason=None,
    )


def _rate(errors: BoolArray) -> float | None:
    return finite(float(errors.mean()), _DIGITS) if errors.size else None


def _system(
    name: str,
    index: int,
    codes: IntArray,
    said_real: BoolArray,
    rater: IntArray,
    exposure: FloatArray | None,
    level: float,
) -> SystemRealness:
    """Every number of one system; ``codes`` are sources (-1: real image)."""
    mine = codes == index
    real = codes < 0
    raters = np.unique(rater[mine])
    theirs_real = real & np.isin(rater, raters)
    fooled = _proportion(said_real[mine], rater[mine], level, f"{name}'s images")
    real_error = _proportion(
        ~said_real[theirs_real], rater[theirs_real], level, f"real images by {name}'s raters"
    )
    mix = mine | theirs_real
    errors = np.where(real, ~said_real, said_real)
    hype = _proportion(errors[mix], rater[mix], level, f"{name}'s session mix")
    if hype.value is not None and real_error.judgments == 0:
        hype = dataclasses.replace(
            hype,
            value=None,
            low=None,
            high=None,
            se=None,
            reason=f"{name}'s raters judged no real images: HYPE∞ pools real and generated",
        )
    sdt = detection(
        fooled.judgments - fooled.count,
        fooled.judgments,
        real_error.count,
        real_error.judgments,
    )
    by_exposure: list[ExposureRealness] = []
    if exposure is not None:
        for ms in np.unique(exposure[mine]).tolist():
            at = mine & (exposure == ms)
            by_exposure.append(
                ExposureRealness(
                    exposure_ms=finite(ms, _DIGITS),
                    fooled=_proportion(
                        said_real[at],
                        rater[at],
                        level,
                        f"{name}'s images at {ms:g} ms"
                        if math.isfinite(ms)
                        else f"{name}'s images, unlimited",
                    ),
                )
            )
    return SystemRealness(
        system=name,
        raters=int(raters.size),
        fooled=fooled,
        real_error=real_error,
        hype_infinity=hype,
        detection=sdt,
        by_exposure=tuple(by_exposure),
        reason=None if mine.any() else f"no judgments of {name}'s images",
    )


def _rater(label: str, real: BoolArray, said_real: BoolArray) -> RaterRealness:
    """One rater's rates over all their judgments."""
    fake = ~real
    errors = np.where(real, ~said_real, said_real)
    sdt = detection(
        int((fake & ~said_real).sum()),
        int(fake.sum()),
        int((real & ~said_real).sum()),
        int(real.sum()),
    )
    same = said_real.size > 1 and bool(said_real.all() or not said_real.any())
    return RaterRealness(
        rater=label,
        judgments=int(real.size),
        fooled_rate=_rate(said_real[fake]),
        error_rate=_rate(errors),
        detection=sdt,
        flags=("same_answer",) if same else (),
    )


def realness(
    rater: npt.ArrayLike,
    source: npt.ArrayLike,
    answer: npt.ArrayLike,
    *,
    exposure_ms: npt.ArrayLike | None = None,
    systems: Sequence[str] | None = None,
    real_source: str = REAL,
    level: float = 0.95,
) -> Realness:
    """Fooled rate, HYPE∞, d′ and c per system and per rater, from real-or-generated
    judgments, with intervals clustered by rater.

    Parameters
    ----------
    rater : array (n,)
        Who judged (any ids; compared as strings).
    source : array (n,) of str
        Where the image came from: ``real_source`` for a real image, else the system.
    answer : array (n,) of str
        ``"real"`` or ``"generated"``.
    exposure_ms : array (n,), optional
        How long the image was shown, in ms (``np.inf``: unlimited); each system's
        fooled rate is then also broken down by exposure.
    systems : sequence of str, optional
        Every system of the study, in display order; a system without judgments gets a
        row with a reason. Default: the systems in ``source``, sorted.
    real_source : str
        The ``source`` of real images.
    level : float
        Interval coverage.

    Returns
    -------
    Realness

    Raises
    ------
    ValueError
        For arrays of unequal lengths, an answer other than "real"/"generated",
        non-positive or NaN exposures, a bad level, or a source not in ``systems``.

    References
    ----------
    Zhou et al. (2019), HYPE, NeurIPS, section 3.2 (HYPE∞); Macmillan & Creelman (2005);
    Hautus (1995); Cameron & Miller (2015).

    Example
    -------
    >>> result = realness(["a", "a", "b", "b"], ["real", "sys", "real", "sys"],
    ...                   ["real", "real", "generated", "generated"])
    >>> row = result.system("sys")
    >>> row.fooled.value, row.hype_infinity.value, row.fooled.low
    (0.5, 0.5, 0.0)
    """
    raters, sources, said_real, exposure = _validate_judgments(
        rater, source, answer, exposure_ms, level
    )
    present = sorted(set(np.unique(sources).tolist()) - {real_source})
    if systems is None:
        names = present
    else:
        names = list(systems)
        if real_source in names:
            raise ValueError(f"systems must not include the real source {real_source!r}")
        unknown = sorted(set(present) - set(names))
        if unknown:
            raise ValueError(f"source names systems not in systems: {unknown[:3]!r}")
    index = {name: k for k, name in enumerate(names)}
    codes = np.array([index.get(s, -1) for s in sources.tolist()], dtype=np.int64)
    labels, rater_codes = np.unique(raters, return_inverse=True)
    rater_codes = rater_codes.astype(np.int64)
    real = codes < 0
    rows = tuple(
        _system(name, k, codes, said_real, rater_codes, exposure, level)
        for k, name in enumerate(names)
    )
    per_rater = tuple(
        _rater(str(label), real[rater_codes == k], said_real[rater_codes == k])
        for k, label in enumerate(labels.tolist())
    )
    notes = []
    if raters.size == 0:
        notes.append("No judgments.")
    elif not real.any():
        notes.append("No real images were judged: HYPE∞, real error and d′ are not defined.")
    if systems is not None and (missing := [s for s in names if s not in present]):
        notes.append(f"No judgments of {', '.join(missing)}.")
    if any(r.flags for r in per_rater):
        flagged = sum(1 for r in per_rater if r.flags)
        notes.append(f"{flagged} rater(s) gave the same answer to every image.")
    return Realness(
        systems=rows,
        raters=per_rater,
        n_judgments=int(raters.size),
        n_raters=int(labels.size),
        real_judgments=int(real.sum()),
        level=level,
        interval_method=INTERVAL_METHOD,
        notes=tuple(notes),
    )


def fooled_replicates(
    rater: IntArray,
    system: IntArray,
    said_real: BoolArray,
    n_systems: int,
    replicates: int,
    *,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap replicates (replicates, n_systems) of each system's fooled rate, raters
    drawn with replacement (the rater is the cluster, as in the fooled rate's interval);
    NaN where a replicate drew none of a system's raters. Only generated images:
    ``system`` indexes the system of each judgment. For the metric correlation's
    intervals (the report's bootstrap over raters)."""
    labels, code = np.unique(rater, return_inverse=True)
    g = labels.size
    counts = np.zeros((g, n_systems))
    fooled = np.zeros((g, n_systems))
    np.add.at(counts, (code, system), 1.0)
    np.add.at(fooled, (code, system), said_real.astype(np.float64))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(g, np.full(g, 1.0 / g), size=replicates).astype(np.float64)
    shown = weights @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (weights @ fooled) / shown
    return np.asarray(np.where(shown > 0, rates, np.nan), dtype=np.float64)
