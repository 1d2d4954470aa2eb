from unittest import mock

import pytest

from generation import tasks
from generation.exceptions import BackendBusy, IngestError


def test_generate_asset_task_passes_the_retry_count_as_attempt() -> None:
    with mock.patch.object(tasks.jobs, "generate_asset") as service:
        tasks.generate_asset.apply(args=(41,), retries=3).get()
    service.assert_called_once_with(item_id=41, attempt=3)


def test_busy_backend_is_retried_and_the_retry_recorded() -> None:
    with (
        mock.patch.object(
            tasks.jobs, "generate_asset", side_effect=[BackendBusy("gpu full"), None]
        ) as service,
        mock.patch.object(tasks.jobs, "record_retry") as record_retry,
        mock.patch.object(tasks.jobs, "record_failure") as record_failure,
    ):
        tasks.generate_asset.apply(args=(7,)).get()
    assert [c.kwargs["attempt"] for c in service.call_args_list] == [0, 1]
    record_retry.assert_called_once_with(item_id=7, error="BackendBusy: gpu full")
    record_failure.assert_not_called()


def test_permanent_error_is_recorded_as_failure_without_retry() -> None:
    with (
        mock.patch.object(
            tasks.jobs, "generate_asset", side_effect=IngestError("truncated")
        ) as service,
        mock.patch.object(tasks.jobs, "record_retry") as record_retry,
        mock.patch.object(tasks.jobs, "record_failure") as record_failure,
    ):
        result = tasks.generate_asset.apply(args=(9,))
    with pytest.raises(IngestError):
        result.get()
    assert service.call_count == 1
    record_retry.assert_not_called()
    record_failure.assert_called_once_with(item_id=9, error="IngestError: truncated")


def test_retries_run_out_into_a_recorded_failure() -> None:
    with (
        mock.patch.object(
            tasks.jobs, "generate_asset", side_effect=BackendBusy("still busy")
        ) as service,
        mock.patch.object(tasks.jobs, "record_retry"),
        mock.patch.object(tasks.jobs, "record_failure") as record_failure,
    ):
        result = tasks.generate_asset.apply(args=(5,))
    with pytest.raises(BackendBusy):
        result.get()
    assert service.call_count == (tasks.generate_asset.max_retries or 0) + 1
    record_failure.assert_called_once_with(item_id=5, error="BackendBusy: still busy")


@pytest.mark.django_db  # dispatch reads the items' systems to group batches
def test_dispatch_sends_each_item_to_its_backends_queue() -> None:
    with (
        mock.patch.object(tasks.jobs, "dispatch", return_value=[(1, "gpu"), (2, "default")]),
        mock.patch.object(tasks.generate_asset, "apply_async") as send,
    ):
        tasks.dispatch_job.apply(args=(3,)).get()
    assert send.call_args_list == [mock.call((1,), queue="gpu"), mock.call((2,), queue="default")]


def test_generation_task_routes_to_the_gpu_queue_by_default(settings: object) -> None:
    from config.celery import app

    route = app.amqp.router.route({}, "generation.generate_asset")
    assert route["queue"].name == "gpu"
    assert app.amqp.router.route({}, "generation.dispatch_job")["queue"].name == "default"
