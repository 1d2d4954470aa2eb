"""Bradley–Terry maximum likelihood on per-pair counts, with ties and a position effect.

The model, for a pair shown as (first, second) with log-strengths θ:

    P(first wins)  ∝ exp(θ_first + h)
    P(second wins) ∝ exp(θ_second)
    P(tie)         ∝ ν · exp((θ_first + θ_second) / 2)        (Davidson 1970)

``h`` is the advantage of the first (left) position (Davidson & Beaver 1977), fitted only
when asked. With ``ties="half"`` a tie counts as half a win for each side (the LMArena
convention) and ν is not fitted. "Both bad" is a tie by default or dropped.

Scores are identified by centring them (mean 0). A Gaussian prior ``l2`` on each score
(``l2 / 2 · Σ θ²`` subtracted from the log-likelihood) keeps a system that never lost
finite; ``l2=0`` is the plain MLE, which needs every system to have won and lost against
the others (strong connectivity), and is checked.
"""

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, cg
from threadpoolctl import ThreadpoolController

from analysis.core.counts import PairCounts, row_index
from analysis.core.types import FloatArray, IntArray, Outcome

#: Default prior precision: a normal prior with standard deviation 1/√0.1 ≈ 3.2 on each
#: log-strength (≈ 550 Elo). It moves well-measured scores by far less than an Elo point
#: and keeps an unbeaten system finite.
DEFAULT_L2 = 0.1
ELO_PER_UNIT = 400.0 / math.log(10.0)
TIES = ("davidson", "half")
BOTH_BAD = ("tie", "drop")
_MIN_LOG_NU = -30.0
# Newton steps shorter than this are taken without a line search (the log-likelihood is
# concave: linear terms minus a log-sum-exp of affine functions of the parameters).
_TRUST_FULL_STEP = 1.0
# A replicate's chord step is capped at this (log units) so that one far from the
# estimate cannot run away; it then gets a Newton fit of its own.
_MAX_REPLICATE_STEP = 1.0
_MAX_LOG_NU = 10.0
# Replicate steps below this may be float32 noise: once they stop shrinking, switch to
# float64.
_FLOAT32_FLOOR = 1e-4
# Found once at import: threadpool_limits() would rescan the loaded libraries (~2 ms a call).
_THREADPOOLS = ThreadpoolController()


def _one_blas_thread() -> AbstractContextManager[Any]:
    """Run BLAS (numpy's and scipy's OpenBLAS) on one thread, then restore the limits."""
    limiter: AbstractContextManager[Any] = _THREADPOOLS.limit(limits=1, user_api="blas")
    return limiter


