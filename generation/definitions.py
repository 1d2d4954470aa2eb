"""A study's design as a file: YAML checked against a published JSON Schema (``SCHEMA``;
schemas/study.schema.json is its copy, kept equal by a test), applied in one transaction
(``apply_definition``) and written back from any study (``export_definition``).

The file is the whole design: the study's settings, its systems (by name, with their
backend and parameters), prompts (by text, inline or from a prompts file), criteria (by
key, in the file's order) and completion codes. Applying it creates the study of its slug
as a draft, or brings that study to what the file says; rows the file no longer names
are deleted, and applying the same file again changes nothing. Every change is checked
before anything is written, by the rules the admin applies: the models' own validation,
the backends' parameter checks (which is why this lives in generation, the owner of the
backends), and what raters and media depend on. Media were made with a system's backend
and parameters and for a prompt's text, so those cannot change, nor their rows go, once
media exist; after launch the study's systems, prompts and criteria are fixed (its
comparisons are built from them).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q

from generation.backends import get_backend
from generation.exceptions import BackendParamsError
from studies.designs import NOT_COPIED_ROWS
from studies.exceptions import StudyError
from studies.models import Criterion, Prompt, Study, StudyStatus, System
from studies.prompts import parse_prompt_file

SCHEMA_ID = "urn:verdict:study-definition:1"
# Made, counted or secret, not designed: never in a file.
STUDY_SKIP = {"id", "slug", "status", "export_salt"}
# A row's fields as studies.designs copies them; a criterion's order is the file's order.
ROW_SKIP = NOT_COPIED_ROWS | {"order"}
BEFORE_LAUNCH = {StudyStatus.DRAFT, StudyStatus.GENERATING, StudyStatus.READY}


class DefinitionError(StudyError):
    """A study file that cannot be applied; ``problems`` name each field. Nothing was
    changed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"Nothing applied: {shown}{more}.")


def _fields(model: type[models.Model], skip: set[str]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if f.editable and f.name not in skip]


