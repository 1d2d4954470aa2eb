"""Which pair a rater sees next.

The study's design is its comparisons: every prompt × unordered pair of systems ×
criterion, built at launch. A rater is served the comparison with the fewest votes
(answered plus still open), never one they already had, with the systems' sides
counterbalanced per comparison: each ordered side is shown equally often, not by a coin
flip. Practice pairs come first; attention checks sit at positions drawn per rater.

Concurrency: a rater's own row is locked (one request per rater at a time) and the
comparison is picked with ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent raters
take different rows instead of waiting on one global lock.
"""

import itertools
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from studies.exceptions import StudyError
from studies.models import (
    Answer,
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Comparison,
    Rater,
    Study,
    StudyStatus,
)

# How many open pairs a rater holds: the one on screen and the one being preloaded.
OPEN_PAIRS = 2
SWEEP_EVERY_SECONDS = 60
# Looks past rows other raters are taking before waiting on one (about 0.3 s in all).
PICK_RETRIES = 12
MAIN_KINDS = (AssignmentKind.COMPARISON, AssignmentKind.ATTENTION)
COUNTED = (AssignmentStatus.SERVED, AssignmentStatus.ANSWERED)


@dataclass(frozen=True)
class SessionPlan:
    practice: int
    main: int  # comparisons plus attention checks
    checks: frozenset[int]  # positions of attention checks within the main block


@dataclass(frozen=True)
class Progress:
    practice_done: int
    practice_total: int
    done: int
    total: int


@dataclass(frozen=True)
class SessionState:
    """What the comparison page needs: the open pairs in order (show the first, preload
    the second) and whether judging is over or paused."""

    assignments: list[Assignment]
    progress: Progress
    finished: bool
    paused: bool


def session_plan(*, study: Study, rater: Rater) -> SessionPlan:
    """The rater's session: practice count, main block length, attention-check positions."""
    comparisons = study.comparisons_per_session
    rate = study.attention_check_rate
    checks = round(comparisons * rate / (1 - rate)) if rate > 0 else 0
    total = comparisons + checks
    # Not among the first two pairs, so a check never opens the session.
    first = 2 if total - 2 >= checks else 0
    rng = random.Random(f"checks:{study.pk}:{rater.pk}")
    positions = frozenset(rng.sample(range(first, total), checks))
    return SessionPlan(practice=study.practice_comparisons, main=total, checks=positions)


def build_comparisons(*, study: Study) -> int:
    """Create the study's missing comparisons; returns how many were created."""
    system_ids = sorted(study.systems.values_list("pk", flat=True))
    prompt_ids = list(study.prompts.values_list("pk", flat=True))
    criterion_ids = list(study.criteria.values_list("pk", flat=True))
    existing = set(
        Comparison.objects.filter(study=study).values_list(
            "prompt_id", "criterion_id", "system_a_id", "system_b_id"
        )
    )
    rng = random.Random(f"shuffle:{study.pk}")
    new = [
        Comparison(
            study=study,
            prompt_id=prompt_id,
            criterion_id=criterion_id,
            system_a_id=a,
            system_b_id=b,
            shuffle=rng.randrange(2**31),
        )
        for prompt_id in prompt_ids
        for criterion_id in criterion_ids
        for a, b in itertools.combinations(system_ids, 2)
        if (prompt_id, criterion_id, a, b) not in existing
    ]
    Comparison.objects.bulk_create(new, batch_size=2000)
    return len(new)


def recount(assignment: Assignment, *, votes: int = 0, pending: int = 0, shown: int = 0) -> None:
    """Move the counters of the assignment's comparison: its votes, its open pairs and how
    often the side this pair used was shown."""
    comparison = assignment.comparison
    if comparison is None:
        return
    a_left = assignment.left_asset.system_id == comparison.system_a_id
    side = "shown_a_left" if a_left else "shown_b_left"
    Comparison.objects.filter(pk=comparison.pk).update(
        votes=F("votes") + votes, pending=F("pending") + pending, **{side: F(side) + shown}
    )


def release(assignment: Assignment) -> None:
    """Give an unanswered comparison back to the pool (expiry, load failure)."""
    recount(assignment, pending=-1, shown=-1)


def expire(pairs: QuerySet[Assignment]) -> int:
    """Mark served pairs expired and give their comparisons back; returns how many."""
    expired = 0
    for assignment in pairs.select_related("left_asset", "comparison"):
        assignment.status = AssignmentStatus.EXPIRED
        assignment.save(update_fields=["status"])
        release(assignment)
        expired += 1
    return expired


def sweep_expired(*, study: Study) -> int:
    """Expire the study's pairs served and left unanswered past their deadline."""
    with transaction.atomic():
        return expire(
            Assignment.objects.select_for_update(skip_locked=True, of=("self",)).filter(
                study=study, status=AssignmentStatus.SERVED, expires_at__lt=timezone.now()
            )
        )


