"""Generation jobs: plan the missing (system, prompt, seed) items, make each one exactly once.

The Celery tasks in generation/tasks.py call these functions and nothing else. Every
function is idempotent: a redelivered or retried message finds the item already done (or
the asset already there) and changes nothing, which is what makes ``acks_late`` safe.
"""

import logging
import time
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from generation.backends import GeneratedMedia, GenerationRequest, get_backend
from generation.exceptions import BackendParamsError, GenerationRefused
from generation.ingest import IngestedMedia, ingest_media, make_attention_copy
from generation.models import GenerationJob, ItemStatus, JobItem, JobStatus
from studies import lifecycle
from studies.models import Asset, AssetKind, Study, System, new_public_id

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class PlannedItem:
    system_id: int
    prompt_id: int
    seed: int


def plan_missing(*, study: Study) -> list[PlannedItem]:
    """The items the study's systems should have and do not have yet.

    Raises GenerationRefused naming every system whose backend parameters are invalid.
    """
    prompts = list(study.prompts.order_by("pk").values_list("pk", "text"))
    systems = list(study.systems.order_by("pk"))
    if not systems:
        raise GenerationRefused(f"Study {study.name!r} has no systems to generate media for.")
    if not prompts:
        raise GenerationRefused(f"Study {study.name!r} has no prompts.")
    problems = []
    wanted: list[PlannedItem] = []
    for system in systems:
        try:
            backend = get_backend(system.backend)
            params = backend.validate_params(system.backend_params)
            items = backend.plan(
                params=params,
                system_name=system.name,
                prompts=prompts,
                seeds=range(study.seeds_per_prompt),
            )
        except BackendParamsError as exc:
            problems.append(f"system {system.name!r}: {exc}")
            continue
        wanted += [PlannedItem(system.pk, prompt_id, seed) for prompt_id, seed in items]
    if problems:
        raise GenerationRefused("Cannot generate: " + "; ".join(problems))
    existing = set(
        Asset.objects.outputs()
        .filter(system__study=study)
        .values_list("system_id", "prompt_id", "seed")
    )
    return [item for item in wanted if (item.system_id, item.prompt_id, item.seed) not in existing]


@transaction.atomic
def start_generation(*, study: Study, requested_by: User | None = None) -> GenerationJob:
    """Create a job for every missing item and queue it once the transaction commits."""
    running = GenerationJob.objects.unfinished().filter(study=study).first()
    if running is not None:
        raise GenerationRefused(
            f"Generation job {running.pk} of {study.name!r} is still {running.status}; "
            "wait for it or cancel it first."
        )
    items = plan_missing(study=study)
    lifecycle.begin_generation(study=study)
    job = GenerationJob.objects.create(study=study, expected=len(items), requested_by=requested_by)
    JobItem.objects.bulk_create(
        [
            JobItem(job=job, system_id=i.system_id, prompt_id=i.prompt_id, seed=i.seed)
            for i in items
        ],
        batch_size=1000,
    )
    if not items:
        _finish(job)
        job.save()
        return job
    # Imported here: the tasks module imports this one.
    from generation.tasks import dispatch_job

    dispatch_job.delay_on_commit(job.pk)  # type: ignore[attr-defined]  # not in celery-types
    return job


