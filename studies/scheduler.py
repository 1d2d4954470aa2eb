"""Which comparison a rater sees next: the study's design and the pick. It only picks;
studies.assignments serves what it picks and moves the counters.

The study's design is its comparisons: every prompt × unordered pair of systems ×
criterion, built at launch. A rater is offered the comparison with the lowest load (pairs
served and not given back), never one they already had, with the systems' sides
counterbalanced per comparison: each ordered side is shown equally often, not by a coin
flip. Prompts are spread over a session. Practice pairs come first; attention checks sit
at positions drawn per rater.

Concurrency: the pick is ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent raters take
different rows instead of waiting on one global lock.
"""

import itertools
import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from studies import content
from studies.models import (
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Comparison,
    PairSelection,
    Rater,
    Study,
)

MAIN_KINDS = (AssignmentKind.COMPARISON, AssignmentKind.JUDGMENT, AssignmentKind.ATTENTION)
# Pairs that count: open or answered (expired, replaced and flagged ones were given back).
COUNTED = (AssignmentStatus.SERVED, AssignmentStatus.ANSWERED)
# Pairs per statement when adaptive selection writes the strides.
STRIDE_CHUNK = 500


@dataclass(frozen=True)
class SessionPlan:
    practice: int
    main: int  # comparisons plus attention checks
    checks: frozenset[int]  # positions of attention checks within the main block


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
    """Create the study's missing comparisons; returns how many were created (none for a
    real-or-generated study, which shows images one at a time: studies.realness)."""
    if study.is_realness:
        return 0
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
    content.bump(study.pk)
    return len(new)


def prompt_share(*, plan: SessionPlan, prompt_count: int) -> int:
    """How many of a session's pairs one prompt may fill: its fair share."""
    return max(1, math.ceil(plan.main / max(1, prompt_count)))


def prompts_to_avoid(
    *, uses: Mapping[int, int], last: int | None, prompt_count: int, share: int, strict: bool
) -> set[int]:
    """Variety: the prompts a rater should not get next, from how many of their pairs so
    far used each prompt and the prompt of the latest. Never the last one again;
    ``strict``: none used more often than the least used prompt (round robin, so greedy
    picks cannot corner themselves); else none used up to its fair ``share``."""
    counts = {prompt: n for prompt, n in uses.items() if n > 0}
    if strict:
        least = min(counts.values()) if len(counts) >= prompt_count and counts else 0
        level = min(share, least + 1)
    else:
        level = share
    avoid = {prompt for prompt, n in counts.items() if n >= level}
    if last is not None:
        avoid.add(last)
    return avoid


def _open_rows(
    *, rater_id: int, study: Study, criterion_id: int | None, avoid_prompts: Collection[int]
) -> QuerySet[Comparison]:
    had = Assignment.objects.filter(rater_id=rater_id)
    if criterion_id is None:
        had = had.filter(comparison=OuterRef("pk"))
    else:
        had = had.filter(
            comparison__prompt_id=OuterRef("prompt_id"),
            comparison__system_a_id=OuterRef("system_a_id"),
            comparison__system_b_id=OuterRef("system_b_id"),
        )
    rows = Comparison.objects.filter(study=study, available=True).filter(~Exists(had))
    if criterion_id is not None:
        rows = rows.filter(criterion_id=criterion_id)
    if avoid_prompts:
        rows = rows.exclude(prompt_id__in=sorted(avoid_prompts))
    return rows


def pick(
    *,
    rater_id: int,
    study: Study,
    criterion_id: int | None,
    avoid_prompts: Collection[int] = (),
    lowest_only: bool = True,
    wait: bool = False,
) -> QuerySet[Comparison, dict[str, Any]]:
    """The next comparison for this rater as a locking query, not yet run: its pk, its
    group (prompt and systems) and whether system a goes on the left.

    Only comparisons this rater has not had and whose media may be shown qualify, lowest
    load first. ``criterion_id`` (all criteria on one screen) picks by the first criterion
    and leaves out pairs the rater saw under any criterion. ``avoid_prompts`` (the
    caller's variety rules: the prompt shown last, prompts used up) are left out.
    ``lowest_only``: only rows at the lowest load qualify, so that while those are
    being taken nobody skips to a busier row (which would spread the load unevenly) and
    the caller looks again instead. Under adaptive selection the load is weighted by each
    comparison's stride, (load + 1) × stride: a pair of systems is served in proportion
    to 1 / stride, and within a pair its prompts still in turn.
    """
    rows = _open_rows(
        rater_id=rater_id, study=study, criterion_id=criterion_id, avoid_prompts=avoid_prompts
    )
    load: Any = F("shown_a_left") + F("shown_b_left")
    if study.pair_selection == PairSelection.ADAPTIVE:
        load = ExpressionWrapper((load + 1) * F("stride"), output_field=FloatField())
    candidates = rows.annotate(load=load).order_by("load", "shuffle")
    if lowest_only:
        lowest = rows.annotate(load=load).order_by("load").values("load")[:1]
        candidates = candidates.filter(load=Subquery(lowest))
    # Counterbalance: the side shown less often goes left; on a tie, the row's shuffle.
    a_left = Case(
        When(
            Q(shown_a_left__lt=F("shown_b_left")) | Q(shown_a_left=F("shown_b_left"), parity=0),
            then=Value(True),
        ),
        default=Value(False),
        output_field=BooleanField(),
    )
    return (
        candidates.annotate(parity=F("shuffle") % 2, a_left=a_left)
        .values("pk", "prompt_id", "system_a_id", "system_b_id", "a_left")
        .select_for_update(skip_locked=not wait, of=("self",))[:1]
    )


def set_strides(
    *, study: Study, criterion_id: int, strides: Sequence[tuple[int, int, float]]
) -> int:
    """Adaptive selection: give the criterion's comparisons of each pair of systems
    (system a, system b by id, a < b) its stride; returns how many rows changed. One
    UPDATE … FROM (VALUES …) per chunk of pairs, not one per pair."""
    table = connection.ops.quote_name(Comparison._meta.db_table)
    changed = 0
    with connection.cursor() as cursor:
        for start in range(0, len(strides), STRIDE_CHUNK):
            chunk = strides[start : start + STRIDE_CHUNK]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET stride = v.column3 FROM (VALUES {values}) AS v "
                f"WHERE {table}.study_id = %s AND {table}.criterion_id = %s "
                f"AND {table}.system_a_id = v.column1 AND {table}.system_b_id = v.column2",
                [x for row in chunk for x in row] + [study.pk, criterion_id],
            )
            changed += cursor.rowcount
    return changed


def has_unjudged(
    *, rater_id: int, study: Study, criterion_id: int | None, avoid_prompts: Collection[int] = ()
) -> bool:
    """Whether any comparison is left for this rater under these rules, taken by others
    at the moment or not."""
    return _open_rows(
        rater_id=rater_id, study=study, criterion_id=criterion_id, avoid_prompts=avoid_prompts
    ).exists()