def _field_schema(field: models.Field[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any]
    if field.choices:
        out = {"enum": [value for value, _ in field.flatchoices]}
    elif isinstance(field, models.BooleanField):
        out = {"type": "boolean"}
    elif isinstance(field, models.PositiveSmallIntegerField):
        out = {"type": "integer", "minimum": 0, "maximum": 32767}
    elif isinstance(field, models.IntegerField):
        out = {"type": "integer", "minimum": 0}
    elif isinstance(field, models.FloatField):
        out = {"type": "number"}
    elif isinstance(field, models.DecimalField):
        out = {"type": ["number", "string"]}
    elif isinstance(field, models.JSONField):
        out = {"type": ["object", "array"]}
    else:
        out = {"type": "string"}
        if getattr(field, "max_length", None):
            out["maxLength"] = field.max_length
    if field.null:
        out = {"anyOf": [out, {"type": "null"}]}
    if field.help_text:
        out["description"] = str(field.help_text)
    return out


def _bounds(model: type[models.Model]) -> dict[str, dict[str, Any]]:
    """Bounds the model's check constraints set on single fields (``x__gte``, ``x__lte``
    under AND), for the schema: a file is then told which field is out of range."""
    out: dict[str, dict[str, Any]] = {}

    def leaves(node: Any) -> Iterable[Any]:
        if isinstance(node, Q):
            if not node.negated and node.connector == Q.AND:
                for child in node.children:
                    yield from leaves(child)
        else:
            yield node

    for constraint in model._meta.constraints:
        if isinstance(constraint, models.CheckConstraint):
            for leaf in leaves(constraint.condition):
                if isinstance(leaf, tuple) and isinstance(leaf[1], int | float):
                    name, _, lookup = leaf[0].rpartition("__")
                    if lookup in ("gte", "lte"):
                        key = "minimum" if lookup == "gte" else "maximum"
                        out.setdefault(name, {})[key] = leaf[1]
    return out


def _object(model: type[models.Model], skip: set[str], required: list[str]) -> dict[str, Any]:
    properties = {f.name: _field_schema(f) for f in _fields(model, skip)}
    for name, bounds in _bounds(model).items():
        if name in properties and "type" in properties[name]:
            properties[name].update(bounds)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def _schema() -> dict[str, Any]:
    """The file's JSON Schema, from the models' fields: a setting added to a model is in
    the schema (and the published copy's test says to regenerate it)."""
    study = _object(Study, STUDY_SKIP | {"name"}, [])
    system = _object(System, ROW_SKIP, ["name"])
    system["properties"]["backend_params"] = {"type": "object"}
    prompt = _object(Prompt, ROW_SKIP, ["text"])
    prompt["properties"]["attributes"] = {"type": "object"}
    criterion = _object(Criterion, ROW_SKIP, ["key", "question"])
    settings = study["properties"]
    settings["allowed_answers"] = {
        "type": "array",
        "items": {"enum": ["left", "right", "tie", "both_bad"]},
        "minItems": 2,
        "uniqueItems": True,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Verdict study definition",
        "type": "object",
        "additionalProperties": False,
        "required": ["slug", "name", "systems", "criteria"],
        "properties": {
            "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 80},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "settings": study,
            "systems": {"type": "array", "minItems": 1, "items": system},
            "prompts": {"type": "array", "items": prompt},
            "prompts_file": {
                "type": "string",
                "description": "A .csv (columns text, category) or .txt file of prompts, "
                "relative to the study file; its prompts come after the inline ones.",
            },
            "criteria": {"type": "array", "minItems": 1, "items": criterion},
        },
    }


SCHEMA = _schema()


@dataclass
class Applied:
    """What applying a file did: the study, whether it was new, and the changes made."""

    study: Study
    created: bool
    changes: list[str] = field(default_factory=list)


def _python(field: models.Field[Any, Any], value: Any) -> Any:
    if isinstance(field, models.DecimalField) and value is not None:
        return Decimal(str(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):  # a choice's default: its value, for YAML
        return value.value
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() else str(value)
    return value


def _where(path: str, error: jsonschema.ValidationError) -> str:
    place = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
    return f"{place.lstrip('.') or 'the file'}: {error.message}"


def read_definition(path: Path) -> dict[str, Any]:
    """Load a study file, its prompts file included, checked against the schema."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([f"{path}: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([f"{path}: not valid YAML ({exc})"]) from None
    return load_definition(data, base=path.parent)


def load_definition(data: Any, *, base: Path | None = None) -> dict[str, Any]:
    """Check a parsed study file against the schema and read its prompts file."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = sorted(_where("", e) for e in validator.iter_errors(data))
    if problems:
        raise DefinitionError(problems)
    data = dict(data)
    name = data.pop("prompts_file", None)
    if name is not None:
        if base is None:
            raise DefinitionError(["prompts_file: only a study file on disk can name one"])
        source = (base / name).resolve()
        try:
            content = source.read_bytes()
        except OSError as exc:
            raise DefinitionError([f"prompts_file: cannot read {name} ({exc.strerror})"]) from None
        try:
            rows = parse_prompt_file(name=source.name, content=content)
        except StudyError as exc:
            raise DefinitionError([f"prompts_file: {exc}"]) from None
        data["prompts"] = [*data.get("prompts", []), *(
            {"text": row.text, "category": row.category} for row in rows
        )]  # fmt: skip
    return data


class _Plan:
    """The changes a file asks for, checked before any is written."""

    def __init__(self, study: Study | None) -> None:
        self.study = study
        self.problems: list[str] = []
        self.changes: list[str] = []

    @property
    def launched(self) -> bool:
        return self.study is not None and self.study.status not in BEFORE_LAUNCH

    def check(self, where: str, instance: models.Model, exclude: Iterable[str] = ()) -> None:
        try:
            instance.full_clean(exclude=[*exclude], validate_unique=False)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                target = where if name == "__all__" else f"{where}.{name}"
                self.problems.extend(f"{target}: {m}" for m in messages)


def _update(instance: models.Model, values: Mapping[str, Any]) -> list[str]:
    """Set the values that differ; returns their names."""
    changed = []
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _rows_of(
    plan: _Plan, model: type[models.Model], given: list[dict[str, Any]], key: str
) -> dict[str, dict[str, Any]]:
    fields = {f.name: f for f in _fields(model, ROW_SKIP)}
    out: dict[str, dict[str, Any]] = {}
    for item in given:
        values = {name: _python(fields[name], value) for name, value in item.items()}
        name = str(values[key])
        if name in out:
            label = model._meta.verbose_name_plural
            plan.problems.append(f"{label}[{name!r}]: named twice (its {key} must be unique)")
        out.setdefault(name, values)
    return out


@transaction.atomic
def apply_definition(data: Mapping[str, Any], *, dry_run: bool = False) -> Applied:
    """Create or update the study the file names (see the module's rules): everything or
    nothing. ``dry_run``: check and list the changes, write none."""
    data = load_definition(data)
    existing = Study.objects.select_for_update().filter(slug=data["slug"]).first()
    plan = _Plan(existing)
    study = existing or Study(slug=data["slug"], status=StudyStatus.DRAFT)
    fields = {f.name: f for f in _fields(Study, STUDY_SKIP)}
    settings = {n: _python(fields[n], v) for n, v in data.get("settings", {}).items()}
    changed = _update(study, {"name": data["name"], **settings})
    if existing is None:
        plan.changes.append(f"created study {study.slug!r} (a draft)")
    elif changed:
        plan.changes.append(f"settings changed: {', '.join(changed)}")
    if plan.launched and {"seeds_per_prompt", "modality", "study_type"} & set(changed):
        plan.problems.append(
            "settings: seeds_per_prompt, modality and study_type are fixed once the study is "
            "launched"
        )
    plan.check("settings", study)
    for code in [f.name for f in fields.values() if f.name.startswith("completion_code_")]:
        taken = Study.objects.exclude(pk=study.pk).filter(**{code: getattr(study, code)})
        other = taken.values_list("slug", flat=True).first()
        if code in settings and other is not None:
            plan.problems.append(
                f"settings.{code}: study {other!r} has this code; a code names one study's "
                "outcome on Prolific (leave it out to draw a new one)"
            )
    systems = _rows_of(plan, System, data["systems"], "name")
    prompts = _rows_of(plan, Prompt, data.get("prompts", []), "text")
    criteria = _rows_of(plan, Criterion, data["criteria"], "key")
    current = {s.name: s for s in existing.systems.all()} if existing is not None else {}
    for name, values in systems.items():
        # What the row will hold: the file's values over the row's own (or the defaults).
        row = current.get(name) or System()
        backend = values.get("backend", row.backend)
        try:
            get_backend(backend).validate_params(values.get("backend_params", row.backend_params))
        except BackendParamsError as exc:
            plan.problems.append(f"systems[{name!r}].backend_params: {exc}")
    made_with = ["backend", "backend_params"]
    writes = [
        *_plan_rows(plan, System, systems, "name", fixed_with_media=made_with),
        *_plan_rows(plan, Prompt, prompts, "text", fixed_with_media=["text"]),
        *_plan_rows(plan, Criterion, criteria, "key", fixed_with_media=[]),
    ]
    if plan.problems:
        raise DefinitionError(plan.problems)
    if dry_run:
        transaction.set_rollback(True)
        return Applied(study, existing is None, plan.changes)
    try:
        with transaction.atomic():
            if existing is None or changed:
                study.save()
            for write in writes:
                write(study)
    except IntegrityError:  # another apply of the same file won the race
        raise DefinitionError(
            [f"slug: study {study.slug!r} was changed by another apply at the same moment; "
             "apply again"]
        ) from None  # fmt: skip
    return Applied(study, existing is None, plan.changes)


def _plan_rows(
    plan: _Plan,
    model: type[models.Model],
    given: dict[str, dict[str, Any]],
    key: str,
    *,
    fixed_with_media: list[str],
) -> list[Any]:
    """Check the rows of one kind against the study's and return the writes to make."""
    label = model._meta.verbose_name_plural
    have = (
        {str(getattr(r, key)): r for r in model._default_manager.filter(study=plan.study)}
        if plan.study is not None
        else {}
    )
    with_media: set[str] = set()
    if model in (System, Prompt) and plan.study is not None:
        made = model._default_manager.filter(study=plan.study, assets__isnull=False)
        with_media = {str(v) for v in made.values_list(key, flat=True)}
    added = [k for k in given if k not in have]
    removed = [k for k in have if k not in given]
    if plan.launched and (added or removed):
        plan.problems.append(
            f"{label}: a launched study's {label} are fixed (adding {len(added)}, removing "
            f"{len(removed)}); duplicate the study to change them"
        )
    for name in removed:
        if name in with_media:
            plan.problems.append(f"{label}[{name!r}]: has media, so it cannot be removed")
    writes: list[Any] = []
    order = {k: i for i, k in enumerate(given)}
    for name, values in given.items():
        row = have.get(name) or model(**{key: values[key]})
        if model is Criterion:
            values = {**values, "order": order[name]}
        changed = _update(row, values)
        if name in have and name in with_media and set(changed) & set(fixed_with_media):
            plan.problems.append(
                f"{label}[{name!r}]: its media were made with its "
                f"{' and '.join(fixed_with_media)}; add a new one instead"
            )
        plan.check(f"{label}[{name!r}]", row, exclude=["study"])
        if name not in have:
            writes.append(lambda s, row=row: _save(row, s))
        elif changed:
            plan.changes.append(f"{label}[{name!r}] changed: {', '.join(changed)}")
            writes.append(lambda s, row=row: row.save())
    if added:
        plan.changes.append(f"{label}: {len(added)} added")
    if removed:
        plan.changes.append(f"{label}: {len(removed)} removed")
        doomed = [have[k].pk for k in removed]
        writes.append(lambda s: model._default_manager.filter(pk__in=doomed).delete())
    return writes


def _save(row: models.Model, study: Study) -> None:
    row.study = study  # type: ignore[attr-defined]
    row.save()


def export_definition(study: Study) -> dict[str, Any]:
    """The study's design as a file's data (``to_yaml`` writes it): applying it to a
    study of the same slug changes nothing."""

    def row(instance: models.Model) -> dict[str, Any]:
        return {
            f.name: _plain(getattr(instance, f.name)) for f in _fields(type(instance), ROW_SKIP)
        }

    settings = {
        f.name: _plain(getattr(study, f.name)) for f in _fields(Study, STUDY_SKIP | {"name"})
    }
    return {
        "slug": study.slug,
        "name": study.name,
        "settings": settings,
        "systems": [row(s) for s in study.systems.order_by("pk")],
        "prompts": [row(p) for p in study.prompts.order_by("pk")],
        "criteria": [row(c) for c in study.criteria.order_by("order", "pk")],
    }


def to_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=88)
