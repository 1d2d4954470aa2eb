"""Rater quality flags, each with a documented threshold.

A flag is a reason to look, and with ``exclude_flagged`` a reason to leave a rater's votes
out of an analysis, which then reports how many votes and raters it left out.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis.core.types import BoolArray, IntArray, Outcome
from analysis.core.votes import VoteTable, canonical_answer


@dataclass(frozen=True)
class QualityThresholds:
    """When a rater is flagged.

    - ``failed_checks``: more failed attention checks than ``max_failed_checks``.
    - ``straight_lining``: among at least ``side_min_votes`` decisive votes, one side
      (left or right) chosen at least ``side_share`` of the time, and a two-sided binomial
      test against 1/2 below ``side_p``.
    - ``too_fast``: median response time below ``fast_ms`` over at least
      ``fast_min_votes`` votes (faster than one can look at two images).
    - ``inconsistent``: on repeated judgments of the same unit, a changed answer in at
      least ``repeat_share`` of at least ``repeat_min`` repeated units. Close pairs are
      answered differently now and then by anyone, so this needs many repeats (a study
      that repeats pairs on purpose, or an imported log).
    - ``intransitive``: of at least ``triad_min`` triads of systems the rater ranked
      pairwise, at least ``triad_share`` cyclic. A rater answering at random is cyclic in
      a quarter of triads on average, an attentive one rarely, but a few votes on close
      systems make cycles by chance: weak evidence on its own.
    """

    max_failed_checks: int = 1
    side_min_votes: int = 10
    side_share: float = 0.85
    side_p: float = 0.001
    fast_ms: float = 700.0
    fast_min_votes: int = 5
    repeat_min: int = 5
    repeat_share: float = 0.6
    triad_min: int = 10
    triad_share: float = 0.4


@dataclass(frozen=True)
class RaterQuality:
    rater: int
    votes: int
    failed_checks: int
    checks: int
    left_share: float
    median_ms: float
    repeats: int
    changed: int
    triads: int
    cyclic: int
    flags: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "rater": self.rater,
            "votes": self.votes,
            "failed_checks": self.failed_checks,
            "checks": self.checks,
            "left_share": clean(self.left_share),
            "median_ms": clean(self.median_ms),
            "repeats": self.repeats,
            "changed": self.changed,
            "triads": self.triads,
            "cyclic": self.cyclic,
            "flags": list(self.flags),
        }


def _cyclic_triads(low: IntArray, high: IntArray, low_won: BoolArray) -> tuple[int, int]:
    """(triads, cyclic) of one rater's preferences, from their decisive votes as (lower
    system, higher system, whether the lower won). A pair's preference is the side that
    won most of its votes (a split pair has none); a triad counts when all three of its
    pairs have one, and is cyclic when each system wins once."""
    if low.size == 0:
        return 0, 0
    _, code = np.unique(np.concatenate([low, high]), return_inverse=True)
    code = code.reshape(-1)
    n = int(code.max()) + 1
    pair = code[: low.size] * n + code[low.size :]
    total = np.bincount(pair, minlength=n * n).reshape(n, n)
    wins = np.bincount(pair, weights=low_won, minlength=n * n).reshape(n, n)
    # beats[x, y]: x is preferred to y (pairs sit above the diagonal, lower system first).
    beats = ((2 * wins > total) | (2 * wins < total).T).astype(np.float64)
    decided = beats + beats.T
    # Triangles of decided pairs: tr(D³)/6; directed 3-cycles, each of which needs all
    # three pairs decided: tr(B³)/3. No enumeration of the n-choose-3 triples.
    triads = np.trace(decided @ decided @ decided) / 6
    cyclic = np.trace(beats @ beats @ beats) / 3
    return int(round(triads)), int(round(cyclic))


def _groups(codes: IntArray) -> dict[int, IntArray]:
    """Each code's positions in ``codes``, in their order there."""
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if codes.size else ()
    bounds = [*(int(start) for start in starts), int(codes.size)]
    return {
        int(ordered[start]): order[start:end]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    }


