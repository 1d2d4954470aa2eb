"""Rater quality flags, each with a documented threshold.

A flag is a reason to look, and with ``exclude_flagged`` a reason to leave a rater's votes
out of an analysis, which then reports how many votes and raters it left out.
"""

import itertools
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


def _cyclic_triads(preferences: dict[tuple[int, int], int]) -> tuple[int, int]:
    """(triads, cyclic) in a tournament given as {(low, high): winner}."""
    systems = sorted({s for pair in preferences for s in pair})
    triads = cyclic = 0
    for a, b, c in itertools.combinations(systems, 3):
        edges = [preferences.get((a, b)), preferences.get((b, c)), preferences.get((a, c))]
        if None in edges:
            continue
        triads += 1
        wins = {a: 0, b: 0, c: 0}
        for winner in edges:
            assert winner is not None
            wins[winner] += 1
        cyclic += all(w == 1 for w in wins.values())
    return triads, cyclic


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
    result = []
    t = thresholds
    for code in codes:
        mine = votes.rater == code
        checks = check_rater == code
        failed = int((~check_passed[checks]).sum())
        decisive = mine & (votes.outcome <= Outcome.SECOND)
        n_decisive = int(decisive.sum())
        left = int((decisive & (votes.outcome == Outcome.FIRST)).sum())
        left_share = left / n_decisive if n_decisive and votes.position_known else math.nan
        times = votes.response_ms[mine]
        times = times[~np.isnan(times)]
        median_ms = float(np.median(times)) if times.size else math.nan
        repeats = changed = 0
        units = votes.unit[mine]
        if (units >= 0).any():
            keys = units * (len(votes.systems) ** 2) + low[mine] * len(votes.systems) + high[mine]
            for key in np.unique(keys[units >= 0]).tolist():
                given = answer[mine][keys == key]
                if given.size >= 2:
                    repeats += 1
                    changed += int(np.unique(given).size > 1)
        preferences: dict[tuple[int, int], int] = {}
        pairs = np.stack([low[decisive], high[decisive], answer[decisive]], axis=1)
        for (a, b), group in itertools.groupby(
            sorted(map(tuple, pairs.tolist())), key=lambda r: r[:2]
        ):
            outcomes = [r[2] for r in group]
            first_wins = outcomes.count(Outcome.FIRST)
            if first_wins * 2 != len(outcomes):
                preferences[(a, b)] = a if first_wins * 2 > len(outcomes) else b
        triads, cyclic = _cyclic_triads(preferences)
        flags = []
        if failed > t.max_failed_checks:
            flags.append("failed_checks")
        if votes.position_known and n_decisive >= t.side_min_votes:
            share = max(left_share, 1 - left_share)
            p = stats.binomtest(left, n_decisive, 0.5).pvalue
            if share >= t.side_share and p < t.side_p:
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
                votes=int(mine.sum()),
                failed_checks=failed,
                checks=int(checks.sum()),
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
