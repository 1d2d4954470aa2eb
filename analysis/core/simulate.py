"""A rater simulator with known truth, for tests and for planning a study.

Systems have known log-strengths; each simulated rater perturbs them by their own noise
(so one rater's votes are correlated), may favour the left side, and a share of raters
are spammers who answer quickly and at random or always on one side. Votes follow the
Davidson model of :mod:`analysis.core.bt`.
"""

import math
from dataclasses import dataclass

import numpy as np

from analysis.core.bt import DEFAULT_L2, fit_bradley_terry
from analysis.core.rates import two_sided_z
from analysis.core.types import BoolArray, FloatArray, IntArray, Outcome
from analysis.core.votes import Label, VoteTable, make_vote_table, pair_units


@dataclass(frozen=True)
class RaterPanel:
    """Who votes and how.

    ``noise`` is the standard deviation of each rater's own shift of every log-strength;
    ``position_bias`` the log-odds added to the left system by honest raters;
    ``spammer_share`` the share of raters who answer at random (half of them always
    pick the left side); ``tie_strength`` Davidson's ν; ``both_bad_share`` the share of
    ties given as "both bad"; ``check_rate`` attention checks per vote (honest raters
    pass 98 %, spammers 50 %).
    """

    n_raters: int
    votes_per_rater: int
    noise: float = 0.0
    position_bias: float = 0.0
    spammer_share: float = 0.0
    tie_strength: float = 0.0
    both_bad_share: float = 0.0
    check_rate: float = 0.0
    n_prompts: int = 50


@dataclass(frozen=True)
class Simulation:
    votes: VoteTable
    truth: FloatArray
    spammer: BoolArray
    check_rater: IntArray
    check_passed: BoolArray


def davidson_outcome(difference: FloatArray, tie_strength: float, u: FloatArray) -> IntArray:
    """Outcome codes drawn by uniforms ``u`` from Davidson's model, where ``difference`` is
    the first system's log-strength minus the second's (position advantage included)."""
    up, down = np.exp(np.divide(difference, 2)), np.exp(np.divide(difference, -2))
    total = up + down + tie_strength
    return np.where(
        u < up / total,
        Outcome.FIRST,
        np.where(u < (up + down) / total, Outcome.SECOND, Outcome.TIE),
    ).astype(np.int64)


def simulate_votes(
    strengths: FloatArray, panel: RaterPanel, *, rng: np.random.Generator | int | None = None
) -> Simulation:
    """Simulate a study's votes.

    Parameters
    ----------
    strengths : ndarray of float, shape (n_systems,)
        True log-strengths (they are centred in the returned truth).
    panel : RaterPanel
        The raters and their habits.
    rng : numpy.random.Generator, int or None
        Source of randomness.

    Returns
    -------
    Simulation

    Raises
    ------
    ValueError
        With fewer than two systems, or a panel of no votes.

    Example
    -------
    >>> sim = simulate_votes(np.array([0.0, 1.0]), RaterPanel(n_raters=3, votes_per_rater=4), rng=0)
    >>> sim.votes.n_votes
    12
    """
    generator = np.random.default_rng(rng)
    theta = np.asarray(strengths, dtype=np.float64)
    m = theta.size
    if m < 2:
        raise ValueError("simulate_votes needs at least two systems")
    if panel.n_raters < 1 or panel.votes_per_rater < 1:
        raise ValueError("the panel must cast at least one vote")
    n = panel.n_raters * panel.votes_per_rater
    rater = np.repeat(np.arange(panel.n_raters), panel.votes_per_rater)
    spammer = generator.random(panel.n_raters) < panel.spammer_share
    always_left = spammer & (generator.random(panel.n_raters) < 0.5)
    shift = (
        generator.normal(0.0, panel.noise, size=(panel.n_raters, m))
        if panel.noise
        else np.zeros((panel.n_raters, m))
    )
    left = generator.integers(0, m, size=n)
    right = (left + generator.integers(1, m, size=n)) % m
    seen = theta[None, :] + shift
    x = seen[rater, left] + panel.position_bias
    y = seen[rater, right]
    nu = panel.tie_strength * np.exp(-panel.position_bias / 2)
    outcome = davidson_outcome(x - y, nu, generator.random(n))
    both_bad = (outcome == Outcome.TIE) & (generator.random(n) < panel.both_bad_share)
    outcome = np.where(both_bad, Outcome.BOTH_BAD, outcome)
    noisy = spammer[rater]
    random_side = np.where(generator.random(n) < 0.5, Outcome.FIRST, Outcome.SECOND)
    outcome = np.where(noisy, np.where(always_left[rater], Outcome.FIRST, random_side), outcome)
    response = np.where(
        noisy,
        generator.lognormal(math.log(450), 0.3, n),
        generator.lognormal(math.log(2500), 0.4, n),
    )
    prompt = generator.integers(0, panel.n_prompts, size=n)
    n_checks = np.full(panel.n_raters, int(round(panel.votes_per_rater * panel.check_rate)))
    check_rater = np.repeat(np.arange(panel.n_raters), n_checks)
    pass_rate = np.where(spammer[check_rater], 0.5, 0.98)
    check_passed = generator.random(check_rater.size) < pass_rate
    sources = ("honest", "spammer")
    votes = make_vote_table(
        systems=tuple(f"system-{k + 1}" for k in range(m)),
        first=left,
        second=right,
        outcome=outcome,
        position_known=True,
        rater=rater,
        raters=tuple(f"rater-{k + 1}" for k in range(panel.n_raters)),
        unit=pair_units(prompt, left, right, m),
        response_ms=response,
        labels={"source": Label(spammer[rater].astype(np.int64), sources)},
    )
    return Simulation(votes, theta - theta.mean(), spammer, check_rater, check_passed)


