"""Bulk prompt import from a CSV or plain-text upload."""

import csv
import io
from dataclasses import dataclass

from django.db import transaction

from studies.exceptions import InvalidTransition, PromptImportError
from studies.models import Prompt, Study, StudyStatus

MAX_PROMPT_CHARS = 2000
MAX_PROMPTS_PER_FILE = 50_000


@dataclass(frozen=True)
class PromptRow:
    line: int
    text: str
    category: str


@dataclass(frozen=True)
class PromptImport:
    created: int
    already_there: int


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptImportError([f"the file is not UTF-8 text (byte {exc.start})"]) from None


def parse_prompt_file(*, name: str, content: bytes, default_category: str = "") -> list[PromptRow]:
    """Read prompts from ``.csv`` (columns ``text`` and optional ``category``) or from text
    with one prompt per line (blank lines and lines starting with ``#`` are skipped)."""
    text = _decode(content)
    problems: list[str] = []
    rows: list[PromptRow] = []
    if name.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        if "text" not in header:
            raise PromptImportError([f"line 1: no 'text' column (found {header or 'nothing'})"])
        for record in reader:
            line = reader.line_num
            value = (record.get("text") or "").strip()
            category = (record.get("category") or "").strip() or default_category
            if not value:
                problems.append(f"line {line}: the text is empty")
                continue
            rows.append(PromptRow(line=line, text=value, category=category))
    else:
        for line, raw in enumerate(text.splitlines(), start=1):
            value = raw.strip()
            if value and not value.startswith("#"):
                rows.append(PromptRow(line=line, text=value, category=default_category))
    for row in rows:
        if len(row.text) > MAX_PROMPT_CHARS:
            problems.append(f"line {row.line}: the text is over {MAX_PROMPT_CHARS} characters")
        if len(row.category) > 100:
            problems.append(f"line {row.line}: the category is over 100 characters")
    if not rows and not problems:
        problems.append("the file holds no prompts")
    if len(rows) > MAX_PROMPTS_PER_FILE:
        problems.append(f"{len(rows)} prompts is over the limit of {MAX_PROMPTS_PER_FILE} a file")
    if problems:
        raise PromptImportError(problems)
    return rows


@transaction.atomic
def import_prompts(*, study: Study, rows: list[PromptRow]) -> PromptImport:
    """Add the prompts the study does not have yet; existing texts are left as they are."""
    if study.status not in {StudyStatus.DRAFT, StudyStatus.READY}:
        raise InvalidTransition(
            f"Prompts can be added only before launch; {study.name!r} is "
            f"{study.get_status_display().lower()}."
        )
    existing = set(study.prompts.values_list("text", flat=True))
    new: dict[str, PromptRow] = {}
    for row in rows:
        if row.text not in existing and row.text not in new:
            new[row.text] = row
    Prompt.objects.bulk_create(
        [Prompt(study=study, text=row.text, category=row.category) for row in new.values()]
    )
    return PromptImport(created=len(new), already_there=len(rows) - len(new))
