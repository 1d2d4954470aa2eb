"""Generation throughput of the diffusers backends, by batch size: Verdict's backend against
a plain diffusers loop over the same pipeline, in one process.

For each batch size (1, 2, 4, 8) the backend makes every prompt through
``generate_batch`` (the warm cached pipeline, one call per batch); the peer calls the same
pipeline object once per prompt, as a diffusers user's loop does. Both encode each output
the same way (PNG at compress level 1; H.264 by generation.video.encode_mp4), so the
ratio is what batching and the backend's own overhead change. Outputs are compared too:
the first item's pixels must agree (batched numerics may move a pixel by one level).

Rates: images per second, and for video the seconds of video made per second. Ratios:
peer time / backend time (> 1: the backend is faster); the paths run interleaved, round
by round, and each reports its best round. Memory is measured in a separate,
untimed run of each row: on CUDA torch.cuda.max_memory_allocated; on CPU the peak
resident set above the resident set before the row (Linux VmHWM, reset through
/proc/self/clear_refs) and tracemalloc's peak of Python and numpy allocations.

Uses the tiny random-weight pipelines of tests/tiny_pipelines.py (one text-to-image, one
text-to-video) unless --model PATH names a pipeline folder (--video if it makes video).
Run: .venv/bin/python bench/generate.py [--model PATH [--video]] [--prompts 16]
"""

import argparse
import io
import os
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["HF_HUB_OFFLINE"] = "1"

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from generation.backends import GenerationRequest, get_backend  # noqa: E402
from generation.backends import diffusers as backend_module  # noqa: E402
from generation.video import decode_frames, encode_mp4  # noqa: E402

BATCH_SIZES = (1, 2, 4, 8)
WORDS = ("red", "blue", "green", "cat", "dog", "circle", "square", "tree", "house", "star")


def _prompts(n: int) -> list[str]:
    return [f"a {WORDS[k % 5]} {WORDS[5 + (k * 3) % 5]} number {k}" for k in range(n)]


def _rss_kib(field: str) -> int | None:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else None


def _memory(run: Callable[[], object]) -> str:
    """Peak memory of one untimed run, as text for the table."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        run()
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU"
    before = _rss_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        resettable = True
    except OSError:
        resettable = False
    tracemalloc.start()
    run()
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if resettable and before is not None:
        rss = f"+{((_rss_kib('VmHWM') or 0) - before) / 1024:.1f} MiB RSS"
    else:  # the process's peak so far: an upper bound only
        rss = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB max RSS"
    return f"{rss}, {python_peak / 2**20:.1f} MiB py"


def _best_s(runs: list[Callable[[], object]], rounds: int) -> list[float]:
    """Each run's best time, the runs interleaved round by round. The best, not the
    median: on a shared machine a neighbour's load only ever adds time."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for run, spent in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


def _uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def _first_pixels(data: bytes, video: bool) -> np.ndarray:
    if video:
        return decode_frames(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def bench(name: str, backend_name: str, params: dict[str, Any], n: int, rounds: int) -> None:
    video = backend_name == "diffusers-video"
    backend: Any = get_backend(backend_name)
    p = backend.validate_params(params)
    modality = "video" if video else "image"
    requests = [
        GenerationRequest("bench", text, "", 0, params, modality=modality) for text in _prompts(n)
    ]
    backend.generate(requests[0])  # load and warm the cached pipeline
    pipeline = backend_module.PIPELINES.pipeline
    seconds_each = (p["frames"] / p["fps"]) if video else 1.0

    def peer() -> list[bytes]:
        out = []
        for request in requests:
            kwargs: dict[str, Any] = {
                "prompt": request.prompt_text,
                "num_inference_steps": p["steps"],
                "guidance_scale": p["guidance"],
                "width": p["width"],
                "height": p["height"],
                "generator": torch.Generator("cpu").manual_seed(request.seed),
                "output_type": "np",
            }
            if video:
                kwargs.update(num_frames=p["frames"], max_sequence_length=p["max_sequence_length"])
                frames = pipeline(**{k: v for k, v in kwargs.items() if v is not None}).frames
                out.append(encode_mp4(_uint8(np.asarray(frames[0])), p["fps"]))
            else:
                images = pipeline(**{k: v for k, v in kwargs.items() if v is not None}).images
                out.append(_png(_uint8(images[0])))
        return out

    def ours(size: int) -> Callable[[], list[bytes]]:
        def run() -> list[bytes]:
            out = []
            for i in range(0, n, size):
                out += [m.data for m in backend.generate_batch(requests[i : i + size])]
            return out

        return run

    runs = [ours(size) for size in BATCH_SIZES]
    peer_s, *took_s = _best_s([peer, *runs], rounds)
    peer_first = _first_pixels(peer()[0], video)
    unit = "video s/s" if video else "images/s"
    print(f"\n## {name}: {n} prompts, {p['steps']} steps, {pipeline.__class__.__name__}\n")
    print(f"| path | batch | {unit} | ratio | peak memory | first output vs peer |")
    print("|---|---:|---:|---:|---|---|")
    print(
        f"| plain diffusers loop | 1 | {n * seconds_each / peer_s:.2f} | 1.00 "
        f"| {_memory(peer)} | (itself) |"
    )
    for size, run, took in zip(BATCH_SIZES, runs, took_s, strict=True):
        first = _first_pixels(run()[0], video)
        diff = int(np.abs(first.astype(int) - peer_first.astype(int)).max())
        same = "identical" if diff == 0 else f"max pixel diff {diff}"
        print(
            f"| backend.generate_batch | {size} | {n * seconds_each / took:.2f} "
            f"| {peer_s / took:.2f} | {_memory(run)} | {same} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a diffusers pipeline folder (default: tiny)")
    parser.add_argument("--video", action="store_true", help="--model makes video")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per measurement")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps")
    parser.add_argument("--size", type=int, default=None, help="width and height")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (best is kept)")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    size = {"width": args.size, "height": args.size} if args.size else {}
    steps = {"steps": args.steps} if args.steps else {}
    if args.model:
        backend_name = "diffusers-video" if args.video else "diffusers"
        params = {"model": str(args.model), **size, **steps}
        bench(str(args.model), backend_name, params, args.prompts, args.rounds)
        return
    from tests import tiny_pipelines as tiny

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        image = tiny.image_params(tiny.build_sd(folder / "sd"), **size, **steps)
        bench("tiny Stable Diffusion", "diffusers", image, args.prompts, args.rounds)
        video = tiny.video_params(tiny.build_wan(folder / "wan"), **size, **steps)
        bench("tiny Wan", "diffusers-video", video, args.prompts, args.rounds)
    print("\nRatio: plain loop time / backend time for the same prompts (> 1: backend faster).")


if __name__ == "__main__":
    main()