def dispatch(*, job_id: int) -> list[tuple[int, str]]:
    """Mark the job running; return its pending items with the queue each belongs on."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return []
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.RUNNING
            job.started_at = timezone.now()
            job.save(update_fields=["status", "started_at"])
    pending = JobItem.objects.filter(job_id=job_id, status=ItemStatus.PENDING).values_list(
        "pk", "system__backend"
    )
    return [(pk, get_backend(backend).queue) for pk, backend in pending]


def generate_asset(*, item_id: int, attempt: int = 0) -> Asset | None:
    """Make, ingest and store the item's output (and its attention-check copy).

    Returns the asset, or None when the job was cancelled or deleted (its study was, while
    the message waited). Backend and ingest errors propagate: the task retries BackendBusy
    and records anything else as a failure.
    """
    item = (
        JobItem.objects.select_related("job", "system__study", "prompt").filter(pk=item_id).first()
    )
    if item is None:
        log.info("generation item %s no longer exists: nothing to make", item_id)
        return None
    if item.job.status == JobStatus.CANCELLED:
        return None
    if item.status == ItemStatus.DONE:
        return item.asset
    system, prompt = item.system, item.prompt
    existing = Asset.objects.outputs().filter(system=system, prompt=prompt, seed=item.seed).first()
    if existing is not None:
        _complete(item_id=item_id, job_id=item.job_id, asset=existing)
        return existing
    backend = get_backend(system.backend)
    started = time.perf_counter()
    media = backend.generate(
        GenerationRequest(
            system_name=system.name,
            prompt_text=prompt.text,
            prompt_category=prompt.category,
            seed=item.seed,
            params=system.backend_params,
            modality=system.study.modality,
            attempt=attempt,
        )
    )
    # The readiness view's figures: wall seconds as this worker timed the backend (a
    # backend's own "seconds" wins: it knows what was queueing), and the try it took.
    meta = {"seconds": round(time.perf_counter() - started, 4), **media.metadata}
    meta["attempt"] = attempt + 1
    return finish_item(item=item, media=media, meta=meta)


def finish_item(*, item: JobItem, media: GeneratedMedia, meta: dict[str, object]) -> Asset:
    """Ingest what a backend made for the item by its study's modality, store it (with its
    poster and attention-check copy) and count the item done.

    ``item`` comes with ``system__study`` loaded; ``meta`` is stored as the asset's
    generation_meta as given. Ingest errors propagate, as from generate_asset.
    """
    system = item.system
    ingested = ingest_media(media.data, modality=system.study.modality)
    # Checks are damaged copies of outputs; a real image set's are never shown.
    wants_copy = system.study.needs_attention_copies and not system.is_real
    copy = make_attention_copy(ingested) if wants_copy else None
    return _store(item=item, system=system, ingested=ingested, copy=copy, meta=meta)


def _save_file(media: IngestedMedia, public_id: str) -> tuple[str, str]:
    """Store the medium (and its poster) under names made of the opaque id only."""
    name = default_storage.save(f"a/{public_id}{media.extension}", ContentFile(media.data))
    poster = ""
    if media.poster is not None:
        poster = default_storage.save(f"a/{public_id}-poster.png", ContentFile(media.poster))
    return name, poster


def _asset_fields(
    media: IngestedMedia, names: tuple[str, str], public_id: str
) -> dict[str, object]:
    name, poster = names
    return {
        "public_id": public_id,
        "file": name,
        "poster": poster,
        "media_type": media.media_type,
        "width": media.width,
        "height": media.height,
        "duration_s": media.duration_s,
        "byte_size": len(media.data),
        "sha256": media.sha256,
    }


def _store(
    *,
    item: JobItem,
    system: System,
    ingested: IngestedMedia,
    copy: IngestedMedia | None,
    meta: dict[str, object],
) -> Asset:
    public_id = new_public_id()
    names = _save_file(ingested, public_id)
    copy_id = new_public_id()
    copy_names = _save_file(copy, copy_id) if copy else None
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                system=system,
                prompt_id=item.prompt_id,
                seed=item.seed,
                generation_meta=meta,
                **_asset_fields(ingested, names, public_id),
            )
            if copy is not None and copy_names is not None:
                Asset.objects.create(
                    system=system,
                    prompt_id=item.prompt_id,
                    seed=item.seed,
                    kind=AssetKind.ATTENTION,
                    source=asset,
                    generation_meta={"attention_copy_of": public_id},
                    **_asset_fields(copy, copy_names, copy_id),
                )
    except IntegrityError:
        # Another delivery of the same item won the race: keep its asset, drop our files.
        for stored in (*names, *(copy_names or ())):
            if stored:
                default_storage.delete(stored)
        asset = Asset.objects.outputs().get(system=system, prompt_id=item.prompt_id, seed=item.seed)
    _complete(item_id=item.pk, job_id=item.job_id, asset=asset)
    return asset


def _finish(job: GenerationJob) -> None:
    """Close a job whose items are all accounted for (caller saves and holds the lock)."""
    job.status = JobStatus.SUCCEEDED if job.failed == 0 else JobStatus.FAILED
    job.finished_at = timezone.now()
    if job.failed:
        first = (
            JobItem.objects.filter(job=job, status=ItemStatus.FAILED)
            .order_by("pk")
            .values_list("error", flat=True)
            .first()
        )
        job.error = f"{job.failed} of {job.expected} items failed; first error: {first}"
    lifecycle.finish_generation(study=job.study)


def _transition(*, item_id: int, job_id: int, status: str, asset: Asset | None, error: str) -> bool:
    """Move a pending item to done or failed and count it on its job, exactly once."""
    with transaction.atomic():
        job = (
            GenerationJob.objects.select_for_update(of=("self",))
            .select_related("study")
            .get(pk=job_id)
        )
        # updated_at by hand: a queryset update skips auto_now, and the recovery sweep
        # reads it as the job's progress.
        moved = JobItem.objects.filter(pk=item_id, status=ItemStatus.PENDING).update(
            status=status,
            asset=asset,
            error=error[:MAX_ERROR_CHARS],
            attempts=F("attempts") + 1,
            updated_at=timezone.now(),
        )
        if not moved:
            return False
        if status == ItemStatus.DONE:
            job.done += 1
        else:
            job.failed += 1
        fields = ["done", "failed"]
        if job.done + job.failed >= job.expected and not job.is_finished:
            _finish(job)
            fields += ["status", "finished_at", "error"]
        job.save(update_fields=fields)
        return True


def _complete(*, item_id: int, job_id: int, asset: Asset) -> None:
    _transition(item_id=item_id, job_id=job_id, status=ItemStatus.DONE, asset=asset, error="")


def record_failure(*, item_id: int, error: str) -> None:
    """The item will not be made (permanent error, or retries used up)."""
    job_id = JobItem.objects.values_list("job_id", flat=True).filter(pk=item_id).first()
    if job_id is None:  # deleted with its study while the message waited
        return
    if _transition(
        item_id=item_id, job_id=job_id, status=ItemStatus.FAILED, asset=None, error=error
    ):
        log.warning("generation item %s failed: %s", item_id, error)


def record_retry(*, item_id: int, error: str) -> None:
    """A transient failure: the item stays pending and will be tried again."""
    with transaction.atomic():
        item = JobItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None or item.status != ItemStatus.PENDING:
            return
        item.attempts += 1
        item.error = error[:MAX_ERROR_CHARS]
        item.save(update_fields=["attempts", "error", "updated_at"])
        GenerationJob.objects.filter(pk=item.job_id).update(retried=F("retried") + 1)


@transaction.atomic
def cancel_job(*, job: GenerationJob) -> GenerationJob:
    """Stop a job: queued items are skipped when their task runs; the study leaves
    'generating'."""
    locked = (
        GenerationJob.objects.select_for_update(of=("self",)).select_related("study").get(pk=job.pk)
    )
    if locked.is_finished:
        raise GenerationRefused(f"Generation job {locked.pk} has already finished.")
    locked.status = JobStatus.CANCELLED
    locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "finished_at"])
    lifecycle.finish_generation(study=locked.study)
    return locked