def _repeats(keys: IntArray, answers: IntArray) -> tuple[int, int]:
    """(units judged more than once, of those the ones answered differently)."""
    if keys.size == 0:
        return 0, 0
    order = np.lexsort((answers, keys))
    keys, answers = keys[order], answers[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], keys.size] - 1
    repeated = ends > starts
    # Sorted by answer within a unit: it changed if its first and last answers differ.
    return int(repeated.sum()), int((repeated & (answers[starts] != answers[ends])).sum())


def rater_quality(
    votes: VoteTable,
    *,
    check_rater: IntArray | None = None,
    check_passed: BoolArray | None = None,
    thresholds: QualityThresholds = QualityThresholds(),
) -> list[RaterQuality]:
    """Quality measures and flags for every rater with votes or attention checks.

    Parameters
    ----------
    votes : VoteTable
        The raters' comparison votes.
    check_rater, check_passed : ndarray, optional
        One entry per attention check: who answered it and whether correctly.
    thresholds : QualityThresholds
        When each flag is raised.

    Returns
    -------
    list of RaterQuality, by rater code.
    """
    check_rater = np.zeros(0, dtype=np.int64) if check_rater is None else np.asarray(check_rater)
    check_passed = np.zeros(0, dtype=bool) if check_passed is None else np.asarray(check_passed)
    low, high, answer = canonical_answer(votes)
    codes = sorted(
        set(np.unique(votes.rater[votes.rater >= 0]).tolist()) | set(check_rater.tolist())
    )
    # Each rater's votes and checks as index slices, grouped once: a pass over every vote
    # per rater costs raters × votes (2,000 raters × 1M votes: minutes).
    own_votes = _groups(votes.rater)
    own_checks = _groups(check_rater)
    none = np.zeros(0, dtype=np.int64)
    n_systems = len(votes.systems)
    result = []
    t = thresholds
    for code in codes:
        mine = own_votes.get(code, none)
        checks = own_checks.get(code, none)
        failed = int((~check_passed[checks]).sum())
        outcome = votes.outcome[mine]
        is_decisive = outcome <= Outcome.SECOND
        decisive = mine[is_decisive]
        n_decisive = int(decisive.size)
        left = int((outcome == Outcome.FIRST).sum())
        left_share = left / n_decisive if n_decisive and votes.position_known else math.nan
        times = votes.response_ms[mine]
        times = times[~np.isnan(times)]
        median_ms = float(np.median(times)) if times.size else math.nan
        units = votes.unit[mine]
        judged = units >= 0
        keys = (units * n_systems + low[mine]) * n_systems + high[mine]
        repeats, changed = _repeats(keys[judged], answer[mine][judged])
        triads, cyclic = _cyclic_triads(
            low[decisive], high[decisive], answer[decisive] == Outcome.FIRST
        )
        flags = []
        if failed > t.max_failed_checks:
            flags.append("failed_checks")
        if votes.position_known and n_decisive >= t.side_min_votes:
            share = max(left_share, 1 - left_share)
            # The test only where the share already qualifies: it is the costly part.
            if share >= t.side_share and stats.binomtest(left, n_decisive, 0.5).pvalue < t.side_p:
                flags.append("straight_lining")
        if times.size >= t.fast_min_votes and median_ms < t.fast_ms:
            flags.append("too_fast")
        if repeats >= t.repeat_min and changed / repeats >= t.repeat_share:
            flags.append("inconsistent")
        if triads >= t.triad_min and cyclic / triads >= t.triad_share:
            flags.append("intransitive")
        result.append(
            RaterQuality(
                rater=int(code),
                votes=int(mine.size),
                failed_checks=failed,
                checks=int(checks.size),
                left_share=left_share,
                median_ms=median_ms,
                repeats=repeats,
                changed=changed,
                triads=triads,
                cyclic=cyclic,
                flags=tuple(flags),
            )
        )
    return result


@dataclass(frozen=True)
class Exclusion:
    votes: VoteTable
    excluded_raters: int
    excluded_votes: int


def exclude_flagged(
    votes: VoteTable, quality: list[RaterQuality], *, flags: tuple[str, ...] | None = None
) -> Exclusion:
    """Leave out the votes of raters with any of ``flags`` (all flags by default)."""
    flagged = [q.rater for q in quality if q.flags and (flags is None or set(q.flags) & set(flags))]
    drop = np.isin(votes.rater, flagged)
    return Exclusion(votes.select(~drop), len(flagged), int(drop.sum()))
