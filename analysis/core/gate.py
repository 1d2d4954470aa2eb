"""The release gate: does a candidate system stand against a baseline, by a study's own
intervals? One decision for the API, the report and ``verdict gate``.

Three questions, each on the interval of candidate − baseline that the leaderboard
states (its level, its method: bootstrap or cluster-robust):
- ``not_worse`` (the default): pass unless the candidate is significantly worse (the
  whole interval below 0);
- ``non_inferior`` (a margin in Elo): pass when the whole interval is above −margin,
  fail when it is all below −margin;
- ``better``: pass when the whole interval is above 0, fail when it is all below 0.
Otherwise the data cannot decide yet (exit code 2), with the rough number of further
votes before they would if the difference holds: the interval's half-width shrinking
as 1/√votes (an even chance, not a promise), as for the stopping signal.
"""

import math
from dataclasses import dataclass

from analysis.core.bt import ELO_PER_UNIT
from analysis.core.results import Leaderboard

PASS, FAIL, UNDECIDED = 0, 1, 2
VERDICTS = {PASS: "pass", FAIL: "fail", UNDECIDED: "undecided"}
MODES = ("not_worse", "non_inferior", "better")
# Beyond this many times the votes so far, "further votes" is not worth stating.
MAX_GROWTH = 25.0


@dataclass(frozen=True)
class GateDecision:
    """``code``: 0 pass, 1 fail, 2 undecided (the CLI's exit code). Elo figures are the
    candidate's minus the baseline's."""

    code: int
    verdict: str  # "pass", "fail" or "undecided"
    mode: str
    candidate: str
    baseline: str
    margin_elo: float
    difference_elo: float | None
    low_elo: float | None
    high_elo: float | None
    level: float
    votes: int
    further_votes: int | None
    reason: str


def _further(estimate: float, half: float, threshold: float, n: int) -> int | None:
    """Votes to add before the interval clears ``threshold`` on the estimate's side."""
    distance = abs(estimate - threshold)
    if distance == 0 or half <= 0:
        return None
    growth = (half / distance) ** 2
    if growth > MAX_GROWTH:
        return None
    return max(1, math.ceil(n * growth - n))


def gate(
    board: Leaderboard,
    *,
    candidate: str,
    baseline: str,
    mode: str = "not_worse",
    margin_elo: float = 0.0,
) -> GateDecision:
    """Decide ``candidate`` against ``baseline`` on a leaderboard (see the module)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if margin_elo < 0 or not math.isfinite(margin_elo):
        raise ValueError("the margin is a non-negative number of Elo points")
    if mode != "non_inferior":
        margin_elo = 0.0
    names = [row.system for row in board.rows]
    level = board.options.level

    def decided(
        code: int,
        reason: str,
        difference: float | None = None,
        low: float | None = None,
        high: float | None = None,
        further: int | None = None,
    ) -> GateDecision:
        return GateDecision(
            code=code,
            verdict=VERDICTS[code],
            mode=mode,
            candidate=candidate,
            baseline=baseline,
            margin_elo=margin_elo,
            difference_elo=difference,
            low_elo=low,
            high_elo=high,
            level=level,
            votes=board.n_votes,
            further_votes=further,
            reason=reason,
        )

    for name in (candidate, baseline):
        if name not in names:
            raise ValueError(f"no system {name!r} in this leaderboard ({', '.join(names)})")
    if candidate == baseline:
        raise ValueError("the candidate and the baseline are the same system")
    a, b = names.index(candidate), names.index(baseline)
    row_a, row_b = board.rows[a], board.rows[b]
    if row_a.component != row_b.component or row_a.score is None or row_b.score is None:
        return decided(UNDECIDED, f"{candidate} and {baseline} have not been compared yet")
    estimate = (row_a.score - row_b.score) * ELO_PER_UNIT
    low = board.difference_low[a][b] if board.difference_low else None
    high = board.difference_high[a][b] if board.difference_high else None
    if low is None or high is None:
        return decided(
            UNDECIDED,
            "the interval of the difference cannot be given yet (a system never lost or "
            "never won, or the report predates difference intervals)",
            estimate,
        )
    low_elo, high_elo = low * ELO_PER_UNIT, high * ELO_PER_UNIT
    figures = (estimate, low_elo, high_elo)
    half = (high_elo - low_elo) / 2
    at = f"{level:.0%}"
    few = board.effective_raters is not None and (
        board.effective_raters < board.options.min_effective_raters
    )
    # The leaderboard fell back to votes as if independent: say so with every answer.
    caveat = " (by vote, from fewer than 2 effective raters: too narrow if raters differ)"
    span = f"[{low_elo:+.0f}, {high_elo:+.0f}] Elo at {at}{caveat if few else ''}"
    if mode == "not_worse":
        if high_elo < 0:
            return decided(FAIL, f"{candidate} is significantly worse: {span}", *figures)
        return decided(PASS, f"{candidate} is not significantly worse: {span}", *figures)
    threshold = -margin_elo if mode == "non_inferior" else 0.0
    what = f"−{margin_elo:.0f} Elo" if mode == "non_inferior" else "0"
    if low_elo > threshold:
        return decided(PASS, f"the whole interval is above {what}: {span}", *figures)
    if high_elo < threshold:
        return decided(FAIL, f"the whole interval is below {what}: {span}", *figures)
    further = _further(estimate, half, threshold, board.n_votes)
    tail = (
        f"; about {further} more vote{'s' if further != 1 else ''} if the difference holds"
        if further is not None
        else "; not expected to decide at this difference"
    )
    return decided(UNDECIDED, f"the interval {span} straddles {what}{tail}", *figures, further)
