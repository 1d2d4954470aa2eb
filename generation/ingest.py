"""Media ingest shared by every backend: validate, strip metadata, re-encode, hash.

Whatever a backend or an upload hands over is untrusted. An image is accepted only if
Pillow recognises it as an allowed format from its bytes (not its name), its pixel count is
under the decompression-bomb limit, and it decodes completely. It is then rebuilt from its
pixels alone and written as PNG: EXIF, XMP, ICC profiles and PNG text chunks (where
diffusion UIs write the model name and parameters) cannot survive, every system's media
share one format, and a rater's browser sees nothing but pixels.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, ImageCms, ImageDraw, ImageOps, UnidentifiedImageError

from generation.exceptions import IngestError

ALLOWED_IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


@dataclass(frozen=True)
class IngestedMedia:
    data: bytes
    extension: str
    media_type: str
    width: int
    height: int
    sha256: str
    duration_s: float | None = None


def _open_checked(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open without decoding and apply the format and size guards."""
    with warnings.catch_warnings():
        # Pillow warns above its own limit; any warning here is a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise IngestError(f"refused as a decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise IngestError(
                "not an image Pillow recognises; allowed formats are PNG, JPEG and WebP"
            ) from None
    if image.format not in ALLOWED_IMAGE_FORMATS:
        raise IngestError(f"format {image.format} is not allowed; use PNG, JPEG or WebP")
    width, height = image.size
    if width * height > max_pixels:
        raise IngestError(
            f"image is {width}×{height} = {width * height:,} pixels, above the limit of "
            f"{max_pixels:,} (decompression-bomb guard)"
        )
    if getattr(image, "n_frames", 1) > 1:
        raise IngestError("animated images are not supported; submit a single frame")
    return image


def _decode_fully(data: bytes, *, max_pixels: int) -> Image.Image:
    probe = _open_checked(data, max_pixels=max_pixels)
    try:
        probe.verify()  # checksums and structure, without decoding pixels
        image = _open_checked(data, max_pixels=max_pixels)
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise IngestError(f"the image is damaged or truncated ({exc})") from None
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile before it is dropped, so colours do not shift."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in {"RGB", "RGBA"}:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(image, source, srgb, outputMode=image.mode)
    except ImageCms.PyCMSError:
        return image
    return converted if converted is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels only; transparency is composited over white."""
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def _encode_png(pixels: Image.Image) -> bytes:
    # A new image from raw bytes carries no info dict: no EXIF, ICC, text or dpi.
    clean = Image.frombytes("RGB", pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _result(png: bytes, size: tuple[int, int]) -> IngestedMedia:
    return IngestedMedia(
        data=png,
        extension=".png",
        media_type="image/png",
        width=size[0],
        height=size[1],
        sha256=hashlib.sha256(png).hexdigest(),
    )


def ingest_image(
    data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = None
) -> IngestedMedia:
    """Validate an image and return it re-encoded as metadata-free PNG.

    Raises IngestError with a message fit for the researcher.
    """
    max_bytes = settings.INGEST_MAX_BYTES if max_bytes is None else max_bytes
    max_pixels = settings.INGEST_MAX_PIXELS if max_pixels is None else max_pixels
    if not data:
        raise IngestError("the file is empty")
    if len(data) > max_bytes:
        raise IngestError(f"the file is {len(data):,} bytes, above the limit of {max_bytes:,}")
    image = _decode_fully(data, max_pixels=max_pixels)
    image = ImageOps.exif_transpose(image) or image
    pixels = _flatten(_to_srgb(image))
    return _result(_encode_png(pixels), pixels.size)


def make_attention_copy(media: IngestedMedia) -> IngestedMedia:
    """A visibly corrupted copy of an ingested image, the known-worse side of an
    attention check: coarse blocks, strong noise and a grey cross over the picture."""
    image = Image.open(io.BytesIO(media.data)).convert("RGB")
    width, height = image.size
    blocks = image.resize((max(1, width // 24), max(1, height // 24)), Image.Resampling.BILINEAR)
    image = blocks.resize((width, height), Image.Resampling.NEAREST)
    # Seeded by the content, so the copy of the same output is always the same.
    rng = np.random.default_rng(int(media.sha256[:16], 16))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 60, (height, width, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    stroke = max(4, min(width, height) // 12)
    draw.line((0, 0, width, height), fill=(128, 128, 128), width=stroke)
    draw.line((0, height, width, 0), fill=(128, 128, 128), width=stroke)
    return _result(_encode_png(image), image.size)
