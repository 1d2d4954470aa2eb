"""Stored bytes to features: decode, hand to the extractor in batches.

Features are computed from the stored (ingested, lossless PNG) bytes of both the
generated and the reference set, so the two sides go through one decoder and one
preprocessing (METRICS.md §2.9: resize and compression choices move FID by as much as
published improvements).
"""

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from PIL import Image

from metrics.extractors import Extractor, map_images

T = TypeVar("T")


def decode_rgb(data: bytes) -> np.ndarray:
    """An image's bytes as uint8 RGB, height × width × 3 (alpha flattened on black, as the
    stored PNGs carry none)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def features_of_bytes(images: Iterable[bytes], extractor: Extractor) -> np.ndarray:
    """The extractor's features of encoded images, decoded one batch at a time: an
    (n, dim) float64 array."""
    rows = [
        extractor.extract(map_images(decode_rgb, batch))
        for batch in batches(images, extractor.batch_size)
    ]
    if not rows:
        return np.zeros((0, extractor.dim))
    return np.concatenate(rows).astype(np.float64, copy=False)


def features_of_files(paths: Sequence[str], extractor: Extractor) -> np.ndarray:
    def read(path: str) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    return features_of_bytes((read(path) for path in paths), extractor)
