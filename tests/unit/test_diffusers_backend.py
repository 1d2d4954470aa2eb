"""The diffusers backends and batched generation, on tiny random-weight pipelines built
from configuration, saved to a folder and loaded back through the backend's own loading
code (tests/tiny_pipelines.py). Nothing is downloaded and no GPU is needed."""

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from generation import batches, jobs, tasks
from generation.backends import BACKENDS, GenerationRequest, get_backend
from generation.backends import diffusers as backend_module
from generation.exceptions import BackendBusy, BackendError, BackendParamsError
from generation.models import ItemStatus, JobItem, JobStatus
from generation.video import decode_frames, probe
from tests.factories import make_prompt, make_study, make_system

torch = pytest.importorskip("torch")
tiny = pytest.importorskip("tests.tiny_pipelines")

ROOT = Path(__file__).resolve().parents[2]
# Batched and single calls run different matrix shapes; float32 sums may then differ in
# the last bits, which can move a uint8 pixel by one level.
BATCH_PIXEL_TOLERANCE = 1
_real_load = backend_module._load


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-pipelines")
    return {"sd": tiny.build_sd(folder / "sd"), "wan": tiny.build_wan(folder / "wan")}


@pytest.fixture(autouse=True)
def _one_thread_fresh_cache() -> Iterator[None]:
    """Outputs depend on torch's thread count (DIFFUSERS-TINY.md §1): pin it. Each test
    starts with no pipeline loaded, so load counts are its own."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    backend_module.PIPELINES.clear()
    yield
    backend_module.PIPELINES.clear()
    torch.set_num_threads(threads)


def _request(params: dict[str, Any], prompt: str = "a red cat", seed: int = 0,
             modality: str = "image") -> GenerationRequest:  # fmt: skip
    return GenerationRequest("tiny", prompt, "objects", seed, params, modality=modality)


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_both_backends_are_registered_on_the_gpu_queue_with_declared_ranges() -> None:
    for name in ("diffusers", "diffusers-video"):
        backend = BACKENDS[name]
        assert backend.queue == "gpu"
        declared = {p.name: p for p in backend.parameters}
        assert declared["steps"].low == 1 and declared["steps"].high == 500
        assert declared["batch_size"].low == 1
    video = {p.name for p in BACKENDS["diffusers-video"].parameters}
    image = {p.name for p in BACKENDS["diffusers"].parameters}
    assert video - image == {"frames", "fps"}


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({}, "'model' is required"),
        ({"model": "x", "dtype": "float8"}, "'dtype' must be one of"),
        ({"model": "x", "scheduler": "rm -rf"}, "'scheduler' must name"),
        ({"model": "x", "steps": 0}, "outside [1, 500]"),
        ({"model": "x", "nsfw": True}, "unknown diffusers parameter"),
    ],
)
def test_invalid_parameters_are_refused_by_name(params: dict[str, Any], complaint: str) -> None:
    with pytest.raises(BackendParamsError, match=complaint.replace("[", r"\[")):
        get_backend("diffusers").validate_params(params)


def test_defaults_are_filled_in_without_importing_anything_heavy() -> None:
    clean = get_backend("diffusers-video").validate_params({"model": "org/model"})
    assert clean["dtype"] == "auto" and clean["fps"] == 16 and clean["frames"] is None


def test_web_process_does_not_import_torch() -> None:
    code = (
        "import sys, django; django.setup()\n"
        "import generation.backends, generation.batches, generation.tasks, generation.admin\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_image_is_deterministic_per_prompt_and_seed(models: dict[str, Path]) -> None:
    backend = get_backend("diffusers")
    params = tiny.image_params(models["sd"])
    first = _pixels(backend.generate(_request(params, seed=3)).data)
    again = _pixels(backend.generate(_request(params, seed=3)).data)
    other_seed = _pixels(backend.generate(_request(params, seed=4)).data)
    other_prompt = _pixels(backend.generate(_request(params, "a blue dog", seed=3)).data)
    assert first.shape == (tiny.IMAGE_SIZE, tiny.IMAGE_SIZE, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_seed)
    assert not np.array_equal(first, other_prompt)


def test_operational_figures_are_recorded(models: dict[str, Path]) -> None:
    meta = get_backend("diffusers").generate(_request(tiny.image_params(models["sd"]))).metadata
    assert meta["device"] == "cpu" and meta["dtype"] == "float32"
    assert meta["gpu_seconds"] == 0.0 and meta["peak_gpu_memory_mb"] is None
    assert meta["seconds"] > 0 and meta["latency_s"] >= meta["seconds"]
    assert meta["batch_size"] == 1
    assert meta["pipeline"] == "StableDiffusionPipeline"
    assert set(meta["versions"]) == {"torch", "diffusers", "transformers"}
    assert meta["versions"]["torch"] == torch.__version__


def test_one_pipeline_is_loaded_and_reused_per_system(models: dict[str, Path]) -> None:
    backend = get_backend("diffusers")
    params = tiny.image_params(models["sd"])
    cache = backend_module.PIPELINES
    loads = cache.loads
    with mock.patch.object(backend_module, "_load", wraps=backend_module._load) as load:
        for seed in range(3):
            backend.generate(_request(params, seed=seed))
        assert load.call_count == 1
        # Another system (here: another scheduler) replaces it; coming back loads again.
        euler = {**params, "scheduler": "EulerDiscreteScheduler"}
        meta = backend.generate(_request(euler)).metadata
        backend.generate(_request(params))
    assert meta["scheduler"] == "EulerDiscreteScheduler"
    assert load.call_count == 3 and cache.loads == loads + 3
    assert cache.key is not None and cache.key.scheduler is None


@pytest.mark.parametrize(
    "model", ["/no/such/folder", "nobody-here/not-in-the-cache", "{folder_without_index}"]
)
def test_a_missing_model_is_one_clear_error(model: str, tmp_path: Path) -> None:
    model = model.replace("{folder_without_index}", str(tmp_path))
    request = GenerationRequest("my-system", "a cat", "", 0, {"model": model})
    loads = backend_module.PIPELINES.loads
    with pytest.raises(BackendError) as raised:
        get_backend("diffusers").generate(request)
    message = str(raised.value)
    assert "system 'my-system'" in message and f"model={model!r}" in message
    assert backend_module.PIPELINES.loads == loads


def test_an_unknown_scheduler_class_is_a_clear_error(models: dict[str, Path]) -> None:
    params = tiny.image_params(models["sd"], scheduler="NoSuchScheduler")
    with pytest.raises(BackendError, match="'NoSuchScheduler' is not a scheduler class"):
        get_backend("diffusers").generate(_request(params))


def test_a_size_the_model_refuses_is_a_backend_error(models: dict[str, Path]) -> None:
    params = tiny.image_params(models["sd"], width=33)
    with pytest.raises(BackendError, match="refused the parameters"):
        get_backend("diffusers").generate(_request(params))


def test_a_setting_the_pipeline_cannot_take_is_refused_not_dropped(
    models: dict[str, Path],
) -> None:
    params = tiny.image_params(models["sd"], max_sequence_length=16)
    with pytest.raises(BackendError, match="takes no 'max_sequence_length'"):
        get_backend("diffusers").generate(_request(params))


def test_a_batch_gives_the_unbatched_outputs(models: dict[str, Path]) -> None:
    backend: Any = get_backend("diffusers")
    params = tiny.image_params(models["sd"])
    requests = [
        _request(params, "a red cat", 0),
        _request(params, "a blue dog", 0),
        _request(params, "a red cat", 1),
    ]
    batch = backend.generate_batch(requests)
    singles = [backend.generate(r) for r in requests]
    assert len(batch) == 3
    assert [m.metadata["batch_size"] for m in batch] == [3, 3, 3]
    for together, alone in zip(batch, singles, strict=True):
        difference = np.abs(
            _pixels(together.data).astype(int) - _pixels(alone.data).astype(int)
        ).max()
        assert difference <= BATCH_PIXEL_TOLERANCE
    assert not np.array_equal(_pixels(batch[0].data), _pixels(batch[1].data))


def test_video_is_h264_with_the_requested_frames_and_fps(models: dict[str, Path]) -> None:
    backend: Any = get_backend("diffusers-video")
    params = tiny.video_params(models["wan"])
    clips = backend.generate_batch(
        [_request(params, "a red cat", 0, "video"), _request(params, "a blue dog", 0, "video")]
    )
    info = probe(clips[0].data)
    assert (info.codec, info.frames, info.fps) == ("h264", tiny.VIDEO_FRAMES, 8.0)
    assert (info.width, info.height, info.has_audio) == (tiny.VIDEO_SIZE, tiny.VIDEO_SIZE, False)
    meta = clips[0].metadata
    assert meta["frames"] == tiny.VIDEO_FRAMES and meta["fps"] == 8
    assert meta["duration_s"] == pytest.approx(tiny.VIDEO_FRAMES / 8)
    assert meta["pipeline"] == "WanPipeline" and meta["batch_size"] == 2
    assert clips[0].data != clips[1].data
    # Alone, the same clip up to batching's rounding (a level here and there can move the
    # encoder's choices, so the bytes may differ: compare the decoded frames).
    alone = backend.generate(_request(params, "a red cat", 0, "video")).data
    difference = np.abs(
        decode_frames(alone).astype(np.int16) - decode_frames(clips[0].data).astype(np.int16)
    )
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 4


def test_an_image_backend_refuses_a_video_study(models: dict[str, Path]) -> None:
    request = _request(tiny.image_params(models["sd"]), modality="video")
    with pytest.raises(BackendError, match="makes images, but its study is a video study"):
        get_backend("diffusers").generate(request)


class _OutOfMemoryAbove:
    """The tiny pipeline behind a fake GPU that fits at most ``fits`` prompts per call
    (none at all for a prompt in ``never``)."""

    def __init__(self, pipeline: Any, fits: int, never: tuple[str, ...] = ()) -> None:
        self.pipeline, self.fits, self.never = pipeline, fits, never
        self.scheduler = pipeline.scheduler
        self.calls: list[int] = []

    def __call__(
        self,
        prompt: list[str],
        num_inference_steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        generator: list[Any],
        output_type: str,
    ) -> Any:
        self.calls.append(len(prompt))
        if len(prompt) > self.fits or set(prompt) & set(self.never):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.pipeline(
            prompt=prompt,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            width=width,
            height=height,
            generator=generator,
            output_type=output_type,
        )


def _image_job(models: dict[str, Path], prompts: int, **params: Any) -> tuple[Any, list[int]]:
    study = make_study(seeds_per_prompt=1)
    make_system(
        study, backend="diffusers", backend_params=tiny.image_params(models["sd"], **params)
    )
    for k in range(prompts):
        make_prompt(study, text=f"a red cat number {k}")
    job = jobs.start_generation(study=study)
    return job, list(JobItem.objects.filter(job=job).order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db
def test_out_of_memory_halves_the_batch_until_every_item_is_made(
    models: dict[str, Path],
) -> None:
    job, item_ids = _image_job(models, prompts=4, batch_size=4)
    fake: list[_OutOfMemoryAbove] = []

    def load(key: Any) -> _OutOfMemoryAbove:
        fake.append(_OutOfMemoryAbove(_real_load(key), fits=1))
        return fake[0]

    with mock.patch.object(backend_module, "_load", side_effect=load):
        assets = batches.generate_batch(item_ids=item_ids)
    assert fake[0].calls == [4, 2, 1, 1, 2, 1, 1]
    assert all(a is not None and a.generation_meta["batch_size"] == 1 for a in assets)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.SUCCEEDED, 4, 0)


@pytest.mark.django_db
def test_an_item_too_big_even_alone_is_recorded_failed_and_the_rest_made(
    models: dict[str, Path],
) -> None:
    job, item_ids = _image_job(models, prompts=3, batch_size=3)
    with mock.patch.object(
        backend_module,
        "_load",
        side_effect=lambda key: _OutOfMemoryAbove(
            _real_load(key), fits=2, never=("a red cat number 1",)
        ),
    ):
        assets = batches.generate_batch(item_ids=item_ids)
    assert [a is None for a in assets] == [False, True, False]
    failed = JobItem.objects.get(pk=item_ids[1])
    assert failed.status == ItemStatus.FAILED and "out of memory" in failed.error
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.FAILED, 2, 1)


@pytest.mark.django_db
def test_other_runtime_errors_are_not_taken_for_out_of_memory(models: dict[str, Path]) -> None:
    _, item_ids = _image_job(models, prompts=2)
    broken = mock.Mock(side_effect=RuntimeError("expected all tensors on the same device"))
    with (
        mock.patch.object(backend_module.DiffusersBackend, "generate_batch", broken),
        pytest.raises(RuntimeError, match="same device"),
    ):
        batches.generate_batch(item_ids=item_ids)
    assert broken.call_count == 1


@pytest.mark.django_db
def test_image_job_is_dispatched_in_batches_and_stored(models: dict[str, Path]) -> None:
    study = make_study(seeds_per_prompt=2)
    tiny_system = make_system(
        study, backend="diffusers", backend_params=tiny.image_params(models["sd"], batch_size=4)
    )
    make_system(study)  # synthetic: one task per item, as before
    for k in range(3):
        make_prompt(study, text=f"a blue dog number {k}")
    job = jobs.start_generation(study=study)
    messages = batches.plan_dispatch(job_id=job.pk)
    batched = [m for m in messages if m.batched]
    assert [len(m.item_ids) for m in batched] == [4, 2]
    assert [len(m.item_ids) for m in messages if not m.batched] == [1] * 6
    assert {m.queue for m in messages} == {"gpu"}
    tiny_items = set(JobItem.objects.filter(system=tiny_system).values_list("pk", flat=True))
    assert {pk for m in batched for pk in m.item_ids} == tiny_items

    made = [a for m in batched for a in batches.generate_batch(item_ids=list(m.item_ids))]
    assert len({a.pk for a in made if a is not None}) == 6
    first = made[0]
    assert first is not None and first.media_type == "image/png"
    assert (first.width, first.height) == (tiny.IMAGE_SIZE, tiny.IMAGE_SIZE)
    assert first.generation_meta["batch_size"] == 4 and first.generation_meta["attempt"] == 1
    assert first.file.storage.exists(first.file.name)
    # A redelivered message finds the items done and makes nothing again.
    loads = backend_module.PIPELINES.loads
    again = batches.generate_batch(item_ids=list(batched[0].item_ids))
    assert [a.pk for a in again if a] == [a.pk for a in made[:4] if a]
    assert backend_module.PIPELINES.loads == loads


@pytest.mark.django_db
def test_video_job_is_generated_in_a_batch_and_stored_as_h264(models: dict[str, Path]) -> None:
    study = make_study(seeds_per_prompt=1, modality="video")
    make_system(study, backend="diffusers-video", backend_params=tiny.video_params(models["wan"]))
    make_prompt(study, text="a red cat")
    make_prompt(study, text="a blue dog")
    job = jobs.start_generation(study=study)
    (message,) = batches.plan_dispatch(job_id=job.pk)
    assets = batches.generate_batch(item_ids=list(message.item_ids))
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.SUCCEEDED, 2)
    for asset in assets:
        assert asset is not None and asset.media_type == "video/mp4"
        assert asset.duration_s == pytest.approx(tiny.VIDEO_FRAMES / 8)
        with asset.file.open("rb") as stored:
            info = probe(stored.read())
        assert (info.codec, info.frames) == ("h264", tiny.VIDEO_FRAMES)
        assert asset.generation_meta["batch_size"] == 2


@pytest.mark.django_db
def test_dispatch_task_sends_batches_and_single_items(models: dict[str, Path]) -> None:
    study = make_study(seeds_per_prompt=1)
    make_system(study, backend="diffusers", backend_params=tiny.image_params(models["sd"]))
    make_system(study)
    make_prompt(study)
    make_prompt(study)
    job = jobs.start_generation(study=study)
    with (
        mock.patch.object(tasks.generate_batch, "apply_async") as send_batch,
        mock.patch.object(tasks.generate_asset, "apply_async") as send_one,
    ):
        tasks.dispatch_job.apply(args=(job.pk,)).get()
    (batch_call,) = send_batch.call_args_list
    assert len(batch_call.args[0][0]) == 2 and batch_call.kwargs == {"queue": "gpu"}
    assert send_one.call_count == 2


def test_batch_task_retries_busy_and_records_the_retry_on_each_item() -> None:
    with (
        mock.patch.object(
            tasks.batches, "generate_batch", side_effect=[BackendBusy("gpu full"), None]
        ) as service,
        mock.patch.object(tasks.jobs, "record_retry") as record_retry,
        mock.patch.object(tasks.jobs, "record_failure") as record_failure,
    ):
        tasks.generate_batch.apply(args=([3, 4],)).get()
    assert [c.kwargs for c in service.call_args_list] == [
        {"item_ids": [3, 4], "attempt": 0},
        {"item_ids": [3, 4], "attempt": 1},
    ]
    assert record_retry.call_args_list == [
        mock.call(item_id=3, error="BackendBusy: gpu full"),
        mock.call(item_id=4, error="BackendBusy: gpu full"),
    ]
    record_failure.assert_not_called()


def test_batch_task_records_a_permanent_error_on_every_item() -> None:
    with (
        mock.patch.object(tasks.batches, "generate_batch", side_effect=BackendError("no model")),
        mock.patch.object(tasks.jobs, "record_failure") as record_failure,
    ):
        result = tasks.generate_batch.apply(args=([5, 6],))
    with pytest.raises(BackendError):
        result.get()
    assert record_failure.call_args_list == [
        mock.call(item_id=5, error="BackendError: no model"),
        mock.call(item_id=6, error="BackendError: no model"),
    ]
