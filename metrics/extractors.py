"""Feature extractors: decoded images in, one float64 feature row per image out.

Every extractor has an ``id`` stamped on each number computed from its features: the
network, a hash prefix of its weights and the preprocessing mode. Numbers are comparable
only between equal ids, and only ``comparable`` extractors (published weights, published
preprocessing) give values that may be set beside published FIDs.

Weights load from local paths named by settings, never from the internet; a missing or
unreadable file is an ``ExtractorUnavailable`` naming the setting. The torch-based
extractors import torch only when built, so the app runs without it.
"""

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from django.conf import settings
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

T = TypeVar("T")
R = TypeVar("R")


@cache
def _image_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="verdict-img")


def map_images(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``work`` on each item, in order, across the cores: for decoding and resizing,
    which Pillow does without the GIL. Run before the network's phase, never beside it,
    so that it does not compete with torch's own threads (overlapping them was slower)."""
    return list(_image_pool().map(work, items))


class ExtractorUnavailable(RuntimeError):
    """An extractor that cannot be built here: its weights or its packages are missing."""


class Extractor(ABC):
    id: str
    dim: int
    comparable: bool = False  # values may be set beside published ones
    batch_size: int = 32

    @abstractmethod
    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features of decoded RGB images (uint8, height × width × 3, any size): an
        (n, dim) float64 array."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(setting: str, what: str) -> Path:
    """The local file or folder a setting names, or a clear error naming the setting."""
    value = getattr(settings, setting, "") or ""
    if not value:
        raise ExtractorUnavailable(f"Set {setting} to a local copy of {what}.")
    path = Path(value)
    if not path.exists():
        raise ExtractorUnavailable(f"{setting} is {value}, which does not exist ({what}).")
    return path


def resize_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """clean-fid's "clean" resize: PIL bicubic (antialiased) per channel on float32, no
    quantisation after it; (size, size, 3) float32 in 0..255."""
    channels = [
        np.asarray(
            Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
                (size, size), Image.Resampling.BICUBIC
            ),
            dtype=np.float32,
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255)


class RandomCNN(Extractor):
    """The weight-free extractor: a fixed four-layer CNN with seeded Kaiming-normal
    weights (random embeddings are a documented choice for PRDC, Naeem et al. 2020) on
    64×64 clean-resized input, global mean and max pooled. It runs anywhere and needs
    nothing; its numbers are comparable only with its own (same seed and version), never
    with published FIDs."""

    VERSION = 1
    SIZE = 64
    CHANNELS = (3, 16, 32, 64, 96)
    comparable = False
    batch_size = 64

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.kernels = [
            rng.normal(0, np.sqrt(2 / (9 * c_in)), size=(3, 3, c_in, c_out))
            for c_in, c_out in zip(self.CHANNELS[:-1], self.CHANNELS[1:], strict=True)
        ]
        self.dim = 2 * self.CHANNELS[-1]
        self.id = f"random-cnn-v{self.VERSION}-seed{seed}-clean{self.SIZE}"

    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        resized = map_images(lambda image: resize_bicubic(image, self.SIZE), images)
        x = np.stack(resized).astype(np.float64)
        x = (x - 128.0) / 128.0
        for kernel in self.kernels:
            padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            windows = sliding_window_view(padded, (3, 3), axis=(1, 2))[:, ::2, ::2]
            x = np.maximum(np.einsum("nhwcij,ijcd->nhwd", windows, kernel, optimize=True), 0)
        return np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=1)


# Each builder checks its setting before importing torch: the missing file is the news.
def _inception() -> Extractor:
    path = weights_path(
        "VERDICT_INCEPTION_WEIGHTS",
        "the FID InceptionV3 weights (pt_inception-2015-12-05-6726825d.pth or the "
        "TorchScript inception-2015-12-05.pt)",
    )
    from metrics.inception import load_inception

    return load_inception(path, resize=settings.VERDICT_INCEPTION_RESIZE)


def _dinov2() -> Extractor:
    path = weights_path("VERDICT_DINOV2_PATH", "a DINOv2 Hugging Face folder")
    from metrics.hf import load_dinov2

    return load_dinov2(path)


def _clip() -> Extractor:
    path = weights_path("VERDICT_CLIP_PATH", "a CLIP Hugging Face folder")
    from metrics.hf import load_clip

    return load_clip(path)


# Name -> builder. What each name measures, for the admin's choice list.
EXTRACTORS: dict[str, tuple[str, Callable[[], Extractor]]] = {
    "random-cnn": ("weight-free random CNN (not comparable to published FID)", RandomCNN),
    "inception": ("InceptionV3 pool3, FID (local weights)", _inception),
    "dinov2": ("DINOv2 CLS, FD-DINOv2 (local folder)", _dinov2),
    "clip": ("CLIP image embedding, CMMD (local folder)", _clip),
}


def get_extractor(name: str) -> Extractor:
    """The extractor of this name, built (weights loaded); ExtractorUnavailable if not."""
    if name not in EXTRACTORS:
        raise ExtractorUnavailable(
            f"Unknown extractor {name!r}; choose one of {', '.join(sorted(EXTRACTORS))}."
        )
    try:
        return EXTRACTORS[name][1]()
    except ImportError as exc:
        raise ExtractorUnavailable(
            f"The {name} extractor needs {exc.name or 'a package'} (pip install 'verdict[gpu]')."
        ) from None