@dataclass(frozen=True)
class PowerPoint:
    votes: int
    power: float  # share of simulated studies separating every adjacent pair
    per_pair: tuple[float, ...]


@dataclass(frozen=True)
class PowerAnalysis:
    """The smallest number of votes (``None`` if not within the grid) at which adjacent
    systems are all separated at ``level`` in at least ``target`` of simulated studies."""

    votes_needed: int | None
    target: float
    level: float
    curve: tuple[PowerPoint, ...]


def votes_to_separate(
    strengths: FloatArray,
    *,
    votes_per_rater: int = 20,
    noise: float = 0.0,
    tie_strength: float = 0.0,
    target: float = 0.8,
    level: float = 0.95,
    simulations: int = 100,
    max_votes: int = 1_000_000,
    rng: np.random.Generator | int | None = None,
) -> PowerAnalysis:
    """How many votes until adjacent systems are separated at ``level``.

    For doubling vote counts, simulate ``simulations`` studies, fit Bradley–Terry, and
    call a pair of adjacent systems (in the true order) separated when the Wald interval
    of their difference, from the observed information, excludes zero on the right side.
    With rater noise those intervals are too narrow (votes of a rater are correlated), so
    the answer is then a lower bound.

    Returns
    -------
    PowerAnalysis
    """
    generator = np.random.default_rng(rng)
    theta = np.sort(np.asarray(strengths, dtype=np.float64))[::-1]
    m = theta.size
    z = two_sided_z(level)
    curve = []
    needed = None
    votes = max(10 * m, votes_per_rater)
    while votes <= max_votes:
        raters = max(1, math.ceil(votes / votes_per_rater))
        panel = RaterPanel(
            n_raters=raters, votes_per_rater=votes_per_rater, noise=noise, tie_strength=tie_strength
        )
        separated = np.zeros((simulations, m - 1), dtype=bool)
        for s in range(simulations):
            sim = simulate_votes(theta, panel, rng=generator)
            fit = fit_bradley_terry(sim.votes.counts(ordered=False), l2=DEFAULT_L2)
            diff = fit.scores[:-1] - fit.scores[1:]
            separated[s] = diff - z * np.diag(fit.difference_se, 1) > 0
        point = PowerPoint(
            raters * votes_per_rater,
            float(separated.all(axis=1).mean()),
            tuple(separated.mean(axis=0).round(3).tolist()),
        )
        curve.append(point)
        if point.power >= target:
            needed = point.votes
            break
        votes *= 2
    return PowerAnalysis(needed, target, level, tuple(curve))