def _sweep_now_and_then(study: Study) -> None:
    # Each process sweeps a study at most once a minute; `manage.py expire_assignments`
    # (or a periodic task) covers studies nobody is rating.
    if cache.add(f"verdict:sweep:{study.pk}", 1, SWEEP_EVERY_SECONDS):
        sweep_expired(study=study)


def _deadline(study: Study) -> datetime:
    return timezone.now() + timedelta(minutes=study.assignment_timeout_minutes)


def _unjudged(*, rater: Rater, study: Study) -> QuerySet[Comparison]:
    already = Assignment.objects.filter(rater=rater, comparison=OuterRef("pk"))
    return Comparison.objects.filter(study=study).filter(~Exists(already))


def _pick(*, rater: Rater, study: Study, wait: bool, lowest_only: bool = True) -> Comparison | None:
    """The next comparison for this rater, locked. ``lowest_only``: only rows at the
    lowest load qualify, so that while those are being taken nobody skips to a busier row
    (which would spread the load unevenly) and the caller looks again instead."""
    candidates = (
        _unjudged(rater=rater, study=study)
        .order_by(F("votes") + F("pending"), "shuffle")
        .select_related("prompt", "criterion")
    )
    if lowest_only:
        lowest = (
            _unjudged(rater=rater, study=study)
            .annotate(load=F("votes") + F("pending"))
            .order_by("load")
            .values("load")[:1]
        )
        candidates = candidates.annotate(load=F("votes") + F("pending")).filter(
            load=Subquery(lowest)
        )
    return candidates.select_for_update(skip_locked=not wait, of=("self",)).first()


def _serve_comparison(*, rater: Rater, study: Study) -> Assignment | None:
    """Serve the least-loaded comparison this rater has not had; None when there is none.

    Rows other raters are taking are skipped. When that leaves nothing, they will be free
    in a few milliseconds: look again (each look sees the new loads, so waiting raters
    spread out instead of queueing on one row) and, as a last resort, wait for a row. A
    serving transaction holds no other comparison lock, so waiting cannot form a cycle.
    """
    comparison = _pick(rater=rater, study=study, wait=False)
    if comparison is None and not _unjudged(rater=rater, study=study).exists():
        return None
    for attempt in range(PICK_RETRIES):
        if comparison is not None:
            break
        time.sleep(random.uniform(0.002, 0.004) * (attempt + 1))
        comparison = _pick(rater=rater, study=study, wait=False)
    if comparison is None:
        # Last resort: wait for the first row in load order, whatever its load by then
        # (waiting on the lowest rows only could lock one, skip it and wait on another).
        comparison = _pick(rater=rater, study=study, wait=True, lowest_only=False)
    if comparison is None:
        return None
    outputs = Asset.objects.outputs().filter(
        prompt_id=comparison.prompt_id,
        system_id__in=(comparison.system_a_id, comparison.system_b_id),
    )
    by_seed: dict[int, dict[int, Asset]] = {}
    for asset in outputs:
        by_seed.setdefault(asset.seed, {})[asset.system_id] = asset
    seeds = sorted(seed for seed, pair in by_seed.items() if len(pair) == 2)
    if not seeds:
        raise StudyError(f"Comparison {comparison.pk} has no media for both systems.")
    shown = comparison.shown_a_left + comparison.shown_b_left
    pair = by_seed[seeds[shown % len(seeds)]]
    a_left = comparison.shown_a_left < comparison.shown_b_left or (
        comparison.shown_a_left == comparison.shown_b_left and comparison.shuffle % 2 == 0
    )
    if a_left:
        left, right = pair[comparison.system_a_id], pair[comparison.system_b_id]
        comparison.shown_a_left += 1
    else:
        left, right = pair[comparison.system_b_id], pair[comparison.system_a_id]
        comparison.shown_b_left += 1
    comparison.pending += 1
    comparison.save(update_fields=["pending", "shown_a_left", "shown_b_left"])
    return Assignment.objects.create(
        study=study,
        rater=rater,
        kind=AssignmentKind.COMPARISON,
        comparison=comparison,
        prompt=comparison.prompt,
        criterion=comparison.criterion,
        left_asset=left,
        right_asset=right,
        expires_at=_deadline(study),
    )


def _serve_known_answer(
    *, rater: Rater, study: Study, kind: str, position: int
) -> Assignment | None:
    """An output against its corrupted copy: a practice pair or an attention check."""
    copies = Asset.objects.filter(system__study=study, kind=AssetKind.ATTENTION).order_by("pk")
    count = copies.count()
    if count == 0:
        return None
    rng = random.Random(f"{kind}:{rater.pk}:{position}")
    copy = copies.select_related("source", "prompt")[rng.randrange(count)]
    intact = copy.source
    assert intact is not None  # a database constraint: copies have a source
    criteria = list(study.criteria.order_by("order", "pk"))
    intact_left = rng.random() < 0.5
    return Assignment.objects.create(
        study=study,
        rater=rater,
        kind=kind,
        prompt=copy.prompt,
        criterion=criteria[rng.randrange(len(criteria))],
        left_asset=intact if intact_left else copy,
        right_asset=copy if intact_left else intact,
        expected_answer=Answer.LEFT if intact_left else Answer.RIGHT,
        expires_at=_deadline(study),
    )


