"""Celery tasks: thin wrappers over generation.jobs."""

from typing import Any

from celery import Task, shared_task

from generation import batches, jobs
from generation.exceptions import BackendBusy


def _item_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return int(kwargs["item_id"] if "item_id" in kwargs else args[0])


class ItemTask(Task[Any, Any]):
    """Records retries and final failures of an item on its job."""

    def on_retry(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        jobs.record_retry(item_id=_item_id(args, kwargs), error=f"{type(exc).__name__}: {exc}")

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        jobs.record_failure(item_id=_item_id(args, kwargs), error=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=ItemTask,
    bind=True,
    name="generation.generate_asset",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(BackendBusy,),
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=5,
)
def generate_asset(self: Task[Any, Any], item_id: int) -> None:
    jobs.generate_asset(item_id=item_id, attempt=self.request.retries)


class BatchTask(Task[Any, Any]):
    """Records retries and final failures on every item of a batch (items already done
    are left as they are)."""

    def on_retry(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        for item_id in _item_ids(args, kwargs):
            jobs.record_retry(item_id=item_id, error=f"{type(exc).__name__}: {exc}")

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        for item_id in _item_ids(args, kwargs):
            jobs.record_failure(item_id=item_id, error=f"{type(exc).__name__}: {exc}")


def _item_ids(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int]:
    return [int(i) for i in (kwargs["item_ids"] if "item_ids" in kwargs else args[0])]


@shared_task(
    base=BatchTask,
    bind=True,
    name="generation.generate_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(BackendBusy,),
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=5,
)
def generate_batch(self: Task[Any, Any], item_ids: list[int]) -> None:
    batches.generate_batch(item_ids=item_ids, attempt=self.request.retries)


@shared_task(name="generation.dispatch_job", acks_late=True)
def dispatch_job(job_id: int) -> None:
    for message in batches.plan_dispatch(job_id=job_id):
        if message.batched:
            generate_batch.apply_async((list(message.item_ids),), queue=message.queue)
        else:
            generate_asset.apply_async(message.item_ids, queue=message.queue)
