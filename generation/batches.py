"""Generation in batches: several items of one system made by one backend call.

A backend with ``generate_batch(requests) -> list[GeneratedMedia]`` (the diffusers
backends) gets a job's pending items grouped by system, ``batch_size`` (a backend
parameter) at a time; every other backend gets one task per item, as before.

A batch that runs out of GPU memory is split in halves and each half tried again, down to
single items; an item that still does not fit is recorded as failed. The task therefore
never dies of it, and a redelivered message cannot loop on the same out-of-memory crash.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from generation import jobs
from generation.backends import Backend, GeneratedMedia, GenerationRequest, get_backend
from generation.exceptions import BackendError, BackendParamsError, IngestError
from generation.models import ItemStatus, JobItem, JobStatus
from studies.models import Asset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispatch:
    """One message to send: a batch of one system's items, or a single item."""

    item_ids: tuple[int, ...]
    queue: str
    batched: bool


def _batch_size(backend: Backend, params: object) -> int | None:
    """Items per call for a batch-capable backend, else None (one task per item)."""
    if not hasattr(backend, "generate_batch"):
        return None
    try:
        clean = backend.validate_params(params)  # type: ignore[arg-type]
    except BackendParamsError:
        return None  # generate_asset records the error on the item
    return int(clean.get("batch_size", 1))


def plan_dispatch(*, job_id: int) -> list[Dispatch]:
    """Mark the job running (jobs.dispatch) and group its pending items into messages:
    the batches of each batch-capable system (systems in id order), then single items."""
    pending = jobs.dispatch(job_id=job_id)
    if not pending:
        return []
    queues = dict(pending)
    rows = (
        JobItem.objects.filter(job_id=job_id, status=ItemStatus.PENDING)
        .order_by("system_id", "pk")
        .values_list("pk", "system_id", "system__backend", "system__backend_params")
    )
    groups: dict[int, tuple[int, list[int]]] = {}
    for pk, system_id, backend_name, params in rows:
        if pk not in queues:
            continue
        size = _batch_size(get_backend(backend_name), params)
        if size is not None:
            groups.setdefault(system_id, (size, []))[1].append(pk)
    batched = {pk for _, ids in groups.values() for pk in ids}
    out = [
        Dispatch(tuple(ids[i : i + size]), queues[ids[0]], batched=True)
        for _, (size, ids) in sorted(groups.items())
        for i in range(0, len(ids), size)
    ]
    out += [Dispatch((pk,), queue, batched=False) for pk, queue in pending if pk not in batched]
    return out


def _out_of_memory(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError is a RuntimeError; so are the other devices' versions.
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _make(
    generate: Callable[[Sequence[GenerationRequest]], list[GeneratedMedia]],
    requests: Sequence[GenerationRequest],
) -> list[GeneratedMedia | str]:
    """Each request's medium, or the out-of-memory error it still met when made alone."""
    started = time.perf_counter()
    try:
        made = generate(requests)
    except RuntimeError as exc:
        if not _out_of_memory(exc):
            raise
        error = f"{type(exc).__name__}: {exc}"
    else:
        if len(made) != len(requests):
            raise BackendError(f"the backend made {len(made)} media for {len(requests)} items.")
        wall = time.perf_counter() - started
        # The backend's own figures win, as in jobs.generate_asset.
        return [
            GeneratedMedia(m.data, {"seconds": round(wall / len(made), 4), **m.metadata})
            for m in made
        ]
    # Retried outside the except block: its traceback holds the failed call's tensors.
    if len(requests) == 1:
        log.warning("out of memory on a single item: %s", error)
        return [error]
    half = (len(requests) + 1) // 2
    log.info("out of memory on a batch of %s: trying %s and %s", len(requests), half,
             len(requests) - half)  # fmt: skip
    return _make(generate, requests[:half]) + _make(generate, requests[half:])


def generate_batch(*, item_ids: list[int], attempt: int = 0) -> list[Asset | None]:
    """Make, ingest and store the items (all of one system) with one backend call.

    Returns each item's asset in order, or None for an item that is gone, cancelled,
    failed earlier or failed now. Idempotent like jobs.generate_asset: items already done
    or whose output exists are not made again. BackendBusy and BackendError from the
    backend propagate (the task retries the first, records the second on every item).
    """
    items = {
        item.pk: item
        for item in JobItem.objects.select_related("job", "system__study", "prompt").filter(
            pk__in=item_ids
        )
    }
    results: dict[int, Asset | None] = {}
    todo: list[JobItem] = []
    for item_id in item_ids:
        item = items.get(item_id)
        if item is None or item.job.status == JobStatus.CANCELLED:
            results[item_id] = None
        elif item.status == ItemStatus.DONE:
            results[item_id] = item.asset
        elif item.status == ItemStatus.FAILED:
            results[item_id] = None
        elif (
            Asset.objects.outputs()
            .filter(system_id=item.system_id, prompt_id=item.prompt_id, seed=item.seed)
            .exists()
        ):
            # Made by an earlier delivery: generate_asset completes the item, makes nothing.
            results[item_id] = jobs.generate_asset(item_id=item_id, attempt=attempt)
        else:
            todo.append(item)
    if not todo:
        return [results[i] for i in item_ids]
    system = todo[0].system
    if any(item.system_id != system.pk for item in todo):
        raise ValueError(f"items {item_ids} belong to more than one system.")
    backend: Any = get_backend(system.backend)
    generate = getattr(backend, "generate_batch", None) or (
        lambda requests: [backend.generate(r) for r in requests]
    )
    requests = [
        GenerationRequest(
            system_name=system.name,
            prompt_text=item.prompt.text,
            prompt_category=item.prompt.category,
            seed=item.seed,
            params=system.backend_params,
            modality=system.study.modality,
            attempt=attempt,
        )
        for item in todo
    ]
    for item, media in zip(todo, _make(generate, requests), strict=True):
        if isinstance(media, str):
            jobs.record_failure(item_id=item.pk, error=media)
            results[item.pk] = None
            continue
        try:
            results[item.pk] = jobs.finish_item(
                item=item, media=media, meta={**media.metadata, "attempt": attempt + 1}
            )
        except (IngestError, BackendError) as exc:
            # One bad medium must not lose the rest of the batch.
            jobs.record_failure(item_id=item.pk, error=f"{type(exc).__name__}: {exc}")
            results[item.pk] = None
    return [results[i] for i in item_ids]
