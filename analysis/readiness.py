"""The report's read of the study beyond the leaderboard: its summary, the readiness
view (operations, robustness, group gaps, the replicates the decision view uses) and
the examples of the strongest disagreements.

Built once with the report (analysis.reports.analyse_study), stored in it, never on a
page view. Reads the generation log through generation.operations (a read-only
deviation from DESIGN's import rules, held by the layout test).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Max, Min, QuerySet

from analysis.core.correlation import Disagreement, HumanReplicates, MetricComparison
from analysis.core.readiness import (
    P95_MIN_OUTPUTS,
    GroupGap,
    Operations,
    Robustness,
    credit_first,
    group_gaps,
    operations,
    robustness,
)
from analysis.core.results import Leaderboard, finite
from analysis.core.votes import VoteTable
from generation.operations import generation_records
from studies.models import Answer, AssignmentKind, Prompt, Study, Vote

# Replicates kept in the stored report for the decision view (per system).
KEPT_REPLICATES = 1000


@dataclass(frozen=True)
class Readiness:
    """What it takes to run each system and how it holds up; ``replicates`` (replicate,
    system, in ``replicate_systems`` order) are the main comparison's bootstrap scores."""

    gpu_hour_price: float
    operations: tuple[Operations, ...]
    robustness: tuple[Robustness, ...]
    group_gaps: tuple[GroupGap, ...]
    replicate_systems: tuple[str, ...]
    replicates: tuple[tuple[float, ...], ...]
    notes: tuple[str, ...]
    # The rule the page states beside the p95 column (reports built before it: the same).
    p95_min_outputs: int = P95_MIN_OUTPUTS


@dataclass(frozen=True)
class StudySummary:
    name: str
    modality: str
    status: str
    systems: tuple[str, ...]
    prompts: int
    categories: tuple[str, ...]
    criteria: tuple[str, ...]
    first_vote: str | None
    last_vote: str | None
    seeds_per_prompt: int
    comparisons_per_session: int
    votes_per_comparison: int
    attention_check_rate: float
    attention_checks: int
    attention_passed: int
    attention_pass_rate: float | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    """One prompt where metrics and people disagree about a pair of systems: the two
    systems' outputs (their stored file names, for researchers' pages only) and how the
    votes between exactly these two outputs split."""

    metrics: tuple[str, ...]  # the metrics that order the pair against people
    preferred: str  # by people
    other: str
    prompt: str
    preferred_file: str
    other_file: str
    preferred_votes: int
    other_votes: int
    ties: int


def _categories(prompts: "QuerySet[Prompt]") -> tuple[str, ...]:
    return tuple(sorted({c or "(none)" for c in prompts.values_list("category", flat=True)}))


def summary(
    *, study: Study, board: Leaderboard, check_passed: np.ndarray, criterion: str | None
) -> StudySummary:
    votes = Vote.objects.filter(assignment__study=study, is_current=True)
    if criterion is not None:
        # By the criterion's id: a join fewer over every vote of the study.
        criterion_id = study.criteria.filter(key=criterion).values_list("pk", flat=True).first()
        votes = (
            votes.filter(assignment__criterion_id=criterion_id) if criterion_id else votes.none()
        )
    span = votes.aggregate(first=Min("created_at"), last=Max("created_at"))
    prompts = Prompt.objects.filter(study=study)
    checks = int(check_passed.size)
    passed = int(check_passed.sum())
    return StudySummary(
        name=study.name,
        modality=study.modality,
        status=study.status,
        systems=tuple(study.systems.order_by("pk").values_list("name", flat=True)),
        prompts=prompts.count(),
        categories=tuple(
            sorted({c or "(none)" for c in prompts.values_list("category", flat=True)})
        ),
        criteria=tuple(study.criteria.order_by("order", "pk").values_list("key", flat=True)),
        first_vote=span["first"].isoformat() if span["first"] else None,
        last_vote=span["last"].isoformat() if span["last"] else None,
        seeds_per_prompt=study.seeds_per_prompt,
        comparisons_per_session=study.comparisons_per_session,
        votes_per_comparison=study.votes_per_comparison,
        attention_check_rate=study.attention_check_rate,
        attention_checks=checks,
        attention_passed=passed,
        attention_pass_rate=finite(passed / checks) if checks else None,
        warnings=tuple(n.message for n in board.notices),
    )