def _counts(rater: Rater) -> dict[str, int]:
    counted = rater.assignments.filter(status__in=COUNTED).aggregate(
        practice=Count("pk", filter=Q(kind=AssignmentKind.PRACTICE)),
        main=Count("pk", filter=Q(kind__in=MAIN_KINDS)),
        practice_done=Count(
            "pk", filter=Q(kind=AssignmentKind.PRACTICE, status=AssignmentStatus.ANSWERED)
        ),
        done=Count("pk", filter=Q(kind__in=MAIN_KINDS, status=AssignmentStatus.ANSWERED)),
    )
    return {key: int(value) for key, value in counted.items()}


def _serve_one(
    *, rater: Rater, study: Study, plan: SessionPlan, counts: dict[str, int]
) -> Assignment | None:
    if counts["practice"] < plan.practice:
        served = _serve_known_answer(
            rater=rater, study=study, kind=AssignmentKind.PRACTICE, position=counts["practice"]
        )
        if served is not None:
            counts["practice"] += 1
            return served
    position = counts["main"]
    if position >= plan.main:
        return None
    if position in plan.checks:
        served = _serve_known_answer(
            rater=rater, study=study, kind=AssignmentKind.ATTENTION, position=position
        )
    else:
        served = _serve_comparison(rater=rater, study=study)
    if served is not None:
        counts["main"] += 1
    return served


def read_session_state(*, rater: Rater) -> SessionState:
    """The rater's open pairs and where the session stands, serving nothing: what a GET
    may answer. A session that still needs pairs shows them after a serve (a POST)."""
    plan = session_plan(study=rater.study, rater=rater)
    open_pairs = list(
        rater.assignments.filter(status=AssignmentStatus.SERVED)
        .select_related("prompt", "criterion", "left_asset", "right_asset")
        .order_by("served_at", "pk")
    )
    counts = _counts(rater)
    finished = bool(rater.outcome) or rater.judging_done_at is not None
    return SessionState(
        assignments=[] if rater.outcome else open_pairs,
        progress=Progress(
            practice_done=counts["practice_done"],
            practice_total=plan.practice,
            done=counts["done"],
            total=plan.main,
        ),
        finished=finished,
        paused=not open_pairs and not finished and rater.study.status != StudyStatus.LIVE,
    )


def session_state(*, rater: Rater) -> SessionState:
    """The rater's open pairs, serving new ones as needed, and where the session stands.

    Each new pair is served in its own short transaction under the rater's row lock, so a
    transaction never holds more than one comparison row. Only POSTs call this.
    """
    study = rater.study
    if study.status == StudyStatus.LIVE:
        _sweep_now_and_then(study)
    plan = session_plan(study=study, rater=rater)
    while True:
        with transaction.atomic():
            # Only the rater's own row: raters of one study must not queue on a shared lock.
            rater = (
                Rater.objects.select_for_update(of=("self",))
                .select_related("study")
                .get(pk=rater.pk)
            )
            open_pairs = list(
                rater.assignments.filter(status=AssignmentStatus.SERVED)
                .select_related("prompt", "criterion", "left_asset", "right_asset")
                .order_by("served_at", "pk")
            )
            counts = _counts(rater)
            wants_more = study.status == StudyStatus.LIVE and not rater.outcome
            served = None
            if wants_more and len(open_pairs) < OPEN_PAIRS:
                served = _serve_one(rater=rater, study=study, plan=plan, counts=counts)
                if served is not None:
                    open_pairs.append(served)
            exhausted = wants_more and len(open_pairs) < OPEN_PAIRS and served is None
            # A rater who failed the attention checks is done at once; otherwise judging
            # ends when the plan is complete or nothing is left that they have not judged.
            finished = bool(rater.outcome) or (not open_pairs and exhausted)
            if finished and rater.judging_done_at is None:
                rater.judging_done_at = timezone.now()
                rater.save(update_fields=["judging_done_at"])
        if served is None or len(open_pairs) >= OPEN_PAIRS:
            break
    progress = Progress(
        practice_done=counts["practice_done"],
        practice_total=plan.practice,
        done=counts["done"],
        total=plan.main,
    )
    return SessionState(
        assignments=[] if rater.outcome else open_pairs,
        progress=progress,
        finished=finished,
        paused=not open_pairs and not finished,
    )
