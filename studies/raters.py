"""A rater's way through a study: arrival, consent, instructions, judging, questionnaire,
completion code."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from studies.assignments import expire
from studies.exceptions import StudyFull
from studies.models import AssignmentStatus, Rater, RaterOutcome, RaterSource, Study, StudyStatus

# Prolific participant, study and session ids are 24 hex digits. Anything else in
# PROLIFIC_PID (the unreplaced {{%PROLIFIC_PID%}} placeholder, a preview or a test id)
# is a preview: shown the study, never counted.
PROLIFIC_ID = re.compile(r"^[0-9a-fA-F]{24}$")
MAX_ID = 64


class Step(StrEnum):
    CONSENT = "consent"
    INSTRUCTIONS = "instructions"
    COMPARE = "compare"
    QUESTIONNAIRE = "questionnaire"
    DONE = "done"


@dataclass(frozen=True)
class Identity:
    """Who arrived, kept in the session until they decide on consent."""

    source: str
    external_id: str = ""
    external_study_id: str = ""
    external_session_id: str = ""


@dataclass(frozen=True)
class Arrival:
    identity: Identity | None  # None: a preview, nothing is recorded
    rater: Rater | None  # a participant who was here before


def read_arrival(*, study: Study, params: Mapping[str, str]) -> Arrival:
    """Interpret the entry link's parameters (open link, or Prolific's three ids)."""
    pid = params.get("PROLIFIC_PID")
    if pid is None:
        return Arrival(identity=Identity(source=RaterSource.OPEN), rater=None)
    pid = pid.strip()
    if not PROLIFIC_ID.match(pid):
        return Arrival(identity=None, rater=None)
    identity = Identity(
        source=RaterSource.PROLIFIC,
        external_id=pid,
        external_study_id=params.get("STUDY_ID", "").strip()[:MAX_ID],
        external_session_id=params.get("SESSION_ID", "").strip()[:MAX_ID],
    )
    rater = Rater.objects.filter(study=study, source=RaterSource.PROLIFIC, external_id=pid).first()
    if rater is not None and identity.external_session_id not in ("", rater.external_session_id):
        # A new attempt of the same participant: keep the latest session id.
        rater.external_session_id = identity.external_session_id
        rater.save(update_fields=["external_session_id"])
    return Arrival(identity=identity, rater=rater)


def pilot_is_full(study: Study) -> bool:
    """A pilot admits ``pilot_raters`` raters who consented; then no one new."""
    if study.status != StudyStatus.PILOT:
        return False
    seated = study.pilot_rater_set().filter(consented_at__isnull=False).count()
    return seated >= study.pilot_raters


@transaction.atomic
def decide_consent(*, study: Study, identity: Identity, agreed: bool, user_agent: str) -> Rater:
    """Create the rater with their decision. A participant who already decided (a double
    submit, another tab) keeps their first decision. In a pilot that is full, raises
    StudyFull (the study row is locked while seats are counted, so the cap holds)."""
    if identity.source == RaterSource.PROLIFIC:
        existing = Rater.objects.filter(
            study=study, source=identity.source, external_id=identity.external_id
        ).first()
        if existing is not None:
            return existing
    if study.status == StudyStatus.PILOT and agreed:
        study = Study.objects.select_for_update().get(pk=study.pk)
        if pilot_is_full(study):
            raise StudyFull("The pilot of this study has all the raters it needs.")
    now = timezone.now()
    fields = {
        "study": study,
        "source": identity.source,
        "external_id": identity.external_id,
        "external_study_id": identity.external_study_id,
        "external_session_id": identity.external_session_id,
        "user_agent": user_agent[:300],
        "consented_at": now if agreed else None,
        "outcome": "" if agreed else RaterOutcome.NO_CONSENT,
        "completed_at": None if agreed else now,
        "in_pilot": study.status == StudyStatus.PILOT,
    }
    try:
        with transaction.atomic():
            return Rater.objects.create(**fields)
    except IntegrityError:
        # The same participant decided in another request at the same moment.
        return Rater.objects.get(
            study=study, source=identity.source, external_id=identity.external_id
        )


def finish_instructions(*, rater: Rater) -> Rater:
    if rater.instructions_done_at is None:
        rater.instructions_done_at = timezone.now()
        rater.save(update_fields=["instructions_done_at"])
    return rater


def next_step(rater: Rater) -> Step:
    if rater.outcome:
        return Step.DONE
    if rater.consented_at is None:
        return Step.CONSENT
    if rater.instructions_done_at is None:
        return Step.INSTRUCTIONS
    if rater.judging_done_at is None:
        return Step.COMPARE
    return Step.QUESTIONNAIRE if rater.study.ask_questionnaire else Step.DONE


@transaction.atomic
def complete_session(*, rater: Rater, questionnaire: Mapping[str, str] | None = None) -> Rater:
    """The rater finished judging (and the questionnaire, if asked)."""
    locked = Rater.objects.select_for_update().get(pk=rater.pk)
    if locked.outcome:
        return locked
    if questionnaire is not None:
        locked.questionnaire = dict(questionnaire)
    locked.outcome = RaterOutcome.COMPLETED
    locked.completed_at = timezone.now()
    locked.save(update_fields=["questionnaire", "outcome", "completed_at"])
    return locked


@transaction.atomic
def stop_session(*, rater: Rater) -> Rater:
    """The rater stops early, as the consent lets them: their votes so far are kept, the
    pairs they still hold go back to the pool, and they get the partial-completion code."""
    locked = Rater.objects.select_for_update().get(pk=rater.pk)
    if locked.outcome:
        return locked
    now = timezone.now()
    locked.outcome = RaterOutcome.STOPPED
    locked.completed_at = now
    locked.judging_done_at = locked.judging_done_at or now
    locked.save(update_fields=["outcome", "completed_at", "judging_done_at"])
    expire(locked.assignments.filter(status=AssignmentStatus.SERVED))
    return locked


def completion_code(rater: Rater) -> str:
    study = rater.study
    codes = {
        RaterOutcome.COMPLETED: study.completion_code_completed,
        RaterOutcome.FAILED_CHECKS: study.completion_code_failed_checks,
        RaterOutcome.NO_CONSENT: study.completion_code_no_consent,
        RaterOutcome.STOPPED: study.completion_code_stopped,
    }
    return codes.get(RaterOutcome(rater.outcome), "") if rater.outcome else ""


def completion_url(rater: Rater) -> str | None:
    """The study's redirect URL with ``cc=<code>`` added, or None to show the code."""
    base = rater.study.completion_redirect_url
    code = completion_code(rater)
    if not base or not code:
        return None
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cc"] + [("cc", code)]
    return urlunsplit(parts._replace(query=urlencode(query)))


# What identifies a rater outside Verdict; deleting these leaves their votes anonymous.
PERSONAL_FIELDS = {
    "external_id": "",
    "external_study_id": "",
    "external_session_id": "",
    "questionnaire": {},
    "user_agent": "",
}


def forget_personal_data(*, raters: QuerySet[Rater]) -> int:
    """Delete the raters' personal data and keep their votes; returns how many raters
    held any. A participant who comes back afterwards starts as a new rater."""
    holding = raters.exclude(**PERSONAL_FIELDS)
    return holding.update(**PERSONAL_FIELDS, personal_data_deleted_at=timezone.now())


def purge_expired_personal_data(*, now: datetime | None = None) -> int:
    """Apply every study's retention period; returns how many raters were cleared."""
    now = now or timezone.now()
    cleared = 0
    for study in Study.objects.filter(personal_data_retention_days__isnull=False):
        cutoff = now - timedelta(days=study.personal_data_retention_days or 0)
        ended = Rater.objects.filter(study=study).annotate(
            ended=Coalesce("completed_at", "created_at")
        )
        cleared += forget_personal_data(raters=ended.filter(ended__lt=cutoff))
    return cleared
