"""Sweeps that keep jobs and storage whole after faults.

- ``requeue_stalled``: a job that made no progress for a while, with items still pending,
  has its pending items sent again. The embedded file broker loses the messages a killed
  worker had taken (Redis keeps them, acks_late), and a lost dispatch leaves a job queued
  for ever; sending an item twice is harmless (generation.jobs.generate_asset returns the
  stored asset of an item already done, and two stores of one item keep one asset).
- ``sweep_orphan_media``: files in the media store that no row names, left by a store
  whose transaction failed after the file was written, deleted after a grace period (a
  file being stored right now is younger than that).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.core.files.storage import default_storage
from django.db.models import FileField, Max
from django.utils import timezone

from generation.backends import get_backend
from generation.models import GenerationJob, ItemStatus, JobItem, JobStatus

# The stored media's folders (studies' outputs and attention copies, metrics' reference
# images); which files are named comes from every model's file fields.
MEDIA_FOLDERS = ("a", "ref")


@dataclass(frozen=True)
class Requeued:
    jobs: int
    items: int


def requeue_stalled(*, quiet_for: timedelta) -> Requeued:
    """Send again the pending items of every unfinished job with no item finished (and
    no dispatch) within ``quiet_for``; a queued job never dispatched is dispatched."""
    from generation.tasks import dispatch_job, generate_asset

    cutoff = timezone.now() - quiet_for
    jobs = items = 0
    for job in GenerationJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]):
        last = JobItem.objects.filter(job=job).aggregate(last=Max("updated_at"))["last"]
        moved = max(t for t in (job.created_at, job.started_at, last) if t is not None)
        if moved >= cutoff:
            continue
        jobs += 1
        if job.status == JobStatus.QUEUED:
            dispatch_job.delay(job.pk)
            continue
        pending = JobItem.objects.filter(job=job, status=ItemStatus.PENDING)
        for item_id, backend in pending.values_list("pk", "system__backend"):
            generate_asset.apply_async((item_id,), queue=get_backend(backend).queue)
            items += 1
        # Counts as progress: the next sweep waits another quiet period.
        pending.update(updated_at=timezone.now())
    return Requeued(jobs=jobs, items=items)


def _stored_files() -> Iterator[str]:
    for folder in MEDIA_FOLDERS:
        if not default_storage.exists(folder):
            continue
        stack = [folder]
        while stack:
            here = stack.pop()
            dirs, files = default_storage.listdir(here)
            stack += [f"{here}/{d}" for d in dirs]
            yield from (f"{here}/{f}" for f in files)


def sweep_orphan_media(*, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Delete (or with ``dry_run`` only list) stored files no asset or reference image
    names and last modified before ``older_than`` ago; returns their names."""
    cutoff = timezone.now() - older_than
    named: set[str] = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, FileField):
                rows = model._default_manager.values_list(field.attname, flat=True)
                named.update(str(name) for name in rows.iterator() if name)
    orphans = [
        name
        for name in _stored_files()
        if name not in named and default_storage.get_modified_time(name) < cutoff
    ]
    if not dry_run:
        for name in orphans:
            default_storage.delete(name)
    return orphans
