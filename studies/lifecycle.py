"""Study status transitions: draft -> generating -> ready -> (pilot ->) live <-> paused
-> closed. A pilot goes on to live with its votes, or back to ready without them."""

import re
from collections.abc import Set

from django.db import transaction
from django.utils import timezone

from studies import realness, webhooks
from studies.assignments import discard, expire
from studies.exceptions import InvalidTransition, StudyNotReady
from studies.models import (
    Asset,
    AssetKind,
    Assignment,
    AssignmentStatus,
    KnownPair,
    RaterOutcome,
    Study,
    StudyStatus,
    WebhookEvent,
)
from studies.scheduler import build_comparisons

S = StudyStatus


def _transition(*, study: Study, allowed: Set[str], target: str, action: str) -> Study:
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.status not in allowed:
        raise InvalidTransition(
            f"Cannot {action} study {locked.name!r}: it is {locked.get_status_display().lower()}."
        )
    locked.status = target
    locked.save(update_fields=["status", "updated_at"])
    study.status = target
    return locked


def launch_problems(*, study: Study) -> list[str]:
    """What stops the study from going live, in words for the researcher."""
    problems = []
    systems = list(study.systems.all())
    prompt_ids = set(study.prompts.values_list("pk", flat=True))
    if len(systems) < 2:
        problems.append(f"it has {len(systems)} system(s); a comparison needs at least 2")
    if not prompt_ids:
        problems.append("it has no prompts")
    if not study.criteria.exists():
        problems.append("it has no criteria (questions for raters)")
    covered = set(
        Asset.objects.outputs()
        .filter(system__study=study)
        .values_list("system_id", "prompt_id")
        .distinct()
    )
    for system in systems:
        if system.is_real:  # real images need not match the prompts one to one
            continue
        missing = [pid for pid in prompt_ids if (system.pk, pid) not in covered]
        if missing:
            problems.append(f"system {system.name!r} has no media for {len(missing)} prompt(s)")
    if (
        study.needs_attention_copies
        and not Asset.objects.filter(system__study=study, kind=AssetKind.ATTENTION).exists()
    ):
        problems.append(
            "attention checks or practice pairs are on but no attention-check media exist "
            "(generate media again, or set both to 0)"
        )
    if study.is_realness:
        return problems + realness.launch_problems(study=study) + blinding_problems(study=study)
    return problems + _practice_problems(study=study) + blinding_problems(study=study)


def _practice_problems(*, study: Study) -> list[str]:
    """Practice needs material whose answer is known for some criterion's question; without
    it raters would silently get no practice."""
    if study.practice_comparisons == 0 or not study.criteria.exists():
        return []
    if study.criteria.filter(copy_is_known_worse=True).exists():
        return []
    if KnownPair.objects.filter(study=study).exists():
        return []
    return [
        f"{study.practice_comparisons} practice pair(s) are asked for but no criterion has "
        "practice material: mark a visual-quality criterion “copy is known worse”, add known "
        "pairs, or set practice comparisons to 0"
    ]


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def blinding_problems(*, study: Study) -> list[str]:
    """System names in anything raters see: the slug (in the link), the public title,
    consent, instructions and the criteria's questions."""
    shown = {
        "the slug": study.slug.replace("-", " "),
        "the public title": study.public_title,
        "the consent text": study.consent,
        "the instructions": study.instructions,
        "a criterion's question": " ".join(study.criteria.values_list("question", flat=True)),
    }
    problems = []
    for name in study.systems.filter(is_real=False).values_list("name", flat=True):
        needle = _words(name)
        if len(needle.strip()) < 3:
            continue
        for where, text in shown.items():
            if needle in _words(text):
                problems.append(f"{where} names system {name!r}, which raters must not see")
    return problems


def _open(study: Study, *, allowed: Set[str], target: str, action: str) -> Study:
    problems = launch_problems(study=study)
    if problems:
        raise StudyNotReady(f"Cannot {action} {study.name!r}: " + "; ".join(problems) + ".")
    launched = _transition(study=study, allowed=allowed, target=target, action=action)
    build_comparisons(study=launched)
    return launched


@transaction.atomic
def launch_study(*, study: Study) -> Study:
    """Open the study to all raters (also resumes a paused study, and ends a pilot
    keeping its votes)."""
    launched = _open(study, allowed={S.READY, S.PAUSED, S.PILOT}, target=S.LIVE, action="launch")
    webhooks.emit(
        study=launched,
        event=WebhookEvent.LAUNCHED,
        key=f"launched:{timezone.now().isoformat()}",
        data={"status": launched.status},
    )
    return launched


@transaction.atomic
def launch_pilot(*, study: Study) -> Study:
    """Open the study to its first ``pilot_raters`` raters only (studies.raters)."""
    if study.pilot_raters < 1:
        raise StudyNotReady(f"Cannot pilot {study.name!r}: set pilot raters to 1 or more.")
    piloting = _open(study, allowed={S.READY}, target=S.PILOT, action="pilot")
    piloting.pilot_started_at = study.pilot_started_at = timezone.now()
    piloting.save(update_fields=["pilot_started_at"])
    return piloting


@transaction.atomic
def discard_pilot(*, study: Study) -> int:
    """End a pilot without its votes: back to ready, with every vote of the pilot's raters
    kept for audit but no longer current (no analysis, export or progress counts them)
    and their pairs given back to the design. Returns how many votes were discarded.

    Raters still judging are stopped (they get the partial code); the study can then be
    changed, piloted again or launched."""
    _transition(study=study, allowed={S.PILOT}, target=S.READY, action="discard the pilot of")
    pilot = study.pilot_rater_set()
    pairs = Assignment.objects.filter(rater__in=pilot)
    expire(pairs.filter(status=AssignmentStatus.SERVED))
    now = timezone.now()
    pilot.filter(outcome="", consented_at__isnull=False).update(
        outcome=RaterOutcome.STOPPED, completed_at=now, judging_done_at=now
    )
    return discard(pairs)


@transaction.atomic
def pause_study(*, study: Study) -> Study:
    return _transition(study=study, allowed={S.LIVE}, target=S.PAUSED, action="pause")


@transaction.atomic
def close_study(*, study: Study) -> Study:
    allowed = {S.DRAFT, S.READY, S.PILOT, S.LIVE, S.PAUSED}
    return _transition(study=study, allowed=allowed, target=S.CLOSED, action="close")


@transaction.atomic
def begin_generation(*, study: Study) -> Study:
    allowed = {S.DRAFT, S.READY}
    return _transition(
        study=study, allowed=allowed, target=S.GENERATING, action="generate media for"
    )


@transaction.atomic
def finish_generation(*, study: Study) -> Study:
    """Back to ready once media exist, or to draft when generation produced nothing."""
    has_media = Asset.objects.outputs().filter(system__study=study).exists()
    target = S.READY if has_media else S.DRAFT
    finished = _transition(study=study, allowed={S.GENERATING}, target=target, action="finish")
    counts = Study.objects.with_progress().filter(pk=study.pk)
    made, expected = counts.values_list("n_assets", "asset_target").get()  # type: ignore[misc]
    if has_media and made >= expected:  # every system has media for every prompt and seed
        webhooks.emit(
            study=finished,
            event=WebhookEvent.MEDIA_READY,
            key=f"media:{made}:{timezone.now().isoformat()}",
            data={"media": made, "expected": expected},
        )
    return finished
