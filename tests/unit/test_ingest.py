import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from generation.exceptions import IngestError
from generation.ingest import ingest_image, make_attention_copy

SECRET = "sdxl-turbo-internal-v3"


def _noise_image(size: tuple[int, int] = (64, 48)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with a forged IHDR size (and a valid CRC): a decompression bomb header."""
    ihdr = bytearray(png[8 : 8 + 25])
    ihdr[8:16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(ihdr[4:21])) & 0xFFFFFFFF
    ihdr[21:25] = struct.pack(">I", crc)
    return png[:8] + bytes(ihdr) + png[33:]


def test_png_is_reencoded_with_only_pixel_chunks() -> None:
    image = _noise_image()
    result = ingest_image(_encode(image, "PNG"))
    assert set(_png_chunks(result.data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert (result.width, result.height, result.media_type) == (64, 48, "image/png")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(result.data))), np.asarray(image))


def test_png_text_chunks_naming_the_model_are_stripped() -> None:
    info = PngInfo()
    info.add_text("parameters", f"a cat, Steps: 20, Model: {SECRET}")
    info.add_text("Software", SECRET, zip=True)
    info.add_itxt("Comment", f"made with {SECRET}")
    original = _encode(_noise_image(), "PNG", pnginfo=info)
    assert SECRET.encode() in original
    result = ingest_image(original)
    assert SECRET.encode() not in result.data
    assert not {b"tEXt", b"zTXt", b"iTXt"} & set(_png_chunks(result.data))
    assert Image.open(io.BytesIO(result.data)).info == {}


def test_exif_naming_the_model_is_stripped_and_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0110] = SECRET  # Model
    exif[0x0131] = SECRET  # Software
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    original = _encode(_noise_image((64, 48)), "JPEG", exif=exif.tobytes(), quality=95)
    assert SECRET.encode() in original
    result = ingest_image(original)
    assert SECRET.encode() not in result.data
    assert b"Exif" not in result.data
    # The stored pixels are upright: the orientation was applied before EXIF was dropped.
    assert (result.width, result.height) == (48, 64)


def test_icc_profile_is_applied_then_dropped() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    result = ingest_image(_encode(_noise_image(), "PNG", icc_profile=icc))
    assert b"iCCP" not in set(_png_chunks(result.data))


def test_webp_and_transparency_are_flattened_to_rgb_png() -> None:
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 0))
    result = ingest_image(_encode(rgba, "WEBP", lossless=True))
    pixels = np.asarray(Image.open(io.BytesIO(result.data)))
    assert pixels.shape == (10, 20, 3)
    assert (pixels == 255).all()  # fully transparent red over white is white


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _with_ihdr_size(_encode(Image.new("RGB", (1, 1)), "PNG"), 7_000, 7_000)
    with pytest.raises(IngestError, match="decompression-bomb guard"):
        ingest_image(bomb, max_pixels=40_000_000)


def test_huge_bomb_is_refused_by_pillows_own_limit_too() -> None:
    bomb = _with_ihdr_size(_encode(Image.new("RGB", (1, 1)), "PNG"), 100_000, 100_000)
    with pytest.raises(IngestError, match="decompression"):
        ingest_image(bomb, max_pixels=10**12)


def test_truncated_png_is_refused() -> None:
    data = _encode(_noise_image((256, 256)), "PNG")
    with pytest.raises(IngestError, match="damaged or truncated"):
        ingest_image(data[: len(data) // 2])


def test_text_file_named_png_is_refused() -> None:
    with pytest.raises(IngestError, match="not an image Pillow recognises"):
        ingest_image(b"hello, I am a text file with a .png name\n")


def test_disallowed_format_is_refused() -> None:
    with pytest.raises(IngestError, match="format GIF is not allowed"):
        ingest_image(_encode(Image.new("P", (4, 4)), "GIF"))


def test_animated_png_is_refused() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(IngestError, match="animated"):
        ingest_image(out.getvalue())


def test_empty_and_oversized_files_are_refused() -> None:
    with pytest.raises(IngestError, match="empty"):
        ingest_image(b"")
    with pytest.raises(IngestError, match="above the limit"):
        ingest_image(_encode(_noise_image(), "PNG"), max_bytes=100)


def test_attention_copy_is_visibly_corrupted_and_deterministic() -> None:
    media = ingest_image(_encode(_noise_image((96, 96)), "PNG"))
    copy = make_attention_copy(media)
    again = make_attention_copy(media)
    assert copy.data == again.data
    assert (copy.width, copy.height) == (media.width, media.height)
    original = np.asarray(Image.open(io.BytesIO(media.data)), dtype=float)
    corrupted = np.asarray(Image.open(io.BytesIO(copy.data)), dtype=float)
    assert np.abs(original - corrupted).mean() > 40
