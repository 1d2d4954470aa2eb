"""The typed results of an analysis: frozen dataclasses that every surface renders.

One numeric policy holds for all of them: a number the data cannot give is ``None``
(an open interval bound, a rate with no trials), never NaN or infinity, and Elo is
derived from log-strengths by :func:`to_elo` alone.
"""

import math
from dataclasses import dataclass

from analysis.core.agreement import Agreement, SplitHalf
from analysis.core.bt import DEFAULT_L2, ELO_PER_UNIT

INTERVALS = ("auto", "rater", "sandwich", "vote", "fisher")


def finite(value: float | None, digits: int = 6) -> float | None:
    """A finite float rounded to ``digits``, or None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) + 0.0 if math.isfinite(value) else None  # + 0.0: no -0.0


def to_elo(score: float | None) -> float | None:
    """A log-strength (relative to the scale's base) on the Elo scale: 400/ln 10 per unit,
    the base at 1000."""
    return finite(None if score is None else 1000.0 + ELO_PER_UNIT * score)


@dataclass(frozen=True)
class LeaderboardOptions:
    """How to fit and how to state uncertainty.

    ``interval="auto"`` uses the cluster-robust (sandwich) interval on raters when there
    are at least ``min_effective_raters`` (Kish's effective number; a cluster interval
    needs two clusters at the very least, and the coverage study found the sandwich with
    t(G* − 1) honest from four raters on) and a bootstrap by vote otherwise, and says
    which it used and why. A named cluster method ("rater", "sandwich") falls back the
    same way below the minimum. ``min_votes``: rows of systems with fewer votes are
    marked preliminary.
    """

    ties: str = "davidson"
    both_bad: str = "tie"
    l2: float = DEFAULT_L2
    interval: str = "auto"
    replicates: int = 1000
    level: float = 0.95
    anchor: str | None = None
    seed: int | None = 0
    breakdowns: tuple[str, ...] = ("criterion", "category", "source")
    min_votes: int = 20
    min_effective_raters: float = 2.0


DEFAULT_OPTIONS = LeaderboardOptions()


@dataclass(frozen=True)
class Notice:
    """Something the reader must know to read the numbers right; ``code`` is stable."""

    code: str
    message: str


@dataclass(frozen=True)
class SystemRow:
    """One system. ``score`` is its log-strength centred within its comparison
    component and ``score_low``/``score_high`` its interval; the Elo columns are on the
    display scale (the anchor, when given, at 1000). A ``None`` bound is open: the data
    do not bound the score on that side (``flags`` say why)."""

    system: str
    component: int
    rank: int | None
    rank_low: int | None
    rank_high: int | None
    score: float | None
    score_low: float | None
    score_high: float | None
    elo: float | None
    elo_low: float | None
    elo_high: float | None
    se: float | None
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: float | None
    both_bad_rate: float | None
    both_bad_low: float | None
    both_bad_high: float | None
    preliminary: bool
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Component:
    """Systems linked by comparisons; scores and ranks are comparable only inside one.

    ``separated``: the win graph inside is not strongly connected (someone never lost or
    never won against the rest), so some scores rest on the prior, not the data.
    """

    index: int
    systems: tuple[str, ...]
    votes: int
    raters: int
    effective_raters: float | None
    interval: str
    tie_strength: float | None
    separated: bool
    converged: bool
    replicates_without_mle: int
    non_converged: int


@dataclass(frozen=True)
class Uncertainty:
    """How the intervals were made and what they estimate."""

    requested: str
    method: str
    description: str
    estimand: str
    level: float
    replicates: int | None
    min_effective_raters: float


@dataclass(frozen=True)
class PositionEffect:
    left_share: float | None
    left_share_low: float | None
    left_share_high: float | None
    decisive_votes: int
    effect: float | None
    effect_low: float | None
    effect_high: float | None


@dataclass(frozen=True)
class BreakdownGroup:
    value: str
    votes: int
    fitted: bool
    reason: str | None
    rows: tuple[SystemRow, ...]


@dataclass(frozen=True)
class Breakdown:
    name: str
    groups: tuple[BreakdownGroup, ...]


@dataclass(frozen=True)
class Leaderboard:
    """Everything a leaderboard shows. ``rows`` run component by component (largest
    first), by rank within each. ``win_probability`` and ``significantly_better`` are in
    the rows' order; ``None`` marks a pair that cannot be compared (different
    components, or a separated pair)."""

    options: LeaderboardOptions
    n_votes: int
    n_raters: int
    effective_raters: float | None
    n_systems: int
    uncertainty: Uncertainty
    rows: tuple[SystemRow, ...]
    components: tuple[Component, ...]
    win_probability: tuple[tuple[float | None, ...], ...]
    significantly_better: tuple[tuple[bool | None, ...], ...]
    position: PositionEffect | None
    breakdowns: tuple[Breakdown, ...]
    notices: tuple[Notice, ...]
    # [a][b], in the rows' order: the interval of a's score minus b's at the level, by
    # the component's method; None where it cannot be given (other component, an open
    # interval). Empty in reports stored before it existed.
    difference_low: tuple[tuple[float | None, ...], ...] = ()
    difference_high: tuple[tuple[float | None, ...], ...] = ()

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(row.system for row in self.rows)

    @property
    def tie_strength(self) -> float | None:
        return self.components[0].tie_strength if self.components else None


@dataclass(frozen=True)
class RaterMajority:
    rater: str
    agreed: int
    compared: int


@dataclass(frozen=True)
class AgreementSummary:
    """Agreement between raters who judged the same comparison, and the split-half
    reliability of the scores (None with fewer than four raters)."""

    krippendorff_alpha: Agreement
    fleiss_kappa: Agreement
    percent_agreement: Agreement
    split_half: SplitHalf | None
    raters_vs_majority: tuple[RaterMajority, ...]
