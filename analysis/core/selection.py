"""Which pair of systems to show next: adaptive selection for a pairwise study.

Two rules, both from a per-pair count table (:class:`analysis.core.counts.PairCounts`):

:func:`pair_priorities`, the rule Verdict serves by. It fits Bradley–Terry
(:func:`analysis.core.bt.fit_bradley_terry`, Davidson ties, the default prior) and takes
the covariance ``C`` of the centred scores. One more vote on the pair (i, j), with
e = e_i − e_j and Fisher information w_ij per vote at the estimate, turns the information
H into H + w e eᵀ, and C into C − w C e eᵀ C / (1 + w eᵀ C e) (Sherman–Morrison). The
priority of (i, j) is the expected drop of a weighted total variance of score differences,

    gain_ij = w_ij · (C e)ᵀ L (C e) / (1 + w_ij · eᵀ C e)

a greedy weighted A-optimal design: tr(L C) is the variance to reduce, L a weighting of
the scores' errors. ``weighting`` says which (ω_ab weighs the pair a, b in
L = Σ_ab ω_ab (e_a − e_b)(e_a − e_b)ᵀ):

- ``"shape"`` (the default): every score alike, but not along the fitted scores' own
  direction (L = I − 11ᵀ/m − ŝŝᵀ/|ŝ|², ŝ the centred scores): the errors of the scores up
  to location and scale, which decide the ranking and the spacing (and the RMSE of
  z-scored scores, the measure of ``bench/selection.py``);
- ``"total"``: every score alike (L ∝ I: the trace of C, the mean squared error);
- ``"ranking"``: ω_ab = Φ(−|θ_a − θ_b| / sd(θ_a − θ_b)), the chance that the fitted order
  of a and b is wrong, so that systems whose order is settled stop drawing votes;
- ``"information"``: not a variance but the expected information gain of the Gaussian
  posterior, ½ log(1 + w eᵀ C e) (D-optimality; the criterion of Hybrid-MST and ASAP).

Pairs with fewer votes than ``floor`` come before every other pair. A batch of
the next pairs is chosen greedily, each as if the ones before it had been voted on.

:func:`arena_rule`, the published Chatbot Arena rule, as a baseline: a pair's
probability of being shown is ∝ √(Σ̂/n) − √(Σ̂/(n + 1)), the expected shrinkage of the
standard error of its win rate from one more vote.

References
----------
Chiang et al. (2024), "Chatbot Arena: an open platform for evaluating LLMs by human
preference", ICML, arXiv 2403.04132, section 7 (the active sampling rule). Li, Mantiuk,
Wang, Ling & Le Callet (2018), "Hybrid-MST: a hybrid active sampling strategy for pairwise
preference aggregation", NeurIPS (information-driven selection under Bradley–Terry).
Pukelsheim (2006), "Optimal Design of Experiments", SIAM, chapter 6 (A-optimality).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from analysis.core.bt import DEFAULT_L2, _one_blas_thread, fit_bradley_terry, win_probabilities
from analysis.core.counts import PairCounts
from analysis.core.graph import comparison_components, open_sides
from analysis.core.results import Notice
from analysis.core.types import BoolArray, FloatArray, IntArray, Outcome

__all__ = ["WEIGHTINGS", "PairPriorities", "arena_rule", "pair_priorities"]

WEIGHTINGS = ("shape", "total", "ranking", "information")
# Priorities of pairs under the floor start here, above every gain (gains are scaled to
# [0, 1]); each missing vote adds this much, so a larger deficit always comes first.
_FLOOR_STEP = 2.0
# An order whose chance of being wrong is below this no longer weighs in "ranking": it
# keeps the sum from being a sum of many tiny numbers that only add rounding noise.
_MIN_ORDER_DOUBT = 1e-6


@dataclass(frozen=True)
class PairPriorities:
    """A priority for every unordered pair of systems (higher: serve sooner).

    The pairs run in lexicographic order (``first < second``): (0, 1), (0, 2), …,
    (m − 2, m − 1). ``votes`` are the pair's votes so far and ``below_floor`` marks pairs
    with fewer than ``floor``. ``batch`` holds the next pairs to serve, as indices into
    these arrays, in order (empty for the Arena rule, which is sampled from: its
    ``priority`` is a probability and sums to 1). ``notices`` say where the rule fell
    back to something simpler, and why.
    """

    rule: str
    first: IntArray
    second: IntArray
    votes: IntArray
    priority: FloatArray
    below_floor: BoolArray
    floor: int
    batch: IntArray
    notices: tuple[Notice, ...]

    @property
    def n_pairs(self) -> int:
        return int(self.first.size)

    def order(self) -> IntArray:
        """Pair indices from the highest priority down; ties keep the pairs' order."""
        return np.asarray(np.argsort(-self.priority, kind="stable"), dtype=np.int64)

    def pairs(self, indices: IntArray) -> tuple[tuple[int, int], ...]:
        """The (first, second) systems of the given pair indices."""
        return tuple(zip(self.first[indices].tolist(), self.second[indices].tolist(), strict=True))