def _prompt_attributes(study: Study) -> dict[str, dict[str, str]]:
    """attribute -> {prompt id (as the vote table labels it) -> value}, strings only."""
    out: dict[str, dict[str, str]] = {}
    for pk, attributes in Prompt.objects.filter(study=study).values_list("pk", "attributes"):
        for key, value in (attributes or {}).items():
            if isinstance(value, str) and value:
                out.setdefault(str(key), {})[str(pk)] = value
    return out


def readiness(
    *,
    study: Study,
    table: VoteTable,
    board: Leaderboard,
    replicates: HumanReplicates | None,
) -> Readiness:
    price = settings.VERDICT_GPU_HOUR_PRICE
    notes = []
    ops = tuple(operations(r, gpu_hour_price=price) for r in generation_records(study=study))
    if not any(o.outputs for o in ops):
        notes.append(
            "No generation log: the media were imported, so nothing is known of their cost."
        )
    systems = [r.system for r in board.rows]
    by_category = next((b for b in board.breakdowns if b.name == "category"), None)
    robust = tuple(robustness(systems, by_category.groups if by_category else ()))
    gaps: list[GroupGap] = []
    credit = credit_first(table.outcome)
    prompt = table.labels["prompt"]
    for attribute, values in sorted(_prompt_attributes(study).items()):
        per_prompt = np.array([values.get(v) for v in prompt.values], dtype=object)
        gaps += group_gaps(
            systems=table.systems, first=table.first, second=table.second,
            credit_first=credit, group=list(per_prompt[prompt.codes]), attribute=attribute,
        )  # fmt: skip
    kept_systems: tuple[str, ...] = ()
    kept: tuple[tuple[float, ...], ...] = ()
    if replicates is not None:
        kept_systems = replicates.systems
        kept = tuple(
            tuple(round(float(v), 5) for v in row) for row in replicates.samples[:KEPT_REPLICATES]
        )
    else:
        notes.append("No bootstrap replicates: the decision view cannot compare systems.")
    return Readiness(price, ops, robust, tuple(gaps), kept_systems, kept, tuple(notes))


def examples(
    *, study: Study, comparisons: Sequence[MetricComparison], criterion: str | None, limit: int = 3
) -> tuple[Example, ...]:
    """For up to ``limit`` pairs of systems that a metric orders against people (the
    widest human margins first), the prompt on which people split most clearly for the
    system they prefer."""
    found: dict[tuple[str, str], tuple[list[str], Disagreement]] = {}
    for comparison in comparisons:
        for d in comparison.disagreements:
            names, _ = found.setdefault((d.preferred, d.other), ([], d))
            names.append(comparison.correlation.metric)
    pairs = sorted(found.values(), key=lambda item: -item[1].human_gap)
    out = []
    for metrics, disagreement in pairs[:limit]:
        votes = Vote.objects.filter(
            assignment__study=study, assignment__kind=AssignmentKind.COMPARISON, is_current=True
        )
        if criterion is not None:
            votes = votes.filter(assignment__criterion__key=criterion)
        pair = {disagreement.preferred, disagreement.other}
        rows = votes.filter(
            assignment__left_asset__system__name__in=pair,
            assignment__right_asset__system__name__in=pair,
        ).values_list(
            "assignment__prompt__text",
            "assignment__left_asset__system__name",
            "assignment__left_asset__file",
            "assignment__right_asset__file",
            "assignment__left_asset__poster",
            "assignment__right_asset__poster",
            "answer",
        )
        split: dict[tuple[str, str, str], list[int]] = {}
        for prompt, left_system, left_file, right_file, left_poster, right_poster, answer in rows:
            # A video is shown by its poster: the report (and its PDF) shows stills.
            left_id, right_id = left_poster or left_file, right_poster or right_file
            left_is_preferred = left_system == disagreement.preferred
            ids = (left_id, right_id) if left_is_preferred else (right_id, left_id)
            counts = split.setdefault((prompt, *ids), [0, 0, 0])
            if answer in (Answer.TIE, Answer.BOTH_BAD):
                counts[2] += 1
            elif (answer == Answer.LEFT) == left_is_preferred:
                counts[0] += 1
            else:
                counts[1] += 1
        if not split:
            continue
        (prompt, mine, theirs), (won, lost, tied) = max(
            split.items(), key=lambda kv: (kv[1][0] - kv[1][1], kv[1][0])
        )
        out.append(
            Example(
                tuple(metrics), disagreement.preferred, disagreement.other, prompt,
                mine, theirs, won, lost, tied,
            )
        )  # fmt: skip
    return tuple(out)
