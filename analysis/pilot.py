"""What a pilot showed, for the decision after it: keep its votes and launch, or discard
them (and change the study, or pilot again). Computed from the pilot raters' votes on
each view of the study page."""

import statistics
from dataclasses import dataclass

import numpy as np

from analysis.core.agreement import Agreement, krippendorff_alpha, percent_agreement
from analysis.core.leaderboard import judgments
from analysis.core.types import Outcome
from analysis.loaders import study_votes
from analysis.raters_view import rater_rows
from studies.models import Assignment, AssignmentStatus, Flag, RaterOutcome, Study, StudyStatus


def _n(count: int, word: str, plural: str = "") -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


@dataclass(frozen=True)
class PilotSummary:
    state: str  # running | kept | discarded
    cap: int
    seated: int  # raters who consented
    judging: int  # of those, still judging
    outcomes: dict[str, int]  # outcome label -> raters
    votes: int
    median_s: float | None  # per comparison
    session_minutes: float | None  # median, consent to the end, of completed sessions
    left_share: float | None  # of decisive answers: the left side's share
    alpha: Agreement
    percent: Agreement
    checks_passed: int
    checks: int
    flagged: tuple[tuple[int, tuple[str, ...]], ...]  # (rater id, flags)
    media_flags: int  # pairs the pilot's raters reported
    media_flags_open: int  # of those, awaiting a decision
    discarded_answers: int  # answered pairs set aside by a discard

    @property
    def title(self) -> str:
        return {
            "running": "Pilot: running",
            "kept": "Pilot: its votes were kept",
            "discarded": "Pilot: its votes were discarded",
        }[self.state]

    def lines(self) -> list[str]:
        """The summary in sentences, for the study page."""
        finished = ", ".join(f"{n} {label.lower()}" for label, n in self.outcomes.items() if n)
        out = [
            f"{_n(self.seated, 'rater')} of {self.cap} took part; "
            f"{self.seated - self.judging} done judging"
            + (f" ({finished})" if finished else "")
            + (f", {self.judging} still judging" if self.judging else "")
            + "."
        ]
        if self.state == "discarded":
            return [
                *out,
                f"Its {_n(self.discarded_answers, 'answer')} were discarded: kept for audit "
                "(exports mark them), counted in no analysis and no progress.",
            ]
        if not self.votes:
            return [*out, "No comparison answered yet."]
        timing = f"Median time per comparison {self.median_s:.1f} s"
        if self.session_minutes is not None:
            timing += f"; median session {self.session_minutes:.1f} min"
        out.append(f"{_n(self.votes, 'comparison vote')}. {timing}.")
        if self.alpha.defined:
            out.append(
                f"Agreement: Krippendorff's alpha {self.alpha.value:.2f} over "
                f"{_n(self.alpha.n_units, 'comparison')} judged by two raters or more "
                f"(raw agreement {self.percent.value:.0%})."
            )
        else:
            out.append(f"Agreement cannot be given yet: {self.alpha.reason}.")
        if self.left_share is not None:
            out.append(f"Left chosen in {self.left_share:.0%} of decisive answers.")
        if self.checks:
            out.append(f"Attention checks: {self.checks_passed} of {self.checks} passed.")
        if self.flagged:
            named = "; ".join(f"rater {pk} ({', '.join(f)})" for pk, f in self.flagged[:10])
            out.append(f"{_n(len(self.flagged), 'rater')} flagged: {named}.")
        else:
            out.append("No rater flagged by the quality checks.")
        if self.media_flags:
            out.append(
                f"{_n(self.media_flags, 'pair')} reported by raters, "
                f"{self.media_flags_open} awaiting review."
            )
        return out


def _decisive_left_share(answers: np.ndarray) -> float | None:
    left = int(np.sum(answers == Outcome.FIRST))
    right = int(np.sum(answers == Outcome.SECOND))
    return left / (left + right) if left + right else None


def pilot_summary(*, study: Study) -> PilotSummary | None:
    """The latest pilot's summary; None if the study was never piloted."""
    if study.pilot_started_at is None:
        return None
    if study.status == StudyStatus.PILOT:
        state = "running"
    elif study.status == StudyStatus.READY:
        state = "discarded"
    else:
        state = "kept"
    pilot = list(study.pilot_rater_set().filter(consented_at__isnull=False))
    ids = {rater.pk for rater in pilot}
    loaded = study_votes(study=study)
    codes = [code for code, pk in enumerate(loaded.rater_ids) if pk in ids]
    table = loaded.table.select(np.isin(loaded.table.rater, codes))
    unit, rater, value = judgments(table)
    rows = [row for row in rater_rows(study=study, loaded=loaded) if row.rater.pk in ids]
    sessions = [
        (r.completed_at - r.consented_at).total_seconds() / 60
        for r in pilot
        if r.outcome == RaterOutcome.COMPLETED and r.completed_at and r.consented_at
    ]
    flags = Flag.objects.filter(assignment__rater__in=pilot)
    return PilotSummary(
        state=state,
        cap=study.pilot_raters,
        seated=len(pilot),
        judging=sum(not r.outcome and r.judging_done_at is None for r in pilot),
        outcomes={
            label: sum(r.outcome == value for r in pilot)
            for value, label in RaterOutcome.choices
            if value != RaterOutcome.NO_CONSENT
        },
        votes=table.n_votes,
        median_s=float(np.median(table.response_ms)) / 1000 if table.n_votes else None,
        session_minutes=statistics.median(sessions) if sessions else None,
        left_share=_decisive_left_share(table.outcome),
        alpha=krippendorff_alpha(unit, rater, value, level="nominal"),
        percent=percent_agreement(unit, rater, value),
        checks_passed=sum(row.checks_passed for row in rows),
        checks=sum(row.checks for row in rows),
        flagged=tuple((row.rater.pk, row.flags) for row in rows if row.flags),
        media_flags=flags.count(),
        media_flags_open=flags.filter(decision="").count(),
        discarded_answers=Assignment.objects.filter(
            rater__in=pilot, status=AssignmentStatus.DISCARDED
        ).count(),
    )