@dataclass(frozen=True)
class Design:
    """The fit's view of a count table: rows (i, j) and the per-row counts of first wins,
    second wins and ties after the tie conventions are applied."""

    n_systems: int
    i: IntArray
    j: IntArray
    ties: str
    both_bad: str
    position: bool
    fit_nu: bool

    @property
    def n_params(self) -> int:
        return self.n_systems + int(self.position) + int(self.fit_nu)

    def split(self, counts: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """First wins, second wins and ties (..., rows) from outcome counts (..., rows, 4)."""
        a = counts[..., Outcome.FIRST]
        b = counts[..., Outcome.SECOND]
        t = counts[..., Outcome.TIE]
        if self.both_bad == "tie":
            t = t + counts[..., Outcome.BOTH_BAD]
        if self.ties == "half":
            return a + t / 2, b + t / 2, np.zeros_like(t)
        return a, b, t


@dataclass(frozen=True)
class BTFit:
    """A fitted Bradley–Terry model.

    ``scores`` are log-strengths centred at mean 0. ``cov`` (computed on first use) is
    their covariance from the observed, prior-penalised information, for centred scores.
    """

    scores: FloatArray
    tie_strength: float | None
    position_effect: float | None
    log_likelihood: float
    n_iter: int
    converged: bool
    l2: float
    design: Design
    params: FloatArray
    a: FloatArray
    b: FloatArray
    t: FloatArray

    @cached_property
    def info_factor(self) -> tuple[FloatArray, bool]:
        """Cholesky factor of the penalised information at the estimate."""
        info = _information(self.params, self.design, self.a + self.b + self.t)
        return _factor(_penalised(info, self.design, self.l2))

    @cached_property
    def inverse_information(self) -> FloatArray:
        """Inverse of the penalised information (all parameters): the model-based
        covariance, and the bread of a sandwich."""
        k = self.design.n_params
        return np.asarray(scipy.linalg.cho_solve(self.info_factor, np.eye(k), check_finite=False))

    @cached_property
    def cov(self) -> FloatArray:
        m = self.design.n_systems
        centre = np.eye(m) - 1.0 / m
        return np.asarray(centre @ self.inverse_information[:m, :m] @ centre)

    @property
    def position_se(self) -> float | None:
        if not self.design.position:
            return None
        m = self.design.n_systems
        return float(math.sqrt(self.inverse_information[m, m]))

    @property
    def standard_errors(self) -> FloatArray:
        return np.sqrt(np.clip(np.diag(self.cov), 0, None))

    @cached_property
    def difference_se(self) -> FloatArray:
        """Standard error of every difference of scores, row minus column."""
        variance = np.diag(self.cov)
        spread = variance[:, None] + variance[None, :] - 2 * self.cov
        return np.sqrt(np.clip(spread, 0, None))

    def elo(self, anchor: int | None = None) -> FloatArray:
        """Scores on the Elo scale: 400/ln 10 per unit, mean (or ``anchor``) at 1000."""
        base = self.scores[anchor] if anchor is not None else 0.0
        return 1000.0 + ELO_PER_UNIT * (self.scores - base)

    def win_probabilities(self) -> FloatArray:
        """P(row system beats column system) with neither on the advantaged side."""
        return win_probabilities(self.scores, self.tie_strength or 0.0)


def rows_of(fit: BTFit, counts: PairCounts) -> IntArray:
    """The row of ``counts`` that each of the fit's design rows came from."""
    rows = row_index(counts, fit.design.i, fit.design.j)
    if rows is None:
        raise ValueError("the counts do not belong to this fit (rows differ)")
    return rows


def win_probabilities(scores: FloatArray, tie_strength: float = 0.0) -> FloatArray:
    """Strict win probabilities between every pair under the Davidson model."""
    d = (scores[:, None] - scores[None, :]) / 2
    up, down = np.exp(d), np.exp(-d)
    p = up / (up + down + tie_strength)
    np.fill_diagonal(p, np.nan)
    return np.asarray(p)


def _validate_options(ties: str, both_bad: str, l2: float) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
    if both_bad not in BOTH_BAD:
        raise ValueError(f"both_bad must be one of {BOTH_BAD}, not {both_bad!r}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, not {l2!r}")


def _check_identifiable(design: Design, a: FloatArray, b: FloatArray, t: FloatArray) -> None:
    """With no prior, the MLE exists only if every system is reachable from every other
    through wins (ties count both ways): the strong connectivity of Ford (1957)."""
    m = design.n_systems
    beat = (a > 0) | (t > 0)
    lost = (b > 0) | (t > 0)
    rows = np.concatenate([design.i[beat], design.j[lost]])
    cols = np.concatenate([design.j[beat], design.i[lost]])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(m, m))
    n_parts, labels = connected_components(graph, directed=True, connection="strong")
    if n_parts > 1:
        sizes = np.bincount(labels)
        raise ValueError(
            f"the maximum-likelihood scores do not exist with l2=0: the systems split into "
            f"{n_parts} groups (sizes {sorted(sizes.tolist(), reverse=True)}) that never both won "
            "and lost against each other (a system that never lost, or never won, or was "
            "never compared); use l2 > 0"
        )


