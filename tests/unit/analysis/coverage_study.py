"""A coverage study of the leaderboard's intervals: simulated studies with known truth,
and the share of intervals that contain it.

The vote generator here is written independently of :mod:`analysis.core.simulate` (which
is code under test). Each simulated study has systems with true log-strengths θ and a
panel of raters; rater r has an activity weight (their share of the votes), a shift
ε_r ~ N(0, σ²) of every system's log-strength (fixed across all of r's votes: one rater's
votes are correlated), a position bias b_r (log-odds added to the left side), and may be
a spammer who picks left or right at random. A vote picks its rater by activity, an
unordered pair of systems uniformly and the left side at random, and the left system
wins with probability logistic(θ_l + ε_rl − θ_r − ε_rr + b_r). Votes are decisive: ties
and "both bad" are outside this study.

Two estimands are scored (:func:`pooled_estimand`, :func:`generating_estimand`): the
pooled Bradley–Terry estimand, which is what a pooled fit converges to and what the
leaderboard's intervals claim to cover, and the generating θ, which noise, bias and
spammers pull the pooled fit away from (towards 0).

All access to the code under test goes through :func:`interval_for`.
"""

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from analysis.core.bt import ELO_PER_UNIT
from analysis.core.leaderboard import LeaderboardOptions, leaderboard
from analysis.core.types import BoolArray, FloatArray, IntArray, Outcome
from analysis.core.votes import VoteTable, make_vote_table

NOMINAL = 0.95
ACTIVITY = ("equal", "lognormal", "zipf")
# Gauss–Hermite nodes for the expectation over one rater's shifts: the integrand is a
# smooth logistic, so 80 nodes are exact to machine precision for these variances.
_HERMITE_NODES = 80


# --------------------------------------------------------------------------------------
# The code under test: the one place to change when the leaderboard's API changes.
# --------------------------------------------------------------------------------------


class MethodUnavailable(Exception):
    """The leaderboard does not accept this interval method (yet)."""


class Intervals(NamedTuple):
    """One study's result: centred point scores and interval bounds in log units, in the
    order of ``votes.systems`` (±inf for an open bound), and the method that ran."""

    score: FloatArray
    low: FloatArray
    high: FloatArray
    ran: str


def interval_for(votes: VoteTable, method: str, *, replicates: int, seed: int) -> Intervals:
    """The leaderboard's point scores and ``NOMINAL`` intervals for ``votes`` by ``method``.

    THE ONE PLACE THAT TOUCHES THE CODE UNDER TEST: change only this when the
    leaderboard's API changes. It reads both shapes of the result while the rewrite
    lands: the typed ``Leaderboard`` (``rows`` with ``.system``, ``.score``,
    ``.score_low``, ``.score_high`` in log units, None for an open bound, and
    ``uncertainty.method``) and the older dict (rows under "systems" with ``elo``,
    ``elo_low``, ``elo_high`` = 1000 + ELO_PER_UNIT · score, and "interval" naming the
    method; the API before commit 175fafb, kept so the study runs on either side of it).

    Raises ValueError (from the leaderboard) for a method it does not accept.
    """
    options = LeaderboardOptions(
        interval=method, replicates=replicates, level=NOMINAL, seed=seed, breakdowns=()
    )
    board: Any = leaderboard(votes, options)
    if isinstance(board, dict):  # the older API: Elo, and the method in words
        label = str(board["interval"])  # "rater bootstrap, …" / "Wald, observed information"
        ran = label.split()[0] if "bootstrap" in label else "fisher"

        def log_units(elo: float | None) -> float | None:
            return None if elo is None else (elo - 1000.0) / ELO_PER_UNIT

        rows = [
            (r["system"], log_units(r["elo"]), log_units(r["elo_low"]), log_units(r["elo_high"]))
            for r in board["systems"]
        ]
    else:
        ran = str(board.uncertainty.method)
        rows = [(r.system, r.score, r.score_low, r.score_high) for r in board.rows]
    index = {name: k for k, name in enumerate(votes.systems)}
    m = len(votes.systems)
    score, low, high = np.full(m, np.nan), np.full(m, -np.inf), np.full(m, np.inf)
    for system, point, bottom, top in rows:
        k = index[system]
        score[k] = np.nan if point is None else point
        low[k] = -np.inf if bottom is None else bottom
        high[k] = np.inf if top is None else top
    # Centre here as well: the estimands are centred, whatever the board's anchor.
    shift = np.nanmean(score)
    return Intervals(score - shift, low - shift, high - shift, ran)


