"""Sweeps after faults: stalled generation jobs are sent again (and finish with one asset
per item), and media files that no row names are deleted once past their grace."""

import os
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from generation import jobs, recovery, tasks
from generation.models import GenerationJob, ItemStatus, JobItem, JobStatus
from studies.models import Asset
from tests.factories import make_prompt, make_ready_study, make_study, make_system, png_bytes

pytestmark = pytest.mark.django_db


def _age(name: str, hours: float) -> None:
    path = default_storage.path(name)
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_orphaned_files_past_their_grace_are_deleted_and_named_ones_kept() -> None:
    study = make_ready_study(systems=2, prompts=1)
    kept = list(Asset.objects.filter(system__study=study).values_list("file", flat=True))
    old_orphan = default_storage.save("a/left-by-a-failed-store.png", ContentFile(png_bytes()))
    new_orphan = default_storage.save("a/being-stored-now.png", ContentFile(png_bytes()))
    ref_orphan = default_storage.save("ref/lost.png", ContentFile(png_bytes()))
    for name in [*kept, old_orphan, ref_orphan]:
        _age(name, 48)
    listed = recovery.sweep_orphan_media(older_than=timedelta(hours=24), dry_run=True)
    assert sorted(listed) == sorted([old_orphan, ref_orphan])
    assert default_storage.exists(old_orphan)  # a dry run deletes nothing
    assert recovery.sweep_orphan_media(older_than=timedelta(hours=24)) == listed
    assert not default_storage.exists(old_orphan) and not default_storage.exists(ref_orphan)
    assert default_storage.exists(new_orphan)
    assert all(default_storage.exists(name) for name in kept)


def _stalled_job(minutes_ago: float) -> GenerationJob:
    study = make_study(status="draft")
    make_system(study)
    make_system(study)
    make_prompt(study)
    job = jobs.start_generation(study=study)
    then = timezone.now() - timedelta(minutes=minutes_ago)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, created_at=then, started_at=then
    )
    JobItem.objects.filter(job=job).update(updated_at=then)
    job.refresh_from_db()
    return job


def test_a_stalled_job_has_its_pending_items_sent_again_and_finishes_once() -> None:
    stalled = _stalled_job(minutes_ago=45)
    moving = _stalled_job(minutes_ago=5)
    first = stalled.items.order_by("pk").first()
    assert first is not None
    jobs.generate_asset(item_id=first.pk)  # done before the worker died
    JobItem.objects.filter(pk=first.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with mock.patch.object(tasks.generate_asset, "apply_async") as send:
        result = recovery.requeue_stalled(quiet_for=timedelta(minutes=30))
    pending = list(
        JobItem.objects.filter(job=stalled, status=ItemStatus.PENDING).values_list("pk", flat=True)
    )
    assert result == recovery.Requeued(jobs=1, items=len(pending))
    assert sorted(call.args[0][0] for call in send.call_args_list) == sorted(pending)
    assert {call.kwargs["queue"] for call in send.call_args_list} == {"gpu"}
    assert not any(
        call.args[0][0] in moving.items.values_list("pk", flat=True) for call in send.call_args_list
    )
    # The second sweep waits another quiet period.
    with mock.patch.object(tasks.generate_asset, "apply_async") as again:
        assert recovery.requeue_stalled(quiet_for=timedelta(minutes=30)).items == 0
    assert not again.called
    # Each item delivered twice (the lost message came back after all): one asset each.
    for item_id in pending * 2:
        jobs.generate_asset(item_id=item_id)
    stalled.refresh_from_db()
    assert stalled.status == JobStatus.SUCCEEDED
    outputs = Asset.objects.outputs().filter(system__study=stalled.study)
    assert outputs.count() == stalled.expected


def test_a_job_finishing_items_now_is_not_stalled() -> None:
    job = _stalled_job(minutes_ago=45)
    item = job.items.order_by("pk").first()
    assert item is not None
    jobs.generate_asset(item_id=item.pk)  # progress now, on a job started long ago
    with mock.patch.object(tasks.generate_asset, "apply_async") as send:
        assert recovery.requeue_stalled(quiet_for=timedelta(minutes=30)).jobs == 0
    assert not send.called


def test_a_queued_job_whose_dispatch_was_lost_is_dispatched(
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = _stalled_job(minutes_ago=90)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, started_at=None)
    with mock.patch.object(tasks.dispatch_job, "delay") as dispatch:
        call_command("recover", "--quiet", "30", "--grace", "24")
    dispatch.assert_called_once_with(job.pk)
    out = capsys.readouterr().out
    assert "Stalled jobs: 1; items sent again: 0." in out
    assert "Orphaned media files deleted: 0." in out
