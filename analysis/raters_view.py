"""The rater dashboard of a study: each rater's progress, speed, agreement with the
others' majority, attention checks and quality flags, and for Prolific the participants
to approve, review or reject. Computed from the votes on each view (no model is fitted)."""

from dataclasses import dataclass

import numpy as np

from analysis.core.agreement import majority_agreement
from analysis.core.leaderboard import judgments
from analysis.core.quality import rater_quality
from analysis.loaders import StudyVotes, study_votes
from studies.models import Flag, Rater, RaterOutcome, RaterSource, Study

# What Prolific is told, per participant: approve a completed session with no quality
# flag; review a partial one or one the checks flagged; reject only a failed-checks end.
APPROVE, REVIEW, REJECT = "approve", "review", "reject"


@dataclass(frozen=True)
class RaterRow:
    rater: Rater
    votes: int
    median_ms: float | None
    agreed: int
    compared: int
    checks_passed: int
    checks: int
    flags: tuple[str, ...]
    decision: str  # approve | review | reject | "" (not done, or not from Prolific)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


def _decision(rater: Rater, flags: tuple[str, ...]) -> str:
    if rater.source != RaterSource.PROLIFIC or not rater.outcome:
        return ""
    if rater.outcome == RaterOutcome.FAILED_CHECKS:
        return REJECT
    if rater.outcome == RaterOutcome.COMPLETED and not flags:
        return APPROVE
    return REVIEW


def rater_rows(*, study: Study, loaded: StudyVotes | None = None) -> list[RaterRow]:
    """Every rater of the study; ``loaded``: the study's votes, if the caller has them."""
    loaded = loaded or study_votes(study=study)
    table = loaded.table
    quality = {q.rater: q for q in rater_quality(
        table, check_rater=loaded.check_rater, check_passed=loaded.check_passed
    )}  # fmt: skip
    majority = {r.rater: r for r in majority_agreement(*judgments(table))}
    code_of = {pk: code for code, pk in enumerate(loaded.rater_ids)}
    rows = []
    for rater in Rater.objects.filter(study=study).order_by("pk"):
        code = code_of.get(rater.pk)
        q = quality.get(code) if code is not None else None
        m = majority.get(code) if code is not None else None
        flags = q.flags if q else ()
        rows.append(
            RaterRow(
                rater=rater,
                votes=q.votes if q else 0,
                median_ms=None if q is None or np.isnan(q.median_ms) else q.median_ms,
                agreed=m.agreed if m else 0,
                compared=m.compared if m else 0,
                checks_passed=(q.checks - q.failed_checks) if q else 0,
                checks=q.checks if q else 0,
                flags=flags,
                decision=_decision(rater, flags),
            )
        )
    return rows


def flags_awaiting_review(*, study: Study) -> int:
    return Flag.objects.filter(assignment__study=study, decision="").count()
