"""Recording votes exactly once, corrections, and media that failed to load."""

import uuid
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from studies.exceptions import (
    AlreadyVoted,
    ClientIdReused,
    CorrectionRefused,
    InvalidAnswer,
    NotYourAssignment,
    StudyNotOpen,
)
from studies.models import (
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Rater,
    RaterOutcome,
    StudyStatus,
    Vote,
)
from studies.scheduler import expire, recount, release
from studies.signals import votes_recorded

MAX_RESPONSE_MS = 6 * 60 * 60 * 1000


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    created: bool


def _locked_assignment(*, rater: Rater, token: str) -> tuple[Rater, Assignment]:
    """The rater's row as it is now and the pair, both locked.

    Locks are always taken rater first, then pair, then comparison (as the scheduler
    does), so a rater's concurrent requests queue instead of deadlocking; and the rater
    read under the lock sees an outcome another request has just set.
    """
    locked = Rater.objects.select_for_update(of=("self",)).select_related("study").get(pk=rater.pk)
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("comparison", "left_asset")
        .filter(token=token, rater=locked)
        .first()
    )
    if assignment is None:
        raise NotYourAssignment("No such pair in your session.")
    return locked, assignment


def _is_last_answered(*, rater: Rater, assignment: Assignment) -> bool:
    last = (
        Vote.objects.filter(assignment__rater=rater, is_current=True)
        .exclude(assignment__kind=AssignmentKind.PRACTICE)
        .order_by("-created_at", "-pk")
        .values_list("assignment_id", flat=True)
        .first()
    )
    return last == assignment.pk


def _count_answer(assignment: Assignment) -> None:
    """Move the pair to answered and count the vote on its comparison."""
    was = assignment.status
    assignment.status = AssignmentStatus.ANSWERED
    assignment.save(update_fields=["status"])
    if was == AssignmentStatus.SERVED:
        recount(assignment, votes=1, pending=-1)
    else:
        # Answered after it expired: the pair was given back, now it counts again.
        recount(assignment, votes=1, shown=1)


def _judge_attention(rater: Rater) -> None:
    """End the session with the failed-checks outcome once too many checks are failed."""
    failed = (
        Vote.objects.filter(
            assignment__rater=rater, assignment__kind=AssignmentKind.ATTENTION, is_current=True
        )
        .exclude(answer=F("assignment__expected_answer"))
        .count()
    )
    limit = rater.study.max_failed_attention_checks
    if failed > limit and not rater.outcome:
        rater.outcome = RaterOutcome.FAILED_CHECKS
        rater.completed_at = timezone.now()
        rater.save(update_fields=["outcome", "completed_at"])
        # The pairs it still holds go back to the pool.
        expire(rater.assignments.filter(status=AssignmentStatus.SERVED))


def record_vote(
    *,
    rater: Rater,
    token: str,
    answer: str,
    response_ms: int,
    client_id: uuid.UUID,
    correction: bool = False,
) -> VoteResult:
    """Store a rater's answer once. A retry with the same client id returns the stored
    vote; a correction of the last answered comparison supersedes the old vote, which is
    kept."""
    try:
        return _record_vote(
            rater=rater,
            token=token,
            answer=answer,
            response_ms=response_ms,
            client_id=client_id,
            correction=correction,
        )
    except IntegrityError:
        # Only a race the checks below cannot see: the same client id on two pairs at once.
        raise AlreadyVoted("This answer was already recorded.") from None


@transaction.atomic
def _record_vote(
    *,
    rater: Rater,
    token: str,
    answer: str,
    response_ms: int,
    client_id: uuid.UUID,
    correction: bool,
) -> VoteResult:
    rater, assignment = _locked_assignment(rater=rater, token=token)
    # Checked under the pair's lock, so a retry racing its original waits and finds it.
    stored = Vote.objects.filter(client_id=client_id).select_related("assignment").first()
    if stored is not None:
        # A client id names one answer to one pair: only a retry of that answer gets it back.
        if stored.assignment_id != assignment.pk:
            raise ClientIdReused(
                "That client id already names an answer to another pair; this answer was "
                "not stored. Send it again with a new client id."
            )
        return VoteResult(vote=stored, created=False)
    if rater.outcome:
        raise StudyNotOpen("Your session has ended; no more answers are taken.")
    study = rater.study
    if study.status == StudyStatus.CLOSED:
        raise StudyNotOpen("This study is closed; no more answers are taken.")
    if answer not in study.allowed_answers:
        raise InvalidAnswer(f"{answer!r} is not an answer this study offers.")
    if not 0 <= response_ms <= MAX_RESPONSE_MS:
        raise InvalidAnswer("The response time is out of range.")
    if assignment.status == AssignmentStatus.REPLACED:
        raise AlreadyVoted("This pair was replaced after a loading error; answer the new one.")
    previous = assignment.votes.filter(is_current=True).first()
    if previous is not None and not correction:
        raise AlreadyVoted(
            "This pair already has your answer; use “Change my previous answer” to correct it."
        )
    if correction:
        if previous is None or not _is_last_answered(rater=rater, assignment=assignment):
            raise CorrectionRefused("Only your last answer can be changed.")
        Vote.objects.filter(pk=previous.pk).update(is_current=False)
    vote = Vote.objects.create(
        assignment=assignment,
        answer=answer,
        response_ms=response_ms,
        client_id=client_id,
        supersedes=previous if correction else None,
    )
    if previous is None:
        _count_answer(assignment)
    if assignment.kind == AssignmentKind.ATTENTION:
        _judge_attention(rater)
    transaction.on_commit(partial(votes_recorded.send, sender=Vote, study_id=study.pk))
    return VoteResult(vote=vote, created=True)


@transaction.atomic
def record_load_failure(*, rater: Rater, token: str, detail: str) -> Assignment:
    """The browser could not load a medium of this pair: record it and give the pair back;
    the scheduler serves a replacement."""
    _, assignment = _locked_assignment(rater=rater, token=token)
    if assignment.status != AssignmentStatus.SERVED:
        return assignment
    assignment.status = AssignmentStatus.REPLACED
    assignment.load_error = detail[:300] or "load failure"
    assignment.save(update_fields=["status", "load_error"])
    release(assignment)
    return assignment
