"""Researcher exports: one CSV of votes per study, with a data dictionary. Raters never
reach these: they name systems.

Participants' external ids (Prolific PID, study and session ids) are exported as the
study says: hashed by default (SHA-256 with the study's own salt, so one participant is
the same code across a study's files and cannot be matched across studies or looked
up), in plain, or left out. Practice and attention rows carry their kind, whether they
were passed, and no winner: they compare no systems.
"""

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any

from django.utils import timezone

from studies.models import (
    REALNESS_ANSWERS,
    Answer,
    AssignmentKind,
    AssignmentStatus,
    ExternalIds,
    Study,
    Vote,
)

# Every column, with what it holds: the CSV's header and its data dictionary.
VOTE_COLUMNS: dict[str, str] = {
    "study": "The study's slug.",
    "vote_id": "The vote's id; a correction is a new vote (see supersedes_vote_id).",
    "client_id": "The id the rater's browser gave the answer (retries carry the same).",
    "created_at": "When the vote was stored (ISO 8601, UTC).",
    "rater_id": "Verdict's number for the rater within this database.",
    "rater_source": "How the rater came: open link, prolific or simulated.",
    "participant_id": "Prolific PID: hashed with the study's salt, plain, or empty, as the "
    "study's export setting says.",
    "external_study_id": "Prolific STUDY_ID, exported like participant_id.",
    "external_session_id": "Prolific SESSION_ID, exported like participant_id.",
    "rater_outcome": "How the rater's session ended: completed, failed_checks, no_consent, "
    "stopped, or empty while it runs.",
    "device": "Questionnaire: the device the rater said they used (optional).",
    "screen": "Questionnaire: the browser window's size in CSS pixels (optional).",
    "age_band": "Questionnaire: the age band the rater chose (optional).",
    "kind": "comparison, practice or attention (checks and practice compare no systems); "
    "judgment in a real-or-generated study.",
    "criterion": "The question's key.",
    "prompt_id": "The prompt's id.",
    "prompt": "The prompt's text.",
    "category": "The prompt's category.",
    "left_system": "The system whose medium was shown on the left (real or generated: the "
    "one image's source, the real image set's name for a real image; right_system repeats "
    "it).",
    "right_system": "The system whose medium was shown on the right.",
    "left_asset": "The public id of the medium on the left.",
    "right_asset": "The public id of the medium on the right.",
    "answer": "left, right, tie or both_bad; real or generated in a real-or-generated study.",
    "winner": "The preferred system's name, tie or both_bad; empty for practice and "
    "attention rows.",
    "expected_answer": "Practice and attention rows: the known right answer; real-or-generated "
    "judgments: the image's truth.",
    "passed": "Practice and attention rows: 1 if the answer was right, else 0.",
    "response_ms": "Milliseconds from both media shown to the answer.",
    "is_current": "1 for the answer that stands, 0 for one corrected later or discarded "
    "with its pilot.",
    "supersedes_vote_id": "For a correction: the vote it replaced.",
    "pilot": "kept or discarded for the votes of a pilot's raters (as the researcher "
    "decided after the pilot; discarded votes count nowhere), empty otherwise.",
    "flag": "The reason the rater flagged this pair (broken, disturbing, impossible), if any.",
    "software": "Verdict's version that wrote this file.",
}
DICTIONARY_NAME = "votes_dictionary.md"


def _software() -> str:
    try:
        return f"verdict {version('verdict')}"
    except PackageNotFoundError:  # a checkout that was never installed
        return "verdict (not installed)"


def external_code(study: Study, value: str) -> str:
    """A participant's id as the study exports it."""
    if not value or study.external_ids_in_exports == ExternalIds.OMIT:
        return ""
    if study.external_ids_in_exports == ExternalIds.PLAIN:
        return value
    digest = hashlib.sha256(f"{study.export_salt}:{value}".encode()).hexdigest()
    return digest[:16]


