"""Validating and storing a rater's answers: exactly once, corrections kept for audit.

A screen's answers are stored in one INSERT (one vote per criterion on the screen); the
pairs move to answered through studies.assignments.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from studies import assignments, desk_sql
from studies.assignments import Desk
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
    StudyStatus,
    Vote,
)
from studies.signals import after_commit, votes_recorded

MAX_RESPONSE_MS = 6 * 60 * 60 * 1000


@dataclass(frozen=True)
class VoteResult:
    votes: list[Vote]
    created: bool

    @property
    def vote(self) -> Vote:
        return self.votes[0]


def client_ids(client_id: uuid.UUID, screen: Sequence[Assignment]) -> list[uuid.UUID]:
    """The client id names a screen's answers: the first carries it, the others an id
    derived from it, so that a retry finds them all."""
    return [client_id] + [uuid.uuid5(client_id, row.token) for row in screen[1:]]


def _screen(desk: Desk, tokens: Sequence[str]) -> list[Assignment]:
    named = [desk.named(token) for token in tokens]
    if not named or any(row is None for row in named):
        raise NotYourAssignment("No such pair in your session.")
    screen = desk.screen_of(named[0])  # type: ignore[arg-type]
    if sorted(row.token for row in screen) != sorted(tokens):
        raise InvalidAnswer("Answer every question on this screen, once each.")
    return screen


def _is_last_answered(desk: Desk, screen: Sequence[Assignment]) -> bool:
    last = (
        Vote.objects.filter(assignment__rater=desk.rater, is_current=True)
        .exclude(assignment__kind=AssignmentKind.PRACTICE)
        .order_by("-created_at", "-pk")
        .values_list("assignment_id", flat=True)
        .first()
    )
    return last in {row.pk for row in screen}


def store(
    desk: Desk,
    *,
    answers: Sequence[tuple[str, str]],
    response_ms: int,
    client_id: uuid.UUID,
    correction: bool = False,
) -> VoteResult:
    """Store a screen's answers once: ``answers`` holds (pair token, answer) for every
    question on the screen. A retry with the same client id returns the stored votes; a
    correction of the last answered screen supersedes the old votes, which are kept."""
    screen = _screen(desk, [token for token, _ in answers])
    given = dict(answers)
    if desk.client_vote_assignment is not None:
        # A client id names one answer to one pair: only a retry of that answer gets it back.
        if desk.client_vote_assignment not in {row.pk for row in screen}:
            raise ClientIdReused(
                "That client id already names an answer to another pair; this answer was "
                "not stored. Send it again with a new client id."
            )
        stored = Vote.objects.filter(client_id__in=client_ids(client_id, screen))
        return VoteResult(votes=list(stored.order_by("pk")), created=False)
    rater, study = desk.rater, desk.study
    if rater.outcome:
        raise StudyNotOpen("Your session has ended; no more answers are taken.")
    if study.status == StudyStatus.CLOSED:
        raise StudyNotOpen("This study is closed; no more answers are taken.")
    for value in given.values():
        if value not in study.offered_answers:
            raise InvalidAnswer(f"{value!r} is not an answer this study offers.")
    if not 0 <= response_ms <= MAX_RESPONSE_MS:
        raise InvalidAnswer("The response time is out of range.")
    if any(row.status in (AssignmentStatus.REPLACED, AssignmentStatus.FLAGGED) for row in screen):
        raise AlreadyVoted("This pair was replaced; answer the new one.")
    previous = [row.current_vote for row in screen]  # type: ignore[attr-defined]
    if any(previous) and not correction:
        raise AlreadyVoted(
            "This pair already has your answer; use “Change my previous answer” to correct it."
        )
    if correction:
        if desk.at_once:  # decided and superseded under the rater's lock
            raise assignments.NotAtOnce
        if not all(previous) or not _is_last_answered(desk, screen):
            raise CorrectionRefused("Only your last answer can be changed.")
        Vote.objects.filter(pk__in=previous).update(is_current=False)
    made = [
        Vote(
            assignment=row,
            answer=given[row.token],
            response_ms=response_ms,
            client_id=cid,
            supersedes_id=old if correction else None,
        )
        for row, cid, old in zip(screen, client_ids(client_id, screen), previous, strict=True)
    ]
    # A first answer moves the pairs to answered in the same statement; a correction
    # only adds the new votes.
    votes = desk_sql.insert(made) if correction else assignments.answer(desk, screen, made)
    for row in screen:
        row.current_answer = given[row.token]  # type: ignore[attr-defined]
    if screen[0].kind == AssignmentKind.ATTENTION:
        assignments.ended_by_checks(desk)
    # A listener that fails must not turn the stored vote's acknowledgement into a 500,
    # which the browser would read as an answer lost.
    after_commit(votes_recorded.send, sender=Vote, study_id=study.pk)
    return VoteResult(votes=votes, created=True)


def record_vote(
    *,
    rater: Rater,
    token: str = "",
    answer: str = "",
    answers: Sequence[tuple[str, str]] = (),
    response_ms: int,
    client_id: uuid.UUID,
    correction: bool = False,
) -> VoteResult:
    """One screen's answers outside a request (simulated raters, scripts): ``token`` and
    ``answer``, or ``answers`` for a screen of several questions. Its own transaction;
    serves nothing."""
    given = list(answers) or [(token, answer)]

    def once() -> VoteResult:
        with transaction.atomic():
            desk = assignments.open_desk(
                slug=rater.study.slug,
                session_token=rater.session_token,
                client_id=client_id,
                tokens=[named for named, _ in given],
            )
            return store(
                desk,
                answers=given,
                response_ms=response_ms,
                client_id=client_id,
                correction=correction,
            )

    try:
        return assignments.retrying_deadlocks(once)
    except IntegrityError:
        raise AlreadyVoted("This answer was already recorded.") from None
