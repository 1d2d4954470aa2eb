"""Celery tasks: thin wrappers over generation.jobs and generation.batches."""

from typing import Any

from celery import Task, shared_task

from generation import batches, jobs
from generation.exceptions import BackendBusy

# Generation's delivery and retry policy: a lost worker's message is delivered again,
# only a transient backend error is retried, with backoff.
ITEM_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (BackendBusy,),
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class ItemTask(Task[Any, Any]):
    """Records retries and final failures on the task's items (an item already done is
    left as it is)."""

    def item_ids(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int]:
        return [int(kwargs["item_id"] if "item_id" in kwargs else args[0])]

    def on_retry(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        for item_id in self.item_ids(args, kwargs):
            jobs.record_retry(item_id=item_id, error=_error(exc))

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        for item_id in self.item_ids(args, kwargs):
            jobs.record_failure(item_id=item_id, error=_error(exc))


class BatchTask(ItemTask):
    def item_ids(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int]:
        return [int(i) for i in (kwargs["item_ids"] if "item_ids" in kwargs else args[0])]


@shared_task(base=ItemTask, name="generation.generate_asset", **ITEM_TASK_OPTIONS)
def generate_asset(self: Task[Any, Any], item_id: int) -> None:
    jobs.generate_asset(item_id=item_id, attempt=self.request.retries)


@shared_task(base=BatchTask, name="generation.generate_batch", **ITEM_TASK_OPTIONS)
def generate_batch(self: Task[Any, Any], item_ids: list[int]) -> None:
    batches.generate_batch(item_ids=item_ids, attempt=self.request.retries)


@shared_task(name="generation.dispatch_job", acks_late=True)
def dispatch_job(job_id: int) -> None:
    for message in batches.plan_dispatch(job_id=job_id):
        if message.batched:
            generate_batch.apply_async((list(message.item_ids),), queue=message.queue)
        else:
            generate_asset.apply_async(message.item_ids, queue=message.queue)
