"""Diffusers backends: text-to-image and text-to-video with whatever pipeline
``DiffusionPipeline.from_pretrained`` loads (Stable Diffusion, SDXL, Flux; Wan, CogVideoX,
LTX-Video, AnimateDiff), from a local folder or the local Hugging Face cache only.

Nothing is ever downloaded: HF_HUB_OFFLINE is set before diffusers is imported and every
load passes ``local_files_only``. torch and diffusers are imported on first use, inside
the worker: the web process imports this module (the registry, the admin) without them.

A worker process keeps one pipeline loaded (``PIPELINES``) and reuses it for every task
of the same system; a different system's pipeline replaces it, so one GPU never holds two.
Each item's noise comes from a CPU ``torch.Generator`` seeded with the item's seed, so an
output depends on (system, prompt, seed) only, whichever batch it was made in.
"""

import functools
import gc
import importlib.metadata
import inspect
import io
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from generation.backends.base import (
    GeneratedMedia,
    GenerationRequest,
    Parameter,
    validate_declared,
)
from generation.exceptions import BackendError, BackendParamsError

DTYPES = ("auto", "float32", "float16", "bfloat16")
SCHEDULER_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*Scheduler$")

_COMMON: tuple[Parameter, ...] = (
    Parameter(
        "model",
        str,
        None,
        "A diffusers pipeline folder on the GPU worker, or a Hugging Face model id already "
        "in the worker's cache (nothing is downloaded).",
    ),
    Parameter(
        "dtype",
        str,
        "auto",
        "Weights' precision: auto (float16 on CUDA, float32 on CPU), float32, float16 or bfloat16.",
    ),
    Parameter(
        "scheduler",
        str,
        None,
        "A diffusers scheduler class to use instead of the model's own, e.g. "
        "EulerDiscreteScheduler; none: the model's.",
        nullable=True,
    ),
    Parameter("steps", int, 30, "Denoising steps.", 1, 500),
    Parameter(
        "guidance", float, None, "Guidance scale; none: the pipeline's default.", 0, 50, True
    ),
    Parameter("width", int, None, "Width in pixels; none: the model's default.", 16, 4096, True),
    Parameter("height", int, None, "Height in pixels; none: the model's default.", 16, 4096, True),
    Parameter("negative_prompt", str, "", "What to steer away from; empty: nothing."),
    Parameter(
        "max_sequence_length",
        int,
        None,
        "Prompt tokens the text encoder reads (T5-based models); none: the pipeline's default.",
        1,
        4096,
        True,
    ),
)
IMAGE_PARAMS: tuple[Parameter, ...] = (
    *_COMMON,
    Parameter("batch_size", int, 4, "Prompts per pipeline call (halved on out-of-memory).", 1, 64),
)
VIDEO_PARAMS: tuple[Parameter, ...] = (
    *_COMMON,
    Parameter("batch_size", int, 1, "Prompts per pipeline call (halved on out-of-memory).", 1, 64),
    Parameter(
        "frames",
        int,
        None,
        "Frames per clip (Wan and LTX take 4k+1, CogVideoX 8k+1); none: the model's default.",
        1,
        1000,
        True,
    ),
    Parameter("fps", int, 16, "Frames per second of the stored clip.", 1, 120),
)


def _validate(
    backend: str, specs: Sequence[Parameter], params: Mapping[str, Any]
) -> dict[str, Any]:
    clean = validate_declared(backend, specs, params)
    if not clean["model"].strip():
        raise BackendParamsError(f"{backend} parameter 'model' is required.")
    if clean["dtype"] not in DTYPES:
        raise BackendParamsError(
            f"{backend} parameter 'dtype' must be one of {', '.join(DTYPES)}, "
            f"not {clean['dtype']!r}."
        )
    if clean["scheduler"] is not None and not SCHEDULER_NAME.match(clean["scheduler"]):
        raise BackendParamsError(
            f"{backend} parameter 'scheduler' must name a diffusers scheduler class "
            f"(e.g. EulerDiscreteScheduler), not {clean['scheduler']!r}."
        )
    return clean


@functools.cache
def _libraries() -> tuple[Any, Any]:
    """torch and diffusers, imported offline and quiet (first use only)."""
    # Forced, not defaulted: a worker must never fetch weights behind the researcher's back.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import diffusers
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    return torch, diffusers


@functools.cache
def _versions() -> dict[str, str]:
    return {
        name: importlib.metadata.version(name) for name in ("torch", "diffusers", "transformers")
    }


@dataclass(frozen=True)
class PipelineKey:
    model: str  # the resolved folder
    dtype: str
    device: str
    scheduler: str | None


