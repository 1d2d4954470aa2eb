"""Metric runs: requested from the admin, executed by a worker, their outcome recorded."""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from metrics import compute
from metrics.extractors import ExtractorUnavailable
from metrics.models import MetricRun, ReferenceSet, RunKind, RunStatus
from studies.models import Study


def create_run(
    *,
    study: Study,
    kind: str,
    extractor: str = "",
    reference_set: ReferenceSet | None = None,
    requested_by: User | None = None,
) -> MetricRun:
    """Record a run (not started)."""
    if kind == RunKind.SET and reference_set is None:
        raise compute.MetricsError("Set metrics need a reference set: upload one first.")
    return MetricRun.objects.create(
        study=study, kind=kind, extractor=extractor, reference_set=reference_set,
        requested_by=requested_by,
    )  # fmt: skip


def request_run(
    *,
    study: Study,
    kind: str,
    extractor: str = "",
    reference_set: ReferenceSet | None = None,
    requested_by: User | None = None,
) -> MetricRun:
    """Record a run and queue it on the gpu queue once the request's transaction commits."""
    from metrics import tasks  # tasks import this module

    run = create_run(
        study=study, kind=kind, extractor=extractor, reference_set=reference_set,
        requested_by=requested_by,
    )  # fmt: skip
    task = tasks.compute_set_metrics if kind == RunKind.SET else tasks.compute_measures
    transaction.on_commit(lambda: task.delay(run_id=run.pk))
    return run


def execute_run(*, run_id: int) -> MetricRun | None:
    """Do the run's work and record how it went; a refusal (no weights, too few images)
    is a failed run with the reason, never a crashed worker."""
    run = MetricRun.objects.filter(pk=run_id).select_related("study", "reference_set").first()
    if run is None or run.status == RunStatus.DONE:
        return run  # deleted, or delivered again (a run is idempotent: values are replaced)
    MetricRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    try:
        if run.kind == RunKind.SET:
            if run.reference_set is None:
                raise compute.MetricsError("The run's reference set was deleted.")
            written = compute.compute_set_metrics(
                study=run.study, reference_set=run.reference_set,
                extractor_name=run.extractor, run=run,
            )  # fmt: skip
        else:
            written = compute.compute_measures(study=run.study, run=run)
    except (compute.MetricsError, ExtractorUnavailable, ValueError) as exc:
        status, message, written = RunStatus.FAILED, str(exc), 0
    except Exception as exc:
        MetricRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )  # fmt: skip
        raise
    else:
        status, message = RunStatus.DONE, ""
    MetricRun.objects.filter(pk=run.pk).update(
        status=status, message=message, values_written=written, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run
