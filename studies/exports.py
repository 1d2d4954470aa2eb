"""Researcher exports. Raters never reach these: they name systems."""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from studies.models import Answer, Study, Vote

VOTE_COLUMNS = [
    "study",
    "vote_id",
    "client_id",
    "created_at",
    "rater_id",
    "rater_source",
    "rater_external_id",
    "kind",
    "criterion",
    "prompt_id",
    "prompt",
    "category",
    "left_system",
    "right_system",
    "left_asset",
    "right_asset",
    "answer",
    "winner",
    "expected_answer",
    "response_ms",
    "is_current",
    "supersedes_vote_id",
]


class _Echo:
    """A file-like object whose write() hands the line back, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


def _winner(answer: str, left: str, right: str) -> str:
    if answer == Answer.LEFT:
        return left
    return right if answer == Answer.RIGHT else answer


def vote_rows(*, studies: QuerySet[Study]) -> Iterator[list[object]]:
    votes = (
        Vote.objects.filter(assignment__study__in=studies)
        .order_by("assignment__study_id", "pk")
        .values_list(
            "assignment__study__slug",
            "pk",
            "client_id",
            "created_at",
            "assignment__rater_id",
            "assignment__rater__source",
            "assignment__rater__external_id",
            "assignment__kind",
            "assignment__criterion__key",
            "assignment__prompt_id",
            "assignment__prompt__text",
            "assignment__prompt__category",
            "assignment__left_asset__system__name",
            "assignment__right_asset__system__name",
            "assignment__left_asset__public_id",
            "assignment__right_asset__public_id",
            "answer",
            "assignment__expected_answer",
            "response_ms",
            "is_current",
            "supersedes_id",
        )
    )
    for row in votes.iterator(chunk_size=2000):
        described: list[Any]
        *described, answer, expected, response_ms, is_current, supersedes = row
        left_system, right_system = described[12], described[13]
        described[3] = described[3].isoformat()
        yield [
            *described,
            answer,
            _winner(answer, left_system, right_system),
            expected,
            response_ms,
            int(is_current),
            supersedes or "",
        ]


def iter_votes_csv(*, studies: QuerySet[Study]) -> Iterable[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(VOTE_COLUMNS)
    for row in vote_rows(studies=studies):
        yield writer.writerow(row)
