"""Copying a study's design: a new draft with the same settings, systems, prompts and
criteria, and nothing raters or generators made (no media, no comparisons, no votes)."""

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from studies.models import Study, StudyStatus, new_completion_code, new_salt

# Made or counted, not designed: a copy starts without them.
NOT_COPIED = {"id", "name", "slug", "status", "content_version", "created_at", "updated_at"}
# A criterion's settlement (Study.stop_when_settled) belongs to the votes, not the design.
NOT_COPIED_ROWS = {"id", "study", "settled_at", "settled_votes"}
# Drawn anew for every study (completion codes, the export salt): left to their defaults.
DRAWN_ANEW = {new_completion_code, new_salt}


def _free_slug(base: str) -> str:
    base = slugify(base)[:70] or "study"
    slug, n = base, 2
    while Study.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _copy_rows(rows: QuerySet[Any], *, to: Study) -> None:
    """Every field of each row but its id, in the new study (a field added later is
    copied too)."""
    model = rows.model
    names = [f.attname for f in model._meta.concrete_fields if f.name not in NOT_COPIED_ROWS]
    model.objects.bulk_create(
        model(study=to, **{name: getattr(row, name) for name in names}) for row in rows
    )


@transaction.atomic
def duplicate_study(*, study: Study, name: str = "") -> Study:
    """A new draft study with ``study``'s design. Completion codes and the export salt
    are new: a code names one study's outcome on Prolific (two studies sharing one could
    not be told apart), and a salt keeps participants unmatchable across studies."""
    fields = {
        f.name: getattr(study, f.name)
        for f in Study._meta.concrete_fields
        if f.name not in NOT_COPIED and f.default not in DRAWN_ANEW
    }
    name = name or f"{study.name} (copy)"
    copy = Study.objects.create(
        name=name, slug=_free_slug(name), status=StudyStatus.DRAFT, **fields
    )
    for rows in (
        study.systems.order_by("pk"),
        study.prompts.order_by("pk"),
        study.criteria.order_by("order", "pk"),
    ):
        _copy_rows(rows, to=copy)
    return copy
