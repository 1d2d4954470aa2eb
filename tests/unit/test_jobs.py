import hashlib

import pytest
from django.core.files.storage import default_storage

from generation import jobs
from generation.backends import GeneratedMedia
from generation.exceptions import BackendBusy, GenerationRefused, IngestError
from generation.ingest import ingest_image
from generation.models import GenerationJob, ItemStatus, JobItem, JobStatus
from generation.video import probe
from studies.models import Asset, AssetKind, StudyStatus
from tests.factories import make_prompt, make_study, make_system, png_bytes

pytestmark = pytest.mark.django_db

SMALL = {"width": 48, "height": 48}


def _study(systems: int = 2, prompts: int = 2, **overrides: object):
    study = make_study(**overrides)
    for _ in range(systems):
        make_system(study, backend_params=SMALL)
    for i in range(prompts):
        make_prompt(study, text=f"a red circle and {i} stars")
    return study


def _items(job: GenerationJob) -> list[int]:
    return list(job.items.order_by("pk").values_list("pk", flat=True))


def test_start_generation_plans_every_missing_item_and_queues_on_commit(
    django_capture_on_commit_callbacks,
) -> None:
    study = _study(systems=2, prompts=3, seeds_per_prompt=2)
    with django_capture_on_commit_callbacks() as callbacks:
        job = jobs.start_generation(study=study)
    assert job.expected == 2 * 3 * 2 == job.items.count()
    assert len(callbacks) == 1  # one dispatch message, sent only after commit
    study.refresh_from_db()
    assert study.status == StudyStatus.GENERATING


def test_generate_asset_stores_output_and_attention_copy_and_finishes_job() -> None:
    study = _study(systems=1, prompts=1, attention_check_rate=0.2)
    job = jobs.start_generation(study=study)
    asset = jobs.generate_asset(item_id=_items(job)[0])
    assert asset is not None and asset.kind == AssetKind.OUTPUT
    assert default_storage.exists(asset.file.name)
    assert asset.file.name == f"a/{asset.public_id}.png"
    copy = asset.attention_copies.get()
    assert copy.kind == AssetKind.ATTENTION and copy.sha256 != asset.sha256
    # The stored bytes carry nothing of the system (the backend wrote its name in a chunk).
    with default_storage.open(asset.file.name) as handle:
        assert asset.system.name.encode() not in handle.read()
    job.refresh_from_db()
    study.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.SUCCEEDED, 1, 0)
    assert study.status == StudyStatus.READY


def test_generate_asset_twice_makes_one_asset_and_counts_once() -> None:
    study = _study(systems=1, prompts=2)
    job = jobs.start_generation(study=study)
    first_item = _items(job)[0]
    first = jobs.generate_asset(item_id=first_item)
    again = jobs.generate_asset(item_id=first_item)
    assert first == again
    job.refresh_from_db()
    assert job.done == 1 and job.status == JobStatus.QUEUED
    assert Asset.objects.outputs().count() == 1


def test_racing_deliveries_keep_one_asset_and_drop_the_losers_files() -> None:
    study = _study(systems=1, prompts=1)
    job = jobs.start_generation(study=study)
    item = JobItem.objects.select_related("system", "prompt").get(pk=_items(job)[0])
    winner = jobs.generate_asset(item_id=item.pk)
    assert winner is not None
    files_before = set(default_storage.listdir("a")[1])
    # The losing delivery got past the existence check before the winner committed.
    media = ingest_image(default_storage.open(winner.file.name).read())
    kept = jobs._store(item=item, system=item.system, ingested=media, copy=None, meta={})
    assert kept == winner
    assert Asset.objects.outputs().count() == 1
    assert set(default_storage.listdir("a")[1]) == files_before


def test_existing_assets_are_not_planned_again() -> None:
    study = _study(systems=2, prompts=1)
    job = jobs.start_generation(study=study)
    jobs.generate_asset(item_id=_items(job)[0])
    jobs.record_failure(item_id=_items(job)[1], error="BackendError: boom")
    second = jobs.start_generation(study=study)
    assert second.expected == 1
    assert list(second.items.values_list("system_id", flat=True)) == [
        JobItem.objects.get(pk=_items(job)[1]).system_id
    ]


def test_a_second_job_is_refused_while_one_is_running() -> None:
    study = _study()
    job = jobs.start_generation(study=study)
    with pytest.raises(GenerationRefused, match=f"job {job.pk} .* still queued"):
        jobs.start_generation(study=study)


def test_invalid_backend_parameters_refuse_the_whole_job() -> None:
    study = _study()
    make_system(study, name="typo", backend_params={"blurr": 2})
    make_system(study, name="ghost", backend="dall-e-9")
    with pytest.raises(GenerationRefused) as caught:
        jobs.start_generation(study=study)
    assert "system 'typo': unknown synthetic parameter" in str(caught.value)
    assert "system 'ghost': unknown backend 'dall-e-9'" in str(caught.value)
    assert not GenerationJob.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_retries_are_counted_and_failures_recorded_once() -> None:
    study = _study(systems=1, prompts=1)
    make_system(study, name="flaky", backend_params={**SMALL, "fail_attempts": 1})
    job = jobs.start_generation(study=study)
    flaky_item = job.items.get(system__name="flaky").pk
    with pytest.raises(BackendBusy):
        jobs.generate_asset(item_id=flaky_item, attempt=0)
    jobs.record_retry(item_id=flaky_item, error="BackendBusy: busy")
    assert jobs.generate_asset(item_id=flaky_item, attempt=1) is not None
    other = job.items.exclude(pk=flaky_item).get().pk
    jobs.record_failure(item_id=other, error="BackendError: x")
    jobs.record_failure(item_id=other, error="BackendError: x")  # redelivered
    job.refresh_from_db()
    assert (job.done, job.failed, job.retried, job.status) == (1, 1, 1, JobStatus.FAILED)
    assert JobItem.objects.get(pk=flaky_item).attempts == 2
    assert job.error.startswith("1 of 2 items failed; first error: BackendError: x")


