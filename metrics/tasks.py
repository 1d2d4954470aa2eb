"""Celery tasks: thin wrappers over metrics.runs, routed to the gpu queue (settings)."""

from celery import shared_task

from metrics import runs


@shared_task(name="metrics.compute_set_metrics", acks_late=True, reject_on_worker_lost=True)
def compute_set_metrics(run_id: int) -> None:
    runs.execute_run(run_id=run_id)


@shared_task(name="metrics.compute_measures", acks_late=True, reject_on_worker_lost=True)
def compute_measures(run_id: int) -> None:
    runs.execute_run(run_id=run_id)
