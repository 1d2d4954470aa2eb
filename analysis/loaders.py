"""QuerySets into arrays, once: the only place analysis reads the database for votes."""

from dataclasses import dataclass

import numpy as np

from analysis.core.types import Outcome
from analysis.core.votes import Label, VoteTable, make_vote_table, pair_units
from studies.models import Answer, AssignmentKind, RaterSource, Study, Vote

OUTCOME = {
    Answer.LEFT: Outcome.FIRST,
    Answer.RIGHT: Outcome.SECOND,
    Answer.TIE: Outcome.TIE,
    Answer.BOTH_BAD: Outcome.BOTH_BAD,
}


@dataclass(frozen=True)
class StudyVotes:
    table: VoteTable
    rater_ids: tuple[int, ...]  # database id of each rater code
    simulated: np.ndarray  # per vote: cast by a simulated rater
    check_rater: np.ndarray  # per attention check: rater code
    check_passed: np.ndarray


def study_votes(*, study: Study) -> StudyVotes:
    """The study's current comparison votes (every criterion, labelled) as a VoteTable,
    with the attention checks its raters answered. The left system is ``first``."""
    systems = list(study.systems.order_by("pk").values_list("pk", "name"))
    index = {pk: k for k, (pk, _) in enumerate(systems)}
    votes = Vote.objects.filter(assignment__study=study, is_current=True)
    comparisons = votes.filter(assignment__kind=AssignmentKind.COMPARISON)
    rows = comparisons.order_by("pk").values_list(
        "assignment__left_asset__system_id",
        "assignment__right_asset__system_id",
        "answer",
        "assignment__rater_id",
        "response_ms",
        "assignment__prompt_id",
        "assignment__criterion__key",
        "assignment__prompt__category",
        "assignment__rater__source",
    )
    records = list(rows)
    n = len(records)
    columns = list(zip(*records, strict=True)) if records else [()] * 9
    left, right, answers, raters, ms, prompts, criteria, categories, sources = columns
    rater_ids = tuple(sorted(set(raters)))
    rater_code = {pk: k for k, pk in enumerate(rater_ids)}
    first = np.fromiter((index[s] for s in left), dtype=np.int64, count=n)
    second = np.fromiter((index[s] for s in right), dtype=np.int64, count=n)
    # What several raters judged alike: a prompt under one criterion (and its pair).
    items: dict[tuple[int, str], int] = {}
    item = np.fromiter(
        (items.setdefault(key, len(items)) for key in zip(prompts, criteria, strict=True)),
        dtype=np.int64,
        count=n,
    )

    def label(values: tuple[str, ...]) -> Label:
        names = sorted(set(values))
        code = {v: k for k, v in enumerate(names)}
        return Label(np.fromiter((code[v] for v in values), dtype=np.int64, count=n), tuple(names))

    table = make_vote_table(
        systems=tuple(name for _, name in systems),
        first=first,
        second=second,
        outcome=np.fromiter((OUTCOME[Answer(a)] for a in answers), dtype=np.int64, count=n),
        position_known=True,
        rater=np.fromiter((rater_code[r] for r in raters), dtype=np.int64, count=n),
        raters=tuple(f"rater {pk}" for pk in rater_ids),
        unit=pair_units(item, first, second, len(systems)),
        response_ms=np.asarray(ms, dtype=np.float64),
        labels={
            "criterion": label(criteria),
            "category": label(tuple(c or "(none)" for c in categories)),
            "source": label(sources),
        },
    )
    checks = list(
        votes.filter(assignment__kind=AssignmentKind.ATTENTION).values_list(
            "assignment__rater_id", "answer", "assignment__expected_answer"
        )
    )
    check_rater = np.array([rater_code.get(r, -1) for r, _, _ in checks], dtype=np.int64)
    check_passed = np.array([a == e for _, a, e in checks], dtype=bool)
    known = check_rater >= 0
    simulated = np.array([s == RaterSource.SIMULATED for s in sources], dtype=bool)
    return StudyVotes(table, rater_ids, simulated, check_rater[known], check_passed[known])