def test_job_with_nothing_missing_finishes_at_once() -> None:
    study = _study(systems=1, prompts=1)
    job = jobs.start_generation(study=study)
    jobs.generate_asset(item_id=_items(job)[0])
    again = jobs.start_generation(study=study)
    assert (again.expected, again.status) == (0, JobStatus.SUCCEEDED)
    study.refresh_from_db()
    assert study.status == StudyStatus.READY


def test_cancelled_job_skips_its_items_and_releases_the_study() -> None:
    study = _study(systems=1, prompts=2)
    job = jobs.start_generation(study=study)
    jobs.cancel_job(job=job)
    assert jobs.generate_asset(item_id=_items(job)[0]) is None
    assert not Asset.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT
    assert set(job.items.values_list("status", flat=True)) == {ItemStatus.PENDING}


def test_a_message_outliving_its_study_is_dropped_quietly() -> None:
    """A queued item whose study was deleted (or a message a dead worker held, restored
    after the database was cleared) makes nothing and records nothing."""
    study = _study(systems=1, prompts=1)
    job = jobs.start_generation(study=study)
    item_id = _items(job)[0]
    study.delete()
    assert jobs.generate_asset(item_id=item_id) is None
    jobs.record_retry(item_id=item_id, error="BackendBusy: later")
    jobs.record_failure(item_id=item_id, error="RuntimeError: gone")
    assert not Asset.objects.exists() and not GenerationJob.objects.exists()


def test_dispatch_marks_running_and_routes_by_backend() -> None:
    study = _study(systems=1, prompts=2)
    job = jobs.start_generation(study=study)
    routed = jobs.dispatch(job_id=job.pk)
    assert sorted(routed) == sorted((pk, "gpu") for pk in _items(job))
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.started_at is not None
    jobs.cancel_job(job=job)
    assert jobs.dispatch(job_id=job.pk) == []


def test_a_video_study_generates_clips_with_posters_and_attention_copies() -> None:
    study = make_study(modality="video", attention_check_rate=0.2)
    make_system(study, backend_params={**SMALL, "frames": 6, "fps": 6})
    make_prompt(study, text="a red circle")
    job = jobs.start_generation(study=study)
    asset = jobs.generate_asset(item_id=_items(job)[0])
    assert asset is not None
    assert (asset.media_type, asset.duration_s, asset.width) == ("video/mp4", 1.0, 48)
    assert asset.file.name == f"a/{asset.public_id}.mp4"
    assert asset.poster.name == f"a/{asset.public_id}-poster.png"
    with default_storage.open(asset.file.name) as handle:
        data = handle.read()
    assert asset.sha256 == hashlib.sha256(data).hexdigest()
    assert probe(data).frames == 6 and asset.system.name.encode() not in data
    with default_storage.open(asset.poster.name) as handle:
        assert handle.read().startswith(b"\x89PNG")
    copy = asset.attention_copies.get()
    assert (copy.media_type, copy.duration_s) == ("video/mp4", 1.0)
    assert copy.poster.name == f"a/{copy.public_id}-poster.png"
    assert default_storage.exists(copy.poster.name) and copy.sha256 != asset.sha256
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.SUCCEEDED, 1)


def test_images_have_no_poster() -> None:
    study = _study(systems=1, prompts=1)
    job = jobs.start_generation(study=study)
    asset = jobs.generate_asset(item_id=_items(job)[0])
    assert asset is not None and not asset.poster


def test_finish_item_stores_what_a_backend_made_elsewhere() -> None:
    """The batched task makes several items in one backend call, then finishes each."""
    study = _study(systems=1, prompts=1)
    job = jobs.start_generation(study=study)
    item = JobItem.objects.select_related("system__study", "prompt").get(pk=_items(job)[0])
    media = GeneratedMedia(data=png_bytes(size=(20, 10)), metadata={"backend": "batch"})
    asset = jobs.finish_item(item=item, media=media, meta={"seconds": 0.5, "backend": "batch"})
    assert (asset.width, asset.height, asset.generation_meta) == (
        20,
        10,
        {"seconds": 0.5, "backend": "batch"},
    )
    item.refresh_from_db()
    assert (item.status, item.asset) == (ItemStatus.DONE, asset)


def test_an_image_in_a_video_study_fails_its_item_plainly() -> None:
    study = make_study(modality="video")
    make_system(study, backend_params=SMALL)
    make_prompt(study, text="a red circle")
    job = jobs.start_generation(study=study)
    item = JobItem.objects.select_related("system__study", "prompt").get(pk=_items(job)[0])
    with pytest.raises(IngestError, match="this is an image, not a video"):
        jobs.finish_item(item=item, media=GeneratedMedia(data=png_bytes()), meta={})
    assert not Asset.objects.exists()