class PipelineCache:
    """The one pipeline a worker process keeps loaded. A worker runs one task at a time
    (prefork, prefetch 1), so there is no lock."""

    def __init__(self) -> None:
        self.key: PipelineKey | None = None
        self.pipeline: Any = None
        #: Pipelines loaded by this process (tests and the bench read it).
        self.loads = 0

    def get(self, key: PipelineKey, load: Callable[[PipelineKey], Any]) -> Any:
        if key != self.key:
            self.clear()
            self.pipeline = load(key)
            self.key = key
            self.loads += 1
        return self.pipeline

    def clear(self) -> None:
        """Drop the pipeline and give its GPU memory back before another is loaded."""
        self.key, self.pipeline = None, None
        gc.collect()
        _empty_cuda_cache()


PIPELINES = PipelineCache()


def _empty_cuda_cache() -> None:
    if _libraries.cache_info().currsize:  # never import torch just to free nothing
        torch, _ = _libraries()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _resolve_model(model: str, system_name: str) -> str:
    """The local folder holding ``model``; BackendError naming the system and the setting."""
    path = Path(model).expanduser()
    if not path.is_dir():
        from huggingface_hub import constants, snapshot_download

        try:
            path = Path(snapshot_download(repo_id=model, local_files_only=True))
        except (OSError, ValueError):
            raise BackendError(
                f"system {system_name!r}: backend parameter model={model!r} is neither a "
                f"folder on this worker nor a model in its Hugging Face cache "
                f"({constants.HF_HUB_CACHE}); downloads are off, so copy the model there "
                f"first or name a local folder."
            ) from None
    if not (path / "model_index.json").is_file():
        raise BackendError(
            f"system {system_name!r}: backend parameter model={model!r} is not a diffusers "
            f"pipeline folder (no model_index.json in {path})."
        )
    return str(path.resolve())