# --------------------------------------------------------------------------------------
# Scenarios and the vote generator.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A simulated study design.

    ``activity`` is how votes spread over raters: ``"equal"``, ``"lognormal"`` (each
    rater's weight drawn exp(N(0, activity_spread²)), so a few raters cast most votes)
    or ``"zipf"`` (the k-th rater's weight ∝ k^-activity_spread, ranks shuffled).
    ``rater_noise`` is σ of each rater's shift of every log-strength; each rater's
    position bias is drawn N(bias_mean, bias_sd²); ``spam_share`` of the raters
    (rounded) answer at random.
    Activity is drawn independently of the other traits, so the vote-weighted rater
    population equals the rater population (what :func:`pooled_estimand` assumes).
    """

    name: str
    theta: tuple[float, ...] = tuple(np.linspace(-1.0, 1.0, 6).tolist())
    n_raters: int = 60
    n_votes: int = 3000
    activity: str = "equal"
    activity_spread: float = 0.0
    rater_noise: float = 0.0
    bias_mean: float = 0.0
    bias_sd: float = 0.0
    spam_share: float = 0.0

    def __post_init__(self) -> None:
        if self.activity not in ACTIVITY:
            raise ValueError(f"activity must be one of {ACTIVITY}, not {self.activity!r}")

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(f"s{k}" for k in range(len(self.theta)))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        # The textbook case: every vote independent given θ.
        Scenario("independent"),
        # Zipf(0.8) activity over 80 raters: the top 20% cast 57% of the votes, worth
        # ~27 equally active raters (Kish); each rater also has their own view (σ = 0.5).
        Scenario(
            "unequal activity",
            n_raters=80,
            activity="zipf",
            activity_spread=0.8,
            rater_noise=0.5,
        ),
        # Honest raters favour the left side (b_r ~ N(0.5, 0.4²), sides shown at random)
        # and 8 of the 80 raters click at random; same activity as above.
        Scenario(
            "position + spammers",
            n_raters=80,
            activity="zipf",
            activity_spread=0.8,
            rater_noise=0.3,
            bias_mean=0.5,
            bias_sd=0.4,
            spam_share=0.1,
        ),
        Scenario("few raters", n_raters=4, n_votes=2000, rater_noise=0.5),
        # Benchmark only. Lognormal(0, 1.2²) activity over 60 raters: the effective
        # number of raters varies a lot between studies (mean ~20, 5th percentile ~9).
        Scenario(
            "lognormal activity",
            activity="lognormal",
            activity_spread=1.2,
            rater_noise=0.5,
        ),
        # Benchmark only. Zipf(1) over 60 raters: ~13 raters' worth of information.
        Scenario(
            "very unequal activity",
            activity="zipf",
            activity_spread=1.0,
            rater_noise=0.5,
        ),
    )
}


@dataclass(frozen=True)
class Panel:
    """One study's raters, as drawn: activity weights (summing to 1), per-system shifts
    (raters, systems), position biases and spammer flags."""

    weights: FloatArray
    shift: FloatArray
    bias: FloatArray
    spammer: BoolArray


def draw_panel(scenario: Scenario, rng: np.random.Generator) -> Panel:
    n, m = scenario.n_raters, len(scenario.theta)
    if scenario.activity == "equal":
        weights = np.ones(n)
    elif scenario.activity == "lognormal":
        weights = np.exp(rng.normal(0.0, scenario.activity_spread, n))
    else:  # zipf: ranks are shuffled so that rank carries no other trait
        weights = rng.permutation(
            np.arange(1, n + 1, dtype=np.float64) ** -scenario.activity_spread
        )
    spammer = np.zeros(n, dtype=bool)
    spammer[rng.choice(n, size=round(scenario.spam_share * n), replace=False)] = True
    return Panel(
        weights=weights / weights.sum(),
        shift=rng.normal(0.0, scenario.rater_noise, (n, m)),
        bias=rng.normal(scenario.bias_mean, scenario.bias_sd, n),
        spammer=spammer,
    )


def _logistic(x: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))  # overflow-free


def draw_votes(
    scenario: Scenario, panel: Panel, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(left system, right system, outcome, rater) for every vote, all drawn at once."""
    theta = np.asarray(scenario.theta)
    n = scenario.n_votes
    rater = rng.choice(panel.weights.size, size=n, p=panel.weights)
    pairs = np.array(np.triu_indices(theta.size, k=1)).T  # unordered pairs (i < j)
    pair = pairs[rng.integers(0, pairs.shape[0], n)]
    swap = rng.random(n) < 0.5  # which of the pair is shown on the left
    left = np.where(swap, pair[:, 1], pair[:, 0])
    right = np.where(swap, pair[:, 0], pair[:, 1])
    strength = theta[None, :] + panel.shift  # each rater's own view of the systems
    logit = strength[rater, left] - strength[rater, right] + panel.bias[rater]
    p_left = np.where(panel.spammer[rater], 0.5, _logistic(logit))
    outcome = np.where(rng.random(n) < p_left, Outcome.FIRST, Outcome.SECOND)
    return left, right, outcome.astype(np.int64), rater


def simulate_study(scenario: Scenario, rng: np.random.Generator) -> VoteTable:
    """One simulated study as the VoteTable the leaderboard reads."""
    panel = draw_panel(scenario, rng)
    left, right, outcome, rater = draw_votes(scenario, panel, rng)
    return make_vote_table(
        systems=scenario.systems,
        first=left,
        second=right,
        outcome=outcome,
        position_known=True,
        rater=rater,
        raters=tuple(f"r{k}" for k in range(scenario.n_raters)),
    )


# --------------------------------------------------------------------------------------
# Estimands.
# --------------------------------------------------------------------------------------


def generating_estimand(scenario: Scenario) -> FloatArray:
    """The generating θ, centred (mean 0). Not what a pooled fit estimates when raters
    are noisy, biased or spamming: reported to show how far apart the two are."""
    theta = np.asarray(scenario.theta, dtype=np.float64)
    return theta - theta.mean()


def expected_win_matrix(scenario: Scenario) -> FloatArray:
    """P(i beats j) for a vote drawn at random from the rater population, sides at random:
    averaged over raters by activity (activity is independent of the traits, so this is
    the plain population average), spammers at 0.5.

    For an honest rater with shift ε and bias b, i on the left wins with
    logistic(d + ε_i − ε_j + b) and on the right with logistic(d + ε_i − ε_j − b),
    d = θ_i − θ_j. ε_i − ε_j ± b is N(±μ_b, 2σ² + τ²), a one-dimensional Gauss–Hermite
    expectation per side.
    """
    theta = np.asarray(scenario.theta, dtype=np.float64)
    d = theta[:, None] - theta[None, :]
    spread = math.sqrt(2 * scenario.rater_noise**2 + scenario.bias_sd**2)
    x, w = np.polynomial.hermite.hermgauss(_HERMITE_NODES)
    offsets = math.sqrt(2.0) * spread * x  # N(0, spread²) nodes, weights w / √π

    def average(mean: float) -> FloatArray:
        values = _logistic(d[:, :, None] + mean + offsets[None, None, :])
        return np.asarray(values @ w / math.sqrt(math.pi))

    honest = 0.5 * (average(scenario.bias_mean) + average(-scenario.bias_mean))
    spam = round(scenario.spam_share * scenario.n_raters) / scenario.n_raters
    p = (1 - spam) * honest + spam * 0.5
    np.fill_diagonal(p, np.nan)
    return p


def fit_proportions(p: FloatArray, *, tol: float = 1e-13, max_iter: int = 100) -> FloatArray:
    """Bradley–Terry scores fitted with equal weight on every pair to the win proportions
    ``p[i, j]`` (Newton on the logistic score equations Σ_j p_ij − logistic(s_i − s_j) = 0,
    which it solves to ``tol``), centred to mean 0."""
    m = p.shape[0]
    off = ~np.eye(m, dtype=bool)
    target = np.where(off, p, 0.0).sum(axis=1)
    s = np.zeros(m)
    for _ in range(max_iter):
        q = _logistic(s[:, None] - s[None, :])
        grad = target - np.where(off, q, 0.0).sum(axis=1)
        if np.max(np.abs(grad)) < tol:
            break
        w = np.where(off, q * (1 - q), 0.0)
        hessian = np.diag(w.sum(axis=1)) - w + 1.0 / m  # + 1/m·11ᵀ pins the mean at 0
        s = s + np.linalg.solve(hessian, grad)
        s -= s.mean()
    else:
        raise RuntimeError("the pooled Bradley–Terry fit did not converge")
    return s


@cache
def pooled_estimand(scenario: Scenario) -> FloatArray:
    """The pooled Bradley–Terry estimand: the limit of the leaderboard's pooled fit as the
    number of raters grows, drawn from the same population with the same activity
    distribution (and votes with them; the prior's pull vanishes). Pairs are drawn
    uniformly, so the fit weighs every pair equally, and each pair's win proportion tends
    to the population average :func:`expected_win_matrix`. With rater noise, position
    bias or spammers this is attenuated towards 0 relative to θ (a logistic averaged over
    a spread is flatter); without them it is θ, centred."""
    scores = fit_proportions(expected_win_matrix(scenario))
    scores.setflags(write=False)
    return scores


# --------------------------------------------------------------------------------------
# The harness.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of ``datasets`` simulated studies × their systems.

    ``pooled`` and ``theta`` are the shares of intervals containing each estimand;
    ``width`` is the mean interval width in log units (inf if any bound is open);
    ``zero_width`` the share of intervals of width 0; ``ran`` how many studies each
    method actually ran on (``"auto"`` picks one). ``per_dataset_*`` hold each study's
    share: systems within a study are correlated, so errors are counted in studies."""

    scenario: str
    method: str
    datasets: int
    replicates: int
    pooled: float
    theta: float
    width: float
    zero_width: float
    ran: dict[str, int]
    per_dataset_pooled: FloatArray = field(repr=False)
    per_dataset_theta: FloatArray = field(repr=False)

    @property
    def width_elo(self) -> float:
        return self.width * ELO_PER_UNIT


@contextmanager
def _one_thread() -> Iterator[None]:
    # The solves are tiny: BLAS threads only add contention on a shared 2-core box.
    with threadpool_limits(limits=1):
        yield


@cache
def method_available(method: str) -> bool:
    """Whether the leaderboard accepts ``method``, tried on a small valid study (so that a
    ValueError raised by the data of a real study is not mistaken for this)."""
    probe = replace(SCENARIOS["independent"], n_raters=30, n_votes=600)
    votes = simulate_study(probe, np.random.default_rng(0))
    try:
        with _one_thread():
            interval_for(votes, method, replicates=20, seed=0)
    except ValueError:
        return False
    return True


def study_seeds(seed: int, datasets: int) -> Iterator[tuple[np.random.Generator, int]]:
    """Per study: a generator for its votes and a seed for its intervals. Study k is the
    same for every method, so methods are compared on the same votes."""
    for k in range(datasets):
        yield (
            np.random.default_rng([seed, k]),
            int(np.random.default_rng([seed, k, 1]).integers(2**31)),
        )


def coverage(
    scenario: Scenario | str, method: str, *, datasets: int, replicates: int, seed: int
) -> CoverageResult:
    """Run ``method`` on ``datasets`` simulated studies of ``scenario`` and score its
    intervals against both estimands.

    Raises
    ------
    MethodUnavailable
        If the leaderboard does not accept ``method``.
    """
    if isinstance(scenario, str):
        scenario = SCENARIOS[scenario]
    if not method_available(method):
        raise MethodUnavailable(method)
    pooled, theta = pooled_estimand(scenario), generating_estimand(scenario)
    hit_pooled, hit_theta = np.empty(datasets), np.empty(datasets)
    widths: list[FloatArray] = []
    ran: Counter[str] = Counter()
    with _one_thread():
        for k, (rng, study_seed) in enumerate(study_seeds(seed, datasets)):
            votes = simulate_study(scenario, rng)
            result = interval_for(votes, method, replicates=replicates, seed=study_seed)
            low, high = result.low, result.high
            hit_pooled[k] = np.mean((low <= pooled) & (pooled <= high))
            hit_theta[k] = np.mean((low <= theta) & (theta <= high))
            widths.append(high - low)
            ran[result.ran] += 1
    width = np.concatenate(widths)
    return CoverageResult(
        scenario=scenario.name,
        method=method,
        datasets=datasets,
        replicates=replicates,
        pooled=float(hit_pooled.mean()),
        theta=float(hit_theta.mean()),
        width=float(width.mean()),
        zero_width=float(np.mean(width <= 0)),
        ran=dict(ran),
        per_dataset_pooled=hit_pooled,
        per_dataset_theta=hit_theta,
    )