def _validate_counts(counts: PairCounts) -> None:
    if counts.n_systems < 2:
        raise ValueError(f"counts must hold at least 2 systems, not {counts.n_systems}")
    if counts.counts.size and not (np.isfinite(counts.counts).all() and (counts.counts >= 0).all()):
        raise ValueError("counts must hold finite, non-negative vote counts")


def _validate_options(floor: int, batch: int, weighting: str, l2: float) -> None:
    if floor < 0:
        raise ValueError(f"floor must be >= 0, not {floor!r}")
    if batch < 0:
        raise ValueError(f"batch must be >= 0, not {batch!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
    if not l2 > 0:
        raise ValueError(f"l2 must be > 0 (a system that never lost needs the prior), not {l2!r}")


def _all_pairs(m: int) -> tuple[IntArray, IntArray]:
    """Every unordered pair (i < j), in lexicographic order."""
    first, second = np.triu_indices(m, k=1)
    return first.astype(np.int64), second.astype(np.int64)


def _pair_index(m: int, i: IntArray, j: IntArray) -> IntArray:
    """Position of the unordered pair {i, j} in :func:`_all_pairs`' order."""
    low, high = np.minimum(i, j), np.maximum(i, j)
    return np.asarray(low * (2 * m - low - 1) // 2 + (high - low - 1), dtype=np.int64)


def _votes_per_pair(counts: PairCounts) -> FloatArray:
    """Votes of each unordered pair (both shown orders together)."""
    m = counts.n_systems
    size = m * (m - 1) // 2
    if not counts.first.size:
        return np.zeros(size)
    where = _pair_index(m, counts.first, counts.second)
    return np.bincount(where, counts.counts.sum(axis=1), minlength=size).astype(np.float64)


def _floor_priority(votes: FloatArray, floor: int) -> tuple[FloatArray, BoolArray]:
    """The priority that puts pairs under the floor first (0 elsewhere), and which are."""
    deficit = np.clip(floor - votes, 0, None)
    below = deficit > 0
    return np.where(below, _FLOOR_STEP * np.ceil(deficit), 0.0), below


def _order_weights(scores: FloatArray, cov: FloatArray, weighting: str) -> FloatArray:
    """ω_ab of the weighted total variance: how much the difference of a and b matters."""
    m = scores.size
    if weighting == "total":
        return np.full((m, m), 1.0 / m)
    variance = np.diag(cov)
    spread = np.sqrt(np.clip(variance[:, None] + variance[None, :] - 2 * cov, 1e-12, None))
    doubt = ndtr(-np.abs(scores[:, None] - scores[None, :]) / spread)
    return np.where(doubt > _MIN_ORDER_DOUBT, doubt, 0.0)


def _shape_weight(scores: FloatArray) -> FloatArray:
    """L of the "shape" weighting: the centring projection less the fitted scores' own
    direction, so that only errors in the scores' pattern count, not in their scale."""
    m = scores.size
    out = np.eye(m) - 1.0 / m
    centred = scores - scores.mean()
    norm = float(centred @ centred)
    if norm > 1e-12:
        out -= np.outer(centred, centred) / norm
    return out


def _laplacian(weights: FloatArray) -> FloatArray:
    """Σ_ab ω_ab (e_a − e_b)(e_a − e_b)ᵀ over unordered pairs, from symmetric ω."""
    off = weights.copy()
    np.fill_diagonal(off, 0.0)
    return np.diag(off.sum(axis=1)) - off


class _Design:
    """The covariance of the scores and the weighted variance it is judged by, updated
    one planned vote at a time (Sherman–Morrison; O(m²) a vote)."""

    def __init__(
        self,
        cov: FloatArray,
        laplacian: FloatArray,
        information: FloatArray,
        *,
        entropy: bool = False,
    ):
        self.entropy = entropy  # judge by information gain, not by a variance
        self.cov = cov.copy()
        self.laplacian = laplacian
        self.weighted = cov @ laplacian @ cov  # C L C
        self.information = information  # Fisher information of one vote, per pair
        self.first, self.second = _all_pairs(cov.shape[0])

    def gains(self) -> FloatArray:
        """Expected drop of tr(L C) from one more vote on each pair."""
        i, j, c, q = self.first, self.second, self.cov, self.weighted
        variance = c[i, i] + c[j, j] - 2 * c[i, j]  # eᵀ C e
        reduction = q[i, i] + q[j, j] - 2 * q[i, j]  # (C e)ᵀ L (C e)
        w = self.information
        if self.entropy:
            # ½ log det of the information after / before: the Gaussian posterior's
            # expected information gain (D-optimality).
            return np.asarray(0.5 * np.log1p(w * np.clip(variance, 0, None)))
        return np.asarray(w * np.clip(reduction, 0, None) / (1 + w * np.clip(variance, 0, None)))

    def add_vote(self, pair: int) -> None:
        """Update C and C L C as if one more vote on ``pair`` were in."""
        i, j = int(self.first[pair]), int(self.second[pair])
        w = float(self.information[pair])
        u = self.cov[:, i] - self.cov[:, j]  # C e
        shrink = w / (1 + w * max(float(u[i] - u[j]), 0.0))
        g = self.weighted[:, i] - self.weighted[:, j]  # C L C e = C L u
        ulu = float(g[i] - g[j])  # eᵀ C L C e = uᵀ L u
        self.cov -= shrink * np.outer(u, u)
        self.weighted -= shrink * (np.outer(u, g) + np.outer(g, u))
        self.weighted += shrink * shrink * ulu * np.outer(u, u)


def _scaled(gains: FloatArray) -> FloatArray:
    """Gains on [0, 1] (the largest at 1), so that the floor's priorities sit above them."""
    top = float(gains.max()) if gains.size else 0.0
    return gains / top if top > 0 and math.isfinite(top) else np.zeros_like(gains)


def _plan(design: _Design, votes: FloatArray, floor: int, size: int) -> IntArray:
    """The next ``size`` pairs, each chosen by the priorities after the ones before it."""
    planned = votes.copy()
    chosen = np.empty(size, dtype=np.int64)
    for step in range(size):
        floor_priority, _ = _floor_priority(planned, floor)
        priority = floor_priority + _scaled(design.gains())
        pick = int(np.argmax(priority))  # the first of equals: deterministic
        chosen[step] = pick
        planned[pick] += 1
        design.add_vote(pick)
    return chosen


def _by_votes(votes: FloatArray, floor: int, size: int) -> IntArray:
    """The fallback plan: the pairs with the fewest votes, round robin."""
    planned = votes.copy()
    chosen = np.empty(size, dtype=np.int64)
    for step in range(size):
        chosen[step] = int(np.argmin(planned))
        planned[chosen[step]] += 1
    return chosen


def _data_notices(counts: PairCounts) -> list[Notice]:
    """What about the votes makes the priorities rest on the prior."""
    m = counts.n_systems
    if counts.n_votes == 0:
        return [
            Notice(
                "no_votes",
                "No votes yet: every pair has the same priority beyond the floor; the batch "
                "spreads the first votes over all systems.",
            )
        ]
    notices = []
    has_votes = counts.counts.sum(axis=1) > 0
    labels = comparison_components(m, counts.first[has_votes], counts.second[has_votes])
    n_parts = int(labels.max()) + 1
    if n_parts > 1:
        notices.append(
            Notice(
                "disconnected",
                f"The systems fall into {n_parts} groups never compared with each other: "
                "scores across groups rest on the prior, so pairs that link them come first.",
            )
        )
    a = counts.counts[:, Outcome.FIRST]
    b = counts.counts[:, Outcome.SECOND]
    t = counts.counts[:, Outcome.TIE] + counts.counts[:, Outcome.BOTH_BAD]
    if n_parts == 1 and open_sides(m, counts.first, counts.second, a, b, t).separated:
        notices.append(
            Notice(
                "separated",
                "Some systems never lost (or never won) against the rest: their scores rest "
                "on the prior, which keeps the priorities finite.",
            )
        )
    return notices


def pair_priorities(
    counts: PairCounts,
    *,
    floor: int = 1,
    batch: int = 10,
    weighting: str = "shape",
    l2: float = DEFAULT_L2,
) -> PairPriorities:
    """Priorities of every pair of systems by the expected drop of score uncertainty.

    Parameters
    ----------
    counts : PairCounts
        Votes so far, per pair (ordered or not), from
        :func:`analysis.core.counts.count_pairs`.
    floor : int
        Pairs with fewer votes than this come first, the largest deficit first.
    batch : int
        How many next pairs to plan (the ``batch`` field), for a server that recomputes
        the priorities every ``batch`` votes.
    weighting : {"shape", "total", "ranking", "information"}
        Which uncertainty to reduce (module docstring): the scores' up to location and
        scale, all scores', the differences whose order is in doubt, or the information
        gain.
    l2 : float
        Prior precision of the Bradley–Terry fit (> 0: it keeps an unbeaten system and
        unlinked groups finite).

    Returns
    -------
    PairPriorities
        ``rule`` is ``"variance"``, or ``"fewest_votes"`` when the fit failed (a notice
        says so). Priorities are finite: gains lie in [0, 1], and a pair ``d`` votes under
        the floor gets 2·d more.

    Raises
    ------
    ValueError
        With fewer than two systems, negative or non-finite counts, or a bad option.

    References
    ----------
    Sherman & Morrison (1950), Ann. Math. Statist. 21(1) (the rank-one update);
    Pukelsheim (2006), "Optimal Design of Experiments", ch. 6 (A-optimality);
    Li et al. (2018), NeurIPS, "Hybrid-MST" (information-driven pair selection).

    Example
    -------
    >>> from analysis.core.counts import count_pairs
    >>> first, second = np.array([0, 0, 0, 0]), np.array([1, 1, 2, 2])
    >>> c = count_pairs(first, second, np.array([0, 1, 0, 1]), n_systems=3, ordered=False)
    >>> p = pair_priorities(c, floor=1, batch=2)
    >>> p.pairs(p.batch[:1])  # (1, 2) has no vote yet
    ((1, 2),)
    """
    _validate_counts(counts)
    _validate_options(floor, batch, weighting, l2)
    m = counts.n_systems
    first, second = _all_pairs(m)
    votes = _votes_per_pair(counts)
    floor_priority, below = _floor_priority(votes, floor)
    notices = _data_notices(counts)
    with _one_blas_thread():
        try:
            fit = fit_bradley_terry(counts, l2=l2)
            cov = fit.cov
            scores = fit.scores
            probs = win_probabilities(scores, fit.tie_strength or 0.0)
            forward, backward = probs[first, second], probs[second, first]
            # Fisher information of θ_i − θ_j in one vote (Davidson ties included).
            information = (forward + backward - (forward - backward) ** 2) / 4
            if weighting in ("shape", "information"):
                weight = _shape_weight(scores)
            else:
                weight = _laplacian(_order_weights(scores, cov, weighting))
            design = _Design(cov, weight, information, entropy=weighting == "information")
            gains = design.gains()
            usable = bool(np.isfinite(gains).all() and np.isfinite(design.weighted).all())
        except (ValueError, np.linalg.LinAlgError) as exc:
            usable, reason = False, str(exc)
        else:
            reason = "the fit gave non-finite uncertainties"
        if usable:
            priority = floor_priority + _scaled(gains)
            chosen = _plan(design, votes, floor, batch)
            rule = "variance"
        else:
            # Fewer votes first: the round robin of a balanced design.
            priority = floor_priority + 1.0 / (1.0 + votes)
            chosen = _by_votes(votes, floor, batch)
            rule = "fewest_votes"
            notices.append(
                Notice(
                    "fallback",
                    f"Priorities by fewest votes (the uncertainty could not be used: {reason}).",
                )
            )
    return PairPriorities(
        rule=rule,
        first=first,
        second=second,
        votes=votes.astype(np.int64),
        priority=np.asarray(priority, dtype=np.float64),
        below_floor=below,
        floor=floor,
        batch=chosen,
        notices=tuple(notices),
    )


def arena_rule(counts: PairCounts) -> PairPriorities:
    """The Chatbot Arena sampling probabilities: P(pair) ∝ √(Σ̂/n) − √(Σ̂/(n + 1)).

    ``n`` is the pair's votes and Σ̂ the variance of one vote's outcome for the pair (a
    win of the lower-numbered system 1, a tie ½, a loss 0), estimated as p̃(1 − p̃) with
    p̃ = (wins + ties/2 + ½) / (n + 1): the pair's win share with half a vote added to
    each side, since the raw variance is 0 after one vote and would never draw the pair
    again. "Both bad" counts as a tie. Pairs never compared have an infinite first term:
    while any exist they share the probability equally (the rule's limit), and no other
    pair is drawn.

    Parameters
    ----------
    counts : PairCounts
        Votes so far, per pair (ordered or not).

    Returns
    -------
    PairPriorities
        ``rule="arena"``; ``priority`` is the probability of each pair (sums to 1);
        ``floor`` is 1 (unseen pairs first) and ``batch`` is empty.

    Raises
    ------
    ValueError
        With fewer than two systems or negative or non-finite counts.

    References
    ----------
    Chiang et al. (2024), arXiv 2403.04132, section 7, the sampling rule
    P_t(a) ∝ √(Σ̂_{t,a,a} / n_a) − √(Σ̂_{t,a,a} / (n_a + 1)).

    Example
    -------
    >>> from analysis.core.counts import count_pairs
    >>> c = count_pairs(np.array([0, 0]), np.array([1, 2]), np.array([0, 1]), n_systems=3)
    >>> arena_rule(c).priority.round(3).tolist()
    [0.0, 0.0, 1.0]
    """
    _validate_counts(counts)
    m = counts.n_systems
    first, second = _all_pairs(m)
    size = first.size
    votes = _votes_per_pair(counts)
    share = np.zeros(size)
    if counts.first.size:
        where = _pair_index(m, counts.first, counts.second)
        c = counts.counts
        ties = c[:, Outcome.TIE] + c[:, Outcome.BOTH_BAD]
        # Wins of the pair's lower-numbered system, whichever side it was shown on.
        lower_first = counts.first < counts.second
        lower_wins = np.where(lower_first, c[:, Outcome.FIRST], c[:, Outcome.SECOND])
        share = np.bincount(where, lower_wins + ties / 2, minlength=size).astype(np.float64)
    smoothed = (share + 0.5) / (votes + 1.0)
    variance = smoothed * (1 - smoothed)
    unseen = votes == 0
    if unseen.any():
        weight = unseen.astype(np.float64)
    else:
        weight = np.sqrt(variance / votes) - np.sqrt(variance / (votes + 1))
    probability = weight / weight.sum()
    return PairPriorities(
        rule="arena",
        first=first,
        second=second,
        votes=votes.astype(np.int64),
        priority=probability,
        below_floor=unseen,
        floor=1,
        batch=np.zeros(0, dtype=np.int64),
        notices=(),
    )
