"""Bring existing outputs into a study: a manifest's systems and prompts, then a job."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from generation import jobs
from generation.backends.importer import (
    ImportBackend,
    inside_import_root,
    media_kind,
    read_manifest,
)
from generation.exceptions import BackendParamsError, ImportArchiveError
from generation.models import GenerationJob
from studies.models import Prompt, Study, System


def save_upload(*, upload: UploadedFile) -> Path:
    """Keep an uploaded zip under IMPORT_ROOT (outside MEDIA_ROOT: it names systems)."""
    if not upload.name or not upload.name.lower().endswith(".zip"):
        raise ImportArchiveError([f"{upload.name!r} is not a .zip file"])
    limit = settings.IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise ImportArchiveError(
            [f"{upload.name!r} is {upload.size:,} bytes, above the limit of {limit:,} "
             "(VERDICT_IMPORT_MAX_BYTES); put it under the import folder and give its path"]
        )  # fmt: skip
    root = Path(settings.IMPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{secrets.token_urlsafe(12)}.zip"
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


def import_upload(
    *, study: Study, upload: UploadedFile, requested_by: User | None = None
) -> GenerationJob:
    """Save an uploaded zip and import it; a refused archive is deleted again, so a
    refusal leaves nothing behind."""
    saved = save_upload(upload=upload)
    try:
        return import_media(study=study, path=saved, requested_by=requested_by)
    except Exception:
        saved.unlink(missing_ok=True)
        raise


def server_path(raw: str) -> Path:
    """A folder or zip already on the server: only under IMPORT_ROOT."""
    try:
        return inside_import_root(raw)
    except BackendParamsError as exc:
        raise ImportArchiveError([str(exc).rstrip(".")]) from None


@transaction.atomic
def import_media(*, study: Study, path: Path, requested_by: User | None = None) -> GenerationJob:
    """Add the manifest's systems (import backend) and prompts, then queue a job that reads
    and ingests every listed file the study does not have yet."""
    rows = read_manifest(path)
    medium = {"image": "an image", "video": "a video"}.get(study.modality, study.modality)
    problems = [
        f"line {r.line}: {r.file!r} is not {medium}, and this is {medium} study"
        for r in rows
        if media_kind(r.file) != study.modality
    ]
    if problems:
        raise ImportArchiveError(problems)
    existing = {s.name: s for s in study.systems.all()}
    params = {"path": str(path)}
    for name in sorted({r.system for r in rows}):
        system = existing.get(name)
        if system is None:
            System.objects.create(
                study=study, name=name, backend=ImportBackend.name, backend_params=params
            )
        elif system.backend != ImportBackend.name:
            problems.append(f"system {name!r} already exists with the {system.backend} backend")
        elif system.backend_params != params:
            # A newer archive for the same system replaces the old source.
            system.backend_params = params
            system.save(update_fields=["backend_params"])
    if problems:
        raise ImportArchiveError(problems)
    known = set(study.prompts.values_list("text", flat=True))
    new_prompts: dict[str, str] = {}
    for row in rows:
        if row.prompt not in known:
            new_prompts.setdefault(row.prompt, row.category)
    Prompt.objects.bulk_create(
        [
            Prompt(study=study, text=text, category=category)
            for text, category in new_prompts.items()
        ]
    )
    return jobs.start_generation(study=study, requested_by=requested_by)
