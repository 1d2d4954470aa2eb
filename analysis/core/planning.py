"""Planning a study's size before launch, and telling during it which adjacent systems
are already told apart.

``plan_votes`` runs the simulator's power analysis (:func:`analysis.core.simulate.
votes_to_separate`) for gaps given in Elo points, then narrows its doubling grid to a
quarter of an octave. ``separation`` reads a fitted leaderboard: for each adjacent pair,
whether its difference is significant and, when not, roughly how many further votes
would make it so.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.core.bt import DEFAULT_L2, ELO_PER_UNIT, fit_bradley_terry
from analysis.core.rates import two_sided_z
from analysis.core.results import Leaderboard, SystemRow
from analysis.core.simulate import PowerAnalysis, PowerPoint, RaterPanel, simulate_votes
from analysis.core.simulate import votes_to_separate as _votes_to_separate
from analysis.core.types import FloatArray

# Simulated studies per vote count: with MAX_VOTES below, a 4–8-system plan answers in
# 0.5–3.5 s on two cores; the power read off has a standard error of 0.04 at 0.8.
SIMULATIONS = 100
# The largest study (votes per criterion) a plan looks at: the time grows with it.
MAX_VOTES = 50_000
# Points tried between the last failing and the first passing doubling (×2^(1/4) apart).
REFINE_STEPS = 3
# An adjacent pair whose gap would need more than this many times the votes so far is
# "not expected to separate at this gap".
MAX_GROWTH = 25.0


def strengths_from_gaps(gaps_elo: Sequence[float]) -> FloatArray:
    """Log-strengths, best first, of systems whose adjacent gaps are ``gaps_elo`` (Elo
    points: 400/ln 10 per unit of log-strength)."""
    steps = np.asarray([0.0, *gaps_elo], dtype=np.float64) / ELO_PER_UNIT
    return -np.cumsum(steps)


def _power_at(
    theta: FloatArray,
    votes: int,
    *,
    votes_per_rater: int,
    tie_strength: float,
    level: float,
    simulations: int,
    rng: np.random.Generator,
) -> PowerPoint:
    """One point of the power curve, simulated as votes_to_separate does."""
    z = two_sided_z(level)
    raters = max(1, math.ceil(votes / votes_per_rater))
    panel = RaterPanel(n_raters=raters, votes_per_rater=votes_per_rater, tie_strength=tie_strength)
    separated = np.zeros((simulations, theta.size - 1), dtype=bool)
    for s in range(simulations):
        sim = simulate_votes(theta, panel, rng=rng)
        fit = fit_bradley_terry(sim.votes.counts(ordered=False), l2=DEFAULT_L2)
        diff = fit.scores[:-1] - fit.scores[1:]
        separated[s] = diff - z * np.diag(fit.difference_se, 1) > 0
    return PowerPoint(
        raters * votes_per_rater,
        float(separated.all(axis=1).mean()),
        tuple(separated.mean(axis=0).round(3).tolist()),
    )


def plan_votes(
    gaps_elo: Sequence[float],
    *,
    votes_per_rater: int,
    target: float = 0.8,
    level: float = 0.95,
    tie_strength: float = 0.0,
    simulations: int = SIMULATIONS,
    max_votes: int = MAX_VOTES,
    rng: np.random.Generator | int | None = 0,
) -> PowerAnalysis:
    """Votes (for one criterion) that separate every adjacent pair at ``level`` in
    ``target`` of simulated studies, for adjacent gaps of ``gaps_elo`` Elo points.

    ``votes_per_rater``: one session's votes for the criterion. Raters agree with one
    another and never slack here, so with disagreement or careless raters the real need
    is higher: the answer is a lower bound. The curve is sorted by votes.

    Raises
    ------
    ValueError
        With no gap, or a gap that is not positive and finite.
    """
    if not gaps_elo or not all(math.isfinite(g) and g > 0 for g in gaps_elo):
        raise ValueError("every gap must be a positive number of Elo points")
    generator = np.random.default_rng(rng)
    theta = strengths_from_gaps(gaps_elo)
    coarse = _votes_to_separate(
        theta,
        votes_per_rater=votes_per_rater,
        tie_strength=tie_strength,
        target=target,
        level=level,
        simulations=simulations,
        max_votes=max_votes,
        rng=generator,
    )
    curve = list(coarse.curve)
    needed = coarse.votes_needed
    if needed is not None and len(curve) >= 2:
        below = curve[-2].votes
        for step in range(1, REFINE_STEPS + 1):
            votes = int(round(below * 2 ** (step / (REFINE_STEPS + 1))))
            point = _power_at(
                theta,
                votes,
                votes_per_rater=votes_per_rater,
                tie_strength=tie_strength,
                level=level,
                simulations=simulations,
                rng=generator,
            )
            if below < point.votes < needed:
                curve.append(point)
                if point.power >= target:
                    needed = point.votes
                    break
    curve.sort(key=lambda p: p.votes)
    return PowerAnalysis(needed, target, level, tuple(curve))


@dataclass(frozen=True)
class PairSeparation:
    """Two systems adjacent in the fitted ranking. ``separated``: the leaderboard's
    interval of their difference excludes 0 (None: it cannot be tested). When not,
    ``further_votes`` is the rough number of further votes in the component before it
    would, if the gap stays as measured (None: not expected at this gap, or no estimate;
    ``reason`` says which)."""

    higher: str
    lower: str
    gap_elo: float
    separated: bool | None
    further_votes: int | None
    reason: str


def _se(row: SystemRow, z: float) -> float | None:
    """A system's standard error: stated, or read off its interval's half-width."""
    if row.se is not None:
        return row.se
    if row.score_low is None or row.score_high is None:
        return None
    return (row.score_high - row.score_low) / (2 * z)


def _difference_variances(rows: Sequence[SystemRow], n_votes: int, z: float) -> FloatArray | None:
    """Approximate variances of each adjacent difference of ``rows`` (one component, by
    rank), or None when no system's interval gives a scale.

    The leaderboard stores each system's interval but not the covariances, and adjacent
    systems close to each other are strongly correlated (both measured against the
    rest), so the two standard errors alone overstate the difference's. Instead: the
    Bradley–Terry information at the fitted scores, each pair's votes taken as the
    product of its systems' shares of the votes, scaled so that the systems' standard
    errors match the stored ones (which carry the rater clustering or the bootstrap).
    """
    k = len(rows)
    scores = np.array([r.score for r in rows], dtype=np.float64)
    share = np.array([r.votes for r in rows], dtype=np.float64)
    if k < 2 or share.sum() == 0:
        return None
    # Pair counts: proportional to the product of the systems' votes, summing to n_votes.
    pair = np.outer(share, share)
    np.fill_diagonal(pair, 0.0)
    pair *= n_votes / max(pair.sum() / 2, 1e-12)
    p = 1 / (1 + np.exp(-(scores[:, None] - scores[None, :])))
    weight = pair * p * (1 - p)
    information = np.diag(weight.sum(axis=1)) - weight
    cov = np.linalg.pinv(information)  # of the centred scores
    model_se = np.sqrt(np.clip(np.diag(cov), 0, None))
    stored = np.array([_se(r, z) or np.nan for r in rows], dtype=np.float64)
    ratio = (stored / model_se) ** 2
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if ratio.size == 0:
        return None
    diag = np.diag(cov)
    adjacent = diag[:-1] + diag[1:] - 2 * np.diag(cov, 1)
    return np.asarray(float(np.median(ratio)) * adjacent)


def separation(board: Leaderboard) -> list[PairSeparation]:
    """Each pair of systems adjacent in the fitted ranking (within one component).

    ``separated`` is the leaderboard's own test. The further votes take the variance of
    the difference from :func:`_difference_variances`, shrinking as 1/n with the
    component's votes n spread as so far: n·(z·se/|gap|)² − n votes in all, the point
    where the interval would just exclude 0 if the gap stays as measured (an even
    chance, not a promise).
    """
    z = two_sided_z(board.options.level)
    at = {r.system: i for i, r in enumerate(board.rows)}
    out = []
    for component in board.components:
        rows = [r for r in board.rows if r.component == component.index and r.score is not None]
        variances = _difference_variances(rows, component.votes, z)
        for i, (high, low) in enumerate(zip(rows[:-1], rows[1:], strict=True)):
            gap = float(high.score - low.score)  # type: ignore[operator]
            better = board.significantly_better[at[high.system]][at[low.system]]
            variance = None if variances is None else float(variances[i])
            out.append(
                PairSeparation(
                    high.system,
                    low.system,
                    gap * ELO_PER_UNIT,
                    better,
                    *_further_votes(better, gap, variance, component.votes, z),
                )
            )
    return out


def _further_votes(
    better: bool | None, gap: float, variance: float | None, n: int, z: float
) -> tuple[int | None, str]:
    """(further votes, in words) for one adjacent pair; see :func:`separation`."""
    if better:
        return None, "separated"
    if better is None or variance is None or not variance > 0:
        return None, "cannot be tested yet (an interval is open)"
    growth = z * z * variance / gap**2 if gap > 0 else math.inf
    if growth > MAX_GROWTH:
        return None, "not expected to separate at this gap"
    further = max(1, math.ceil(n * growth - n))
    return further, f"about {further} more vote{'s' if further != 1 else ''} if the gap holds"


# Serving a criterion stops (a study setting) only at this level: the check runs after
# every batch of votes, and looking again and again at a 95 % interval would stop on a
# chance gap far more often than 5 % of the time; at 99.9 %, fifty looks still stop
# wrongly at most about 5 % of the time (Bonferroni).
STOP_LEVEL = 0.999
# ... and only once every system has this many votes in the criterion.
STOP_MIN_VOTES = 30


@dataclass(frozen=True)
class Settlement:
    """Whether a criterion's ranking is settled enough to stop serving its pairs, and
    why (or why not yet), in words for the study page."""

    settled: bool
    reason: str


def settlement(
    board: Leaderboard, *, level: float = STOP_LEVEL, min_votes: int = STOP_MIN_VOTES
) -> Settlement:
    """Settled: every system ranked in one comparison component with ``min_votes`` votes
    or more, and every adjacent pair apart both by the leaderboard's own test and with
    its gap beyond ``level``'s interval (the difference's variance as
    :func:`separation` approximates it)."""
    if board.n_systems < 2 or len(board.components) != 1:
        return Settlement(False, "the systems are not all compared with one another yet")
    rows = [r for r in board.rows if r.score is not None]
    if len(rows) < board.n_systems:
        return Settlement(False, "a system has no score yet")
    short = [r for r in rows if r.votes < min_votes]
    if short:
        return Settlement(
            False, f"{short[0].system} has {short[0].votes} votes; serving stops only once "
            f"every system has {min_votes}",
        )  # fmt: skip
    at = {r.system: i for i, r in enumerate(board.rows)}
    variances = _difference_variances(
        rows, board.components[0].votes, two_sided_z(board.options.level)
    )
    if variances is None:
        return Settlement(False, "no interval gives a scale yet")
    z = two_sided_z(level)
    for i, (high, low) in enumerate(zip(rows[:-1], rows[1:], strict=True)):
        gap = float(high.score - low.score)  # type: ignore[operator]
        apart = board.significantly_better[at[high.system]][at[low.system]]
        if not apart or not gap > z * math.sqrt(max(float(variances[i]), 0.0)):
            return Settlement(
                False, f"{high.system} and {low.system} are not yet apart at {level:.1%}"
            )
    return Settlement(True, f"every adjacent pair of systems is apart at {level:.1%}")
