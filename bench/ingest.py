"""Media path cost per image: synthetic generation and ingest, at the demo's 512x512.

Prints medians over repeated runs and, as the peer in the same process, a bare Pillow
decode + PNG encode of the same bytes (the floor any re-encoding ingest pays).
Run: .venv/bin/python bench/ingest.py
"""

import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from PIL import Image  # noqa: E402

from generation.backends import GenerationRequest, get_backend  # noqa: E402
from generation.ingest import ingest_image, make_attention_copy  # noqa: E402

REPEATS = 15
PARAMS = {"noise": 22, "blur": 1.0, "jpeg_quality": 60}


def _median_ms(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    backend = get_backend("synthetic")
    request = GenerationRequest("bench", "three red circles above a blue square", "", 1, PARAMS)
    media = backend.generate(request)
    ingested = ingest_image(media.data)

    def bare_pillow() -> None:
        image = Image.open(io.BytesIO(media.data))
        image.load()
        image.save(io.BytesIO(), "PNG", compress_level=6)

    rows = [
        ("synthetic generate (512x512, degraded)", _median_ms(lambda: backend.generate(request))),
        ("ingest_image", _median_ms(lambda: ingest_image(media.data))),
        ("make_attention_copy", _median_ms(lambda: make_attention_copy(ingested))),
        ("peer: bare Pillow decode + PNG encode", _median_ms(bare_pillow)),
    ]
    peer = rows[-1][1]
    print(f"{'step':42} {'median ms':>10} {'x peer':>7}")
    for name, ms in rows:
        print(f"{name:42} {ms:10.1f} {ms / peer:7.2f}")


if __name__ == "__main__":
    main()