def _load(key: PipelineKey) -> Any:
    torch, diffusers = _libraries()
    pipeline = diffusers.DiffusionPipeline.from_pretrained(
        key.model, dtype=getattr(torch, key.dtype), local_files_only=True
    )
    if key.scheduler is not None:
        scheduler_class = getattr(diffusers, key.scheduler, None)
        if not (
            inspect.isclass(scheduler_class)
            and issubclass(scheduler_class, diffusers.SchedulerMixin)
        ):
            raise BackendError(
                f"backend parameter scheduler={key.scheduler!r} is not a scheduler class "
                f"of diffusers {diffusers.__version__}."
            )
        pipeline.scheduler = scheduler_class.from_config(pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(key.device)


def _to_uint8(pixels: Any) -> np.ndarray:
    """A pipeline's float [0, 1] output (array, tensor or PIL images) as uint8 RGB."""
    if isinstance(pixels, Image.Image):
        return np.asarray(pixels.convert("RGB"))
    if isinstance(pixels, list | tuple) and pixels and isinstance(pixels[0], Image.Image):
        return np.stack([_to_uint8(p) for p in pixels])
    if hasattr(pixels, "detach"):
        pixels = pixels.detach().float().cpu().numpy()
    array = np.asarray(pixels, dtype=np.float32)
    # diffusers' own numpy_to_pil rounding, so stored pixels match its PIL output
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    # Fast: ingest decodes and re-encodes every image anyway.
    Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


class DiffusersBackend:
    """Text-to-image: one pipeline call makes a batch of prompts, one image each."""

    name = "diffusers"
    queue = "gpu"
    modality = "image"
    parameters: tuple[Parameter, ...] = IMAGE_PARAMS

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return _validate(self.name, self.parameters, params)

    def plan(
        self,
        *,
        params: Mapping[str, Any],
        system_name: str,
        prompts: Sequence[tuple[int, str]],
        seeds: range,
    ) -> list[tuple[int, int]]:
        """Every prompt with every seed."""
        return [(prompt_id, seed) for prompt_id, _ in prompts for seed in seeds]

    def generate(self, request: GenerationRequest) -> GeneratedMedia:
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GeneratedMedia]:
        """One pipeline call for every request (all of one system); outputs in order.

        Out-of-memory errors propagate (generation.batches splits the batch); a pipeline
        that refuses the parameters raises BackendError.
        """
        if not requests:
            return []
        first = requests[0]
        if any(r.params != first.params or r.system_name != first.system_name for r in requests):
            raise BackendError("a batch must hold the items of one system only.")
        if first.modality != self.modality:
            raise BackendError(
                f"system {first.system_name!r}: the {self.name} backend makes "
                f"{self.modality}s, but its study is a {first.modality} study."
            )
        p = self.validate_params(first.params)
        torch, _ = _libraries()
        cuda = torch.cuda.is_available()
        dtype = p["dtype"] if p["dtype"] != "auto" else ("float16" if cuda else "float32")
        key = PipelineKey(
            model=_resolve_model(p["model"], first.system_name),
            dtype=dtype,
            device="cuda" if cuda else "cpu",
            scheduler=p["scheduler"],
        )
        pipeline = PIPELINES.get(key, _load)
        kwargs = self._call_arguments(pipeline, p, requests, torch)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        try:
            output = pipeline(**kwargs)
        except ValueError as exc:
            # diffusers' check_inputs: a size or frame count this model cannot take
            raise BackendError(
                f"system {first.system_name!r}: {type(pipeline).__name__} refused the "
                f"parameters: {exc}"
            ) from exc
        except RuntimeError:
            _empty_cuda_cache()  # an out-of-memory error: retried smaller by the caller
            raise
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        figures = {
            "backend": self.name,
            "pipeline": type(pipeline).__name__,
            "scheduler": type(pipeline.scheduler).__name__,
            "dtype": dtype,
            "params": p,
            # Per item: the batch's wall time shared out, so per-output costs add up.
            "seconds": round(wall / len(requests), 4),
            "latency_s": round(wall, 4),
            "gpu_seconds": round(wall / len(requests), 4) if cuda else 0.0,
            "peak_gpu_memory_mb": (
                round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
            ),
            "batch_size": len(requests),
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "versions": _versions(),
        }
        return self._media(output, p, figures)

    def _call_arguments(
        self,
        pipeline: Any,
        p: Mapping[str, Any],
        requests: Sequence[GenerationRequest],
        torch: Any,
    ) -> dict[str, Any]:
        # pipeline argument -> (value, the backend parameter that set it)
        wanted: dict[str, tuple[Any, str]] = {
            "num_inference_steps": (p["steps"], "steps"),
            "guidance_scale": (p["guidance"], "guidance"),
            "width": (p["width"], "width"),
            "height": (p["height"], "height"),
            "max_sequence_length": (p["max_sequence_length"], "max_sequence_length"),
            **self._extra_arguments(p),
        }
        if p["negative_prompt"]:
            wanted["negative_prompt"] = ([p["negative_prompt"]] * len(requests), "negative_prompt")
        accepted = inspect.signature(pipeline.__call__).parameters
        kwargs: dict[str, Any] = {"prompt": [r.prompt_text for r in requests]}
        for argument, (value, setting) in wanted.items():
            if value is None:
                continue  # the pipeline's own default
            if argument not in accepted:
                # A setting silently dropped would make the record lie about the media.
                raise BackendError(
                    f"system {requests[0].system_name!r}: {type(pipeline).__name__} takes "
                    f"no {argument!r}; remove the backend parameter {setting!r}."
                )
            kwargs[argument] = value
        kwargs.update({k: v for k, v in self._optional_arguments(p).items() if k in accepted})
        # One generator per item: its noise is the same in any batch.
        kwargs["generator"] = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        kwargs["output_type"] = "np"
        return kwargs

    def _extra_arguments(self, p: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
        return {}

    def _optional_arguments(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """Passed only to pipelines that take them."""
        return {}

    def _media(
        self, output: Any, p: Mapping[str, Any], figures: dict[str, Any]
    ) -> list[GeneratedMedia]:
        images = _to_uint8(output.images)
        height, width = images.shape[1:3]
        return [
            GeneratedMedia(data=_png(image), metadata={**figures, "width": width, "height": height})
            for image in images
        ]


class DiffusersVideoBackend(DiffusersBackend):
    """Text-to-video: frames from the pipeline, encoded by generation.video's one recipe."""

    name = "diffusers-video"
    modality = "video"
    parameters: tuple[Parameter, ...] = VIDEO_PARAMS

    def _extra_arguments(self, p: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
        return {"num_frames": (p["frames"], "frames")}

    def _optional_arguments(self, p: Mapping[str, Any]) -> dict[str, Any]:
        # LTX-Video conditions on the frame rate; the other families take none.
        return {"frame_rate": p["fps"]}

    def _media(
        self, output: Any, p: Mapping[str, Any], figures: dict[str, Any]
    ) -> list[GeneratedMedia]:
        from generation.video import encode_mp4

        made = []
        for clip in output.frames:
            frames = _to_uint8(clip)
            count, height, width = frames.shape[:3]
            height, width = height - height % 2, width - width % 2  # as encode_mp4 crops
            made.append(
                GeneratedMedia(
                    data=encode_mp4(frames, p["fps"]),
                    metadata={
                        **figures,
                        "frames": count,
                        "fps": p["fps"],
                        "duration_s": round(count / p["fps"], 4),
                        "width": width,
                        "height": height,
                    },
                )
            )
        return made