def _passed(kind: str, answer: str, expected: str, same_media: bool) -> str:
    if kind in (AssignmentKind.COMPARISON, AssignmentKind.JUDGMENT):
        return ""
    if expected in REALNESS_ANSWERS:  # one image: same media, but no identical-pair trap
        return str(int(answer == expected))
    if same_media:  # an identical pair: the honest answers are a tie or both bad
        return str(int(answer in (Answer.TIE, Answer.BOTH_BAD)))
    return str(int(answer == expected))


def _winner(kind: str, answer: str, left: str, right: str) -> str:
    if kind != AssignmentKind.COMPARISON:
        return ""
    if answer == Answer.LEFT:
        return left
    return right if answer == Answer.RIGHT else answer


def _pilot(in_pilot: bool, status: str) -> str:
    if not in_pilot:
        return ""
    return "discarded" if status == AssignmentStatus.DISCARDED else "kept"


def vote_rows(*, study: Study) -> Iterator[list[object]]:
    """The study's votes, one list per row in VOTE_COLUMNS order."""
    votes = (
        Vote.objects.filter(assignment__study=study)
        .order_by("pk")
        .values_list(
            "pk",
            "client_id",
            "created_at",
            "assignment__rater_id",
            "assignment__rater__source",
            "assignment__rater__external_id",
            "assignment__rater__external_study_id",
            "assignment__rater__external_session_id",
            "assignment__rater__outcome",
            "assignment__rater__questionnaire",
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
            "assignment__rater__in_pilot",
            "assignment__status",
            "assignment__flag__reason",
        )
    )
    software = _software()
    for row in votes.iterator(chunk_size=2000):
        (pk, client_id, created_at, rater_id, source, pid, study_id, session_id, outcome,
         questionnaire, kind, criterion, prompt_id, prompt, category, left_system,
         right_system, left_asset, right_asset, answer, expected, response_ms, is_current,
         supersedes, in_pilot, status, flag) = row  # fmt: skip
        answers: dict[str, Any] = questionnaire if isinstance(questionnaire, dict) else {}
        yield [
            study.slug,
            pk,
            client_id,
            created_at.isoformat(),
            rater_id,
            source,
            external_code(study, pid),
            external_code(study, study_id),
            external_code(study, session_id),
            outcome,
            answers.get("device", ""),
            answers.get("screen", ""),
            answers.get("age_band", ""),
            kind,
            criterion,
            prompt_id,
            prompt,
            category,
            left_system,
            right_system,
            left_asset,
            right_asset,
            answer,
            _winner(kind, answer, left_system, right_system),
            expected,
            _passed(kind, answer, expected, left_asset == right_asset),
            response_ms,
            int(is_current),
            supersedes or "",
            _pilot(in_pilot, status),
            flag or "",
            software,
        ]


class _Echo:
    """A file-like object whose write() hands the line back, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


def iter_votes_csv(*, study: Study) -> Iterable[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(VOTE_COLUMNS)
    for row in vote_rows(study=study):
        yield writer.writerow(row)


def dictionary_markdown() -> str:
    lines = ["# Columns of a Verdict votes export", "", "| column | what it holds |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in VOTE_COLUMNS.items()]
    return "\n".join(lines) + "\n"


def export_name(study: Study, stamp: str) -> str:
    return f"{study.slug}-votes-{stamp}.csv"


def stamp_now() -> str:
    return timezone.now().strftime("%Y%m%d-%H%M%S")


def write_votes_zip(target: IO[bytes], *, studies: Iterable[Study], stamp: str) -> None:
    """Several studies: one CSV each and the data dictionary, in one zip written to
    ``target``, each CSV streamed row by row (a study's votes are never held whole)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for study in studies:
            with (
                archive.open(export_name(study, stamp), "w") as member,
                io.TextIOWrapper(member, encoding="utf-8", newline="") as text,
            ):
                text.writelines(iter_votes_csv(study=study))
        archive.writestr(DICTIONARY_NAME, dictionary_markdown())