def _unpack(params: FloatArray, design: Design) -> tuple[FloatArray, FloatArray, FloatArray]:
    m = design.n_systems
    theta = params[..., :m]
    h = params[..., m] if design.position else np.zeros(params.shape[:-1])
    log_nu = params[..., -1] if design.fit_nu else np.full(params.shape[:-1], -np.inf)
    return theta, np.asarray(h), np.asarray(log_nu)


def _probabilities(
    params: FloatArray, design: Design
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-row P(first), P(second), P(tie) and the normaliser z of the terms
    exp(±(θ_i − θ_j + h)/2) and ν exp(−h/2): one exp per row."""
    theta, h, log_nu = _unpack(params, design)
    d = theta[design.i] - theta[design.j]
    if design.position:
        d += h
    d *= 0.5
    up = np.exp(d, out=d)
    down = 1.0 / up
    z = up + down
    nu = float(np.exp(log_nu - h / 2)) if design.fit_nu else 0.0
    if nu:
        z += nu
    inverse = 1.0 / z
    return up * inverse, down * inverse, nu * inverse, z


def _log_norm(params: FloatArray, design: Design, z: FloatArray) -> FloatArray:
    """Per-row log of the full normaliser (the shift of the terms added back)."""
    theta, h, _ = _unpack(params, design)
    return np.log(z) + (theta[design.i] + theta[design.j] + h) / 2


def _objective(
    params: FloatArray,
    design: Design,
    a: FloatArray,
    b: FloatArray,
    t: FloatArray,
    l2: float,
    probs: tuple[FloatArray, ...],
) -> float:
    """Penalised log-likelihood from already computed row probabilities."""
    theta, h, log_nu = _unpack(params, design)
    ti, tj = theta[design.i], theta[design.j]
    ll = a @ (ti + h) + b @ tj - (a + b + t) @ _log_norm(params, design, probs[3])
    if design.fit_nu:
        ll += t @ ((ti + tj) / 2 + log_nu)
    return float(ll) - _penalty(params, design, l2)


def _start(design: Design, a: FloatArray, b: FloatArray, t: FloatArray) -> FloatArray:
    """Starting point: each system's smoothed log-odds of winning, the tie share's ν."""
    m = design.n_systems
    wins = np.bincount(design.i, a + t / 2, minlength=m) + np.bincount(
        design.j, b + t / 2, minlength=m
    )
    games = np.bincount(design.i, a + b + t, minlength=m) + np.bincount(
        design.j, a + b + t, minlength=m
    )
    params = np.zeros(design.n_params)
    odds = np.log((wins + 0.5) / (games - wins + 0.5))
    params[:m] = odds - odds.mean()
    if design.fit_nu:
        share = t.sum() / (a + b + t).sum()
        params[-1] = math.log(max(2 * share / max(1 - share, 1e-9), 1e-12))
    return params


def _penalty(params: FloatArray, design: Design, l2: float) -> float:
    theta = params[: design.n_systems]
    return 0.5 * l2 * float(theta @ theta) + 0.5 * float(theta.sum()) ** 2


def _gradient(
    params: FloatArray,
    design: Design,
    a: FloatArray,
    b: FloatArray,
    t: FloatArray,
    probs: tuple[FloatArray, ...] | None = None,
) -> FloatArray:
    """Score vector of the log-likelihood. A row's residuals (first, second, tie) sum to
    zero, so θ's score is half the incidence product of first − second."""
    pf, ps, pt, _ = probs if probs is not None else _probabilities(params, design)
    n = a + b + t
    m = design.n_systems
    margin = (a - b) - n * (pf - ps)
    grad = np.zeros(design.n_params)
    grad[:m] = (
        np.bincount(design.i, margin, minlength=m) - np.bincount(design.j, margin, minlength=m)
    ) / 2
    if design.position:
        grad[m] = float(a.sum() - (n * pf).sum())
    if design.fit_nu:
        grad[-1] = float(t.sum() - (n * pt).sum())
    return grad


def _information(
    params: FloatArray, design: Design, n: FloatArray, probs: tuple[FloatArray, ...] | None = None
) -> FloatArray:
    """Expected (= observed, for this exponential family) information matrix."""
    pf, ps, pt, _ = probs if probs is not None else _probabilities(params, design)
    c_ff, c_ss, c_tt = n * pf * (1 - pf), n * ps * (1 - ps), n * pt * (1 - pt)
    c_fs, c_ft, c_st = -n * pf * ps, -n * pf * pt, -n * ps * pt
    m, k = design.n_systems, design.n_params
    i, j = design.i, design.j
    diag = np.bincount(i, c_ff + c_ft + c_tt / 4, minlength=m) + np.bincount(
        j, c_ss + c_st + c_tt / 4, minlength=m
    )
    off = c_fs + (c_ft + c_st) / 2 + c_tt / 4
    block = np.bincount(i * m + j, off, minlength=m * m) + np.bincount(
        j * m + i, off, minlength=m * m
    )
    info = np.zeros((k, k))
    info[:m, :m] = block.reshape(m, m)
    info[np.arange(m), np.arange(m)] += diag
    col = m
    if design.position:
        cross = np.bincount(i, c_ff + c_ft / 2, minlength=m) + np.bincount(
            j, c_fs + c_ft / 2, minlength=m
        )
        info[col, :m] = info[:m, col] = cross
        info[col, col] = c_ff.sum()
        col += 1
    if design.fit_nu:
        cross = np.bincount(i, c_tt / 2 + c_ft, minlength=m) + np.bincount(
            j, c_tt / 2 + c_st, minlength=m
        )
        info[-1, :m] = info[:m, -1] = cross
        info[-1, -1] = c_tt.sum()
        if design.position:
            info[-1, m] = info[m, -1] = c_ft.sum()
    return info


class _Curvature:
    """The information at one point, as a matrix-free product for conjugate gradients.

    With d = x − y and e = log ν − h/2 for a direction, the residual identities reduce
    every row to two weights: the θ block is ½ Dᵀ diag(A) D with
    A = n (p_f + p_s − (p_f − p_s)²) / 2, and ν and h couple through sums.
    """

    def __init__(self, design: Design, n: FloatArray, probs: tuple[FloatArray, ...], l2: float):
        pf, ps, pt, _ = probs
        self.design, self.l2 = design, l2
        gap = pf - ps
        self.a = n * (pf + ps - gap * gap) / 2
        m = design.n_systems
        diag = np.empty(design.n_params)
        diag[:m] = (
            np.bincount(design.i, self.a, minlength=m) + np.bincount(design.j, self.a, minlength=m)
        ) / 2
        diag[:m] += l2 + 1.0
        self.b = self.h_weight = np.zeros(0)
        self.nu_e = self.h_e = 0.0
        if design.fit_nu:
            npt = n * pt
            self.b = npt * gap
            self.nu_e = float((npt * (1 - pt)).sum())
            diag[-1] = self.nu_e
        if design.position:
            npf = n * pf
            self.h_weight = npf * (1 - gap) / 2  # the h row against d
            self.h_e = float((npf * pt).sum()) if design.fit_nu else 0.0
            diag[m] = float((npf * (1 - pf)).sum())
        self.inverse_diagonal = 1.0 / np.maximum(diag, 1e-12)

    def product(self, vector: FloatArray) -> FloatArray:
        """(Penalised information) @ vector."""
        design, m = self.design, self.design.n_systems
        v = vector[:m]
        vh = float(vector[m]) if design.position else 0.0
        e = (float(vector[-1]) if design.fit_nu else 0.0) - vh / 2
        d = v[design.i] - v[design.j]
        if vh:
            d += vh
        q = self.a * d
        if e:
            q -= self.b * e
        out = np.empty_like(vector)
        out[:m] = (
            np.bincount(design.i, q, minlength=m) - np.bincount(design.j, q, minlength=m)
        ) / 2
        out[:m] += self.l2 * v + v.sum()
        if design.position:
            out[m] = float(self.h_weight @ d) - self.h_e * e
        if design.fit_nu:
            out[-1] = self.nu_e * e - float(self.b @ d) / 2
        return out

    def solve(self, grad: FloatArray, *, rtol: float) -> FloatArray:
        """Jacobi-preconditioned conjugate gradients, to a relative residual ``rtol``."""
        k = grad.size
        operator = LinearOperator((k, k), matvec=self.product, dtype=np.float64)
        jacobi = LinearOperator((k, k), matvec=lambda r: self.inverse_diagonal * r)
        step, _ = cg(operator, grad, rtol=rtol, atol=0.0, maxiter=4 * k, M=jacobi)
        return np.asarray(step)


#: Above this many systems, Newton steps are solved matrix-free.
_DENSE_UP_TO = 200


def _penalised(info: FloatArray, design: Design, l2: float) -> FloatArray:
    """Information plus the prior and the centring term (which only fixes the mean)."""
    m = design.n_systems
    out = info.copy()
    out[:m, :m] += 1.0
    out[np.arange(m), np.arange(m)] += l2
    return out


def _penalised_gradient(
    grad: FloatArray, params: FloatArray, design: Design, l2: float
) -> FloatArray:
    m = design.n_systems
    theta = params[..., :m]
    out = grad.copy()
    out[..., :m] -= l2 * theta + theta.sum(axis=-1, keepdims=True)
    return out


def _factor(matrix: FloatArray) -> tuple[FloatArray, bool]:
    try:
        return scipy.linalg.cho_factor(matrix, check_finite=False)  # type: ignore[no-any-return]
    except np.linalg.LinAlgError:
        # Fall back to a tiny ridge: only reached for a numerically singular design.
        ridge = 1e-10 * max(1.0, float(np.abs(np.diag(matrix)).max()))
        return scipy.linalg.cho_factor(matrix + ridge * np.eye(len(matrix)), check_finite=False)  # type: ignore[no-any-return]


def make_design(
    counts: PairCounts, *, ties: str, both_bad: str, position: bool
) -> tuple[Design, FloatArray, FloatArray, FloatArray]:
    """The design for these options and its per-row first wins, second wins and ties."""
    if position and not counts.ordered:
        raise ValueError("a position effect needs ordered counts (count_pairs(..., ordered=True))")
    probe = Design(counts.n_systems, counts.first, counts.second, ties, both_bad, position, False)
    a, b, t = probe.split(counts.counts)
    keep = (a + b + t) > 0
    fit_nu = ties == "davidson" and bool(t.sum() > 0)
    design = Design(
        counts.n_systems, counts.first[keep], counts.second[keep], ties, both_bad, position, fit_nu
    )
    return design, a[keep], b[keep], t[keep]


def fit_bradley_terry(
    counts: PairCounts,
    *,
    ties: str = "davidson",
    both_bad: str = "tie",
    position: bool = False,
    l2: float = DEFAULT_L2,
    tol: float = 1e-7,
    max_iter: int = 100,
) -> BTFit:
    """Fit Bradley–Terry log-strengths by Newton's method on per-pair counts.

    Parameters
    ----------
    counts : PairCounts
        From :func:`analysis.core.counts.count_pairs` (ordered when ``position``).
    ties : {"davidson", "half"}
        Davidson's tie model with its tie strength ν estimated, or a tie as half a win.
    both_bad : {"tie", "drop"}
        Fit "both bad" as a tie, or leave those votes out.
    position : bool
        Estimate an advantage ``h`` (log-odds) of the first, left-shown system.
    l2 : float
        Precision of the Gaussian prior on each log-strength (0: plain MLE).
    tol : float
        Stop once a Newton step moves no parameter by more than this; convergence is
        quadratic, so the error left is then about its square.
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    BTFit

    Raises
    ------
    ValueError
        For unknown options, or when ``l2=0`` and the MLE does not exist.

    References
    ----------
    Bradley & Terry (1952), Biometrika 39, eq. 1; Davidson (1970), JASA 65, eq. 2.1;
    Davidson & Beaver (1977), Biometrics 33 (order effect); Ford (1957) (existence).

    Example
    -------
    >>> from analysis.core.counts import count_pairs
    >>> c = count_pairs(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([0, 0, 0]), n_systems=2)
    >>> round(float(fit_bradley_terry(c, l2=0.1).scores[0]), 3) > 0
    True
    """
    _validate_options(ties, both_bad, l2)
    design, a, b, t = make_design(counts, ties=ties, both_bad=both_bad, position=position)
    if l2 == 0:
        _check_identifiable(design, a, b, t)
    params = _start(design, a, b, t)
    n = a + b + t
    probs = _probabilities(params, design)
    objective = _objective(params, design, a, b, t, l2, probs)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        grad = _penalised_gradient(_gradient(params, design, a, b, t, probs), params, design, l2)
        if design.n_systems <= _DENSE_UP_TO:
            info = _penalised(_information(params, design, n, probs), design, l2)
            step = scipy.linalg.cho_solve(_factor(info), grad, check_finite=False)
        else:
            # Inexact Newton: loose solves far from the optimum, tight ones near it.
            rtol = min(0.1, math.sqrt(float(np.abs(grad).max())) + 1e-12)
            step = _Curvature(design, n, probs, l2).solve(grad, rtol=max(rtol, 1e-10))
        scale = 1.0
        while True:
            trial = params + scale * step
            if design.fit_nu:
                trial[-1] = max(trial[-1], _MIN_LOG_NU)
            trial_probs = _probabilities(trial, design)
            if float(np.max(np.abs(step))) < _TRUST_FULL_STEP:
                value = objective  # a short step of a concave problem: no need to check
                break
            value = _objective(trial, design, a, b, t, l2, trial_probs)
            if value >= objective - 1e-12 * abs(objective) or scale < 1e-8:
                break
            scale /= 2
        params, objective, probs = trial, value, trial_probs
        if float(np.max(np.abs(scale * step))) < tol:
            converged = True
            break
    objective = _objective(params, design, a, b, t, l2, probs)
    m = design.n_systems
    return BTFit(
        scores=params[:m] - params[:m].mean(),
        tie_strength=math.exp(params[-1]) if design.fit_nu else None,
        position_effect=float(params[m]) if position else None,
        log_likelihood=objective + _penalty(params, design, l2),
        n_iter=n_iter,
        converged=converged,
        l2=l2,
        design=design,
        params=params,
        a=a,
        b=b,
        t=t,
    )


class _Replicates:
    """Gradients of many count tables that share one design.

    Arrays are laid out (rows, replicates) so that the sparse incidence products and the
    element-wise work run on contiguous memory. Because a row's residuals (first, second,
    tie) sum to zero, the score of θ is half the incidence product of first − second, and
    the scores of ν and h are sums. The fast pass runs in float32; its noise floor (a − n·p
    cancels when rows hold many votes) is about 1e-5 in the step, so the last iterations
    run in float64.
    """

    def __init__(self, design: Design, counts: npt.NDArray[Any]):
        a, b, t = design.split(counts)
        self.design = design
        n = a + b + t
        self.sums = {"a": a.sum(axis=-1), "t": t.sum(axis=-1)}
        self.arrays: dict[type, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {
            np.float64: (np.ascontiguousarray((a - b).T), np.ascontiguousarray(n.T)),
        }
        margin, n64 = self.arrays[np.float64]
        self.arrays[np.float32] = (margin.astype(np.float32), n64.astype(np.float32))
        m, rows = design.n_systems, design.i.size
        index = np.arange(rows)
        ones = np.ones(rows)
        where = (np.r_[index, index], np.r_[design.i, design.j])
        # (rows, systems): +1 at the row's first system and -1 at its second.
        self.incidence = {
            dtype: csr_matrix((np.r_[ones, -ones], where), shape=(rows, m), dtype=dtype)
            for dtype in (np.float32, np.float64)
        }
        self.incidence_t = {dtype: x.T.tocsr() for dtype, x in self.incidence.items()}

    def gradient(self, params: FloatArray, *, precise: bool) -> FloatArray:
        design, m = self.design, self.design.n_systems
        dtype = np.float64 if precise else np.float32
        margin, n = self.arrays[dtype]
        theta = np.ascontiguousarray(params[:, :m].T, dtype=dtype)
        up = self.incidence[dtype] @ theta  # θ_i − θ_j per (row, replicate)
        if design.position:
            up += params[:, m].astype(dtype)
        up *= 0.5
        np.exp(up, out=up)
        down = np.reciprocal(up)
        scale = up + down
        if design.fit_nu:
            log_w = params[:, -1] - (params[:, m] / 2 if design.position else 0.0)
            w = np.exp(log_w).astype(dtype)
            scale += w
        np.divide(n, scale, out=scale)  # n / normaliser
        grad = np.zeros((params.shape[0], design.n_params))
        if design.position:
            grad[:, m] = self.sums["a"] - np.einsum("rb,rb->b", up, scale)
        if design.fit_nu:
            grad[:, -1] = self.sums["t"] - w * scale.sum(axis=0)
        up -= down
        up *= scale
        residual = np.subtract(margin, up, out=up)  # (a − b) − n (p_first − p_second)
        grad[:, :m] = 0.5 * (self.incidence_t[dtype] @ residual).T
        return grad


def _exposure_scale(fit: BTFit, batch: _Replicates) -> FloatArray:
    """Per replicate and parameter, √(replicate's curvature / the estimate's) on the
    diagonal. Solving with S^½ H S^½ instead of H adapts the shared factor to how often
    each system was drawn, which in sparse studies varies a lot between replicates."""
    design, m = fit.design, fit.design.n_systems
    a, b, t = fit.a, fit.b, fit.t
    n = a + b + t
    probs = _probabilities(fit.params, design)
    pf, ps, _, _ = probs
    per_vote = (pf + ps - (pf - ps) ** 2) / 2  # the θ block's row weight per vote
    base = (
        np.bincount(design.i, per_vote * n, minlength=m)
        + np.bincount(design.j, per_vote * n, minlength=m)
    ) / 2
    drawn = batch.arrays[np.float64][1]  # (rows, replicates) votes per row
    weighted = drawn * per_vote[:, None]
    absolute = abs(batch.incidence[np.float64]).T.tocsr()
    replicate = np.asarray(absolute @ weighted).T / 2  # (replicates, systems)
    extra = fit.l2 + 1.0
    scale = np.ones((drawn.shape[1], design.n_params))
    scale[:, :m] = np.sqrt((replicate + extra) / (base + extra))
    return scale


def refit_replicates(
    fit: BTFit, replicate_counts: npt.NDArray[Any], *, tol: float = 1e-6, max_iter: int = 60
) -> tuple[FloatArray, int]:
    """Fit many count tables that share ``fit``'s rows, all at once, from its estimate.

    ``replicate_counts`` has shape (replicates, rows, 4) in the design's row order. Each
    iteration is one gradient pass over all replicates and a solve with the information
    at the estimate, factored once (a chord method), accelerated by Anderson mixing of the
    last three steps. Replicates are solved until no log-strength moves by more than
    ``tol`` (1e-6 ≈ 0.0002 Elo, far below any interval's resolution). A replicate that
    strays far from the estimate (small studies) and does not settle gets a full Newton
    fit of its own. Returns centred scores (replicates, n_systems) and how many
    replicates did not converge even then.

    References
    ----------
    Walker & Ni (2011), "Anderson acceleration for fixed-point iterations", SIAM J.
    Numer. Anal. 49(4).
    """
    # One BLAS thread: under concurrent CPU load OpenBLAS's per-core threads oversubscribe.
    with _one_blas_thread():
        return _refit_replicates(fit, replicate_counts, tol=tol, max_iter=max_iter)


def _refit_replicates(
    fit: BTFit, replicate_counts: npt.NDArray[Any], *, tol: float, max_iter: int
) -> tuple[FloatArray, int]:
    """:func:`refit_replicates`' work, run under its BLAS thread limit."""
    design = fit.design
    batch = _Replicates(design, replicate_counts)
    size = replicate_counts.shape[0]
    exposure = _exposure_scale(fit, batch)
    x = np.repeat(fit.params[None, :], size, axis=0)
    depth = 3
    xs: list[FloatArray] = []
    fs: list[FloatArray] = []
    converged = np.zeros(size, dtype=bool)
    precise = False
    previous = np.inf
    for _ in range(max_iter):
        grad = _penalised_gradient(batch.gradient(x, precise=precise), x, design, fit.l2)
        f = (
            scipy.linalg.cho_solve(fit.info_factor, (grad / exposure).T, check_finite=False).T
            / exposure
        )
        # A replicate far from the estimate may not contract: cap its steps.
        np.clip(f, -_MAX_REPLICATE_STEP, _MAX_REPLICATE_STEP, out=f)
        f[~np.isfinite(f).all(axis=1)] = 0.0
        largest = np.max(np.abs(f[:, : design.n_systems]), axis=1)
        # Go on in float32 while steps shrink well; once they are small, or stall at its
        # noise floor, take this step and finish in float64.
        worst = float(largest.max())
        precise = precise or worst < _FLOAT32_FLOOR and worst > 0.25 * previous or worst < tol
        previous = worst
        converged = largest < tol
        if precise and converged.all():
            x += f
            break
        xs.append(x.copy())
        fs.append(f)
        if len(fs) > depth + 1:
            xs.pop(0)
            fs.pop(0)
        if len(fs) > 1:
            d_f = np.stack([fs[i + 1] - fs[i] for i in range(len(fs) - 1)], axis=2)
            d_x = np.stack([xs[i + 1] - xs[i] for i in range(len(xs) - 1)], axis=2)
            gram = np.einsum("bki,bkj->bij", d_f, d_f)
            scale = np.einsum("bii->b", gram)[:, None, None] + 1e-300
            gram += 1e-12 * scale * np.eye(gram.shape[1])
            gamma = np.linalg.solve(gram, np.einsum("bki,bk->bi", d_f, f)[..., None])[..., 0]
            mixed = x + f - np.einsum("bki,bi->bk", d_x + d_f, gamma)
            # Keep the plain step where mixing misbehaves.
            sane = np.isfinite(mixed).all(axis=1) & (
                np.abs(mixed - x).max(axis=1) < 4 * _MAX_REPLICATE_STEP
            )
            x = np.where(sane[:, None], mixed, x + f)
        else:
            x = x + f
        if design.fit_nu:
            x[:, -1] = np.clip(x[:, -1], _MIN_LOG_NU, _MAX_LOG_NU)
    settled = converged & precise & np.isfinite(x).all(axis=1)
    theta = x[:, : design.n_systems].copy()
    failed = 0
    for r in np.flatnonzero(~settled).tolist():
        table = PairCounts(
            design.n_systems,
            design.i,
            design.j,
            np.asarray(replicate_counts[r], dtype=np.float64),
            design.position,
        )
        try:
            alone = fit_bradley_terry(
                table,
                ties=design.ties,
                both_bad=design.both_bad,
                position=design.position,
                l2=fit.l2,
            )
        except ValueError:
            failed += 1
            continue
        theta[r] = alone.scores
        failed += int(not alone.converged)
    return theta - theta.mean(axis=1, keepdims=True), failed
