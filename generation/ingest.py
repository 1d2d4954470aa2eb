"""Media ingest shared by every backend: validate, strip metadata, re-encode, hash.

Whatever a backend or an upload hands over is untrusted. An image is accepted only if
Pillow recognises it as an allowed format from its bytes (not its name), its pixel count is
under the decompression-bomb limit, and it decodes completely. It is then rebuilt from its
pixels alone and written as PNG: EXIF, XMP, ICC profiles and PNG text chunks (where
diffusion UIs write the model name and parameters) cannot survive, every system's media
share one format, and a rater's browser sees nothing but pixels.

A video is held to the same rule: its header is checked (container, codec, size,
length) before anything is decoded, then its frames are decoded and written again with
generation/video.py's one recipe (H.264 MP4 at a constant rate, no audio, no tags), and
its first frame becomes a PNG poster through the image path.
"""

import hashlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from django.conf import settings
from PIL import Image, ImageCms, ImageDraw, ImageOps, UnidentifiedImageError

from generation.exceptions import IngestError
from generation.video import (
    Header,
    UndecodableStream,
    decode_frames,
    encode_mp4_stream,
    read_header,
    timed_frames,
)

ALLOWED_IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
# FFmpeg's demuxer names: MP4 and MOV share one, as do Matroska and WebM.
ALLOWED_VIDEO_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
ALLOWED_VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
# Re-encoded at the source's rate, rounded and held to this range: a constant rate.
MIN_FPS, MAX_FPS = 1, 60
# For a container that states no rate at all.
DEFAULT_FPS = 24
# Decoded frames per second of clip before timestamps are not believed (all equal, say).
MAX_SOURCE_FPS = 240


@dataclass(frozen=True)
class IngestedMedia:
    data: bytes
    extension: str
    media_type: str
    width: int
    height: int
    sha256: str
    duration_s: float | None = None
    # A video's first frame as PNG (what the page shows before it plays); None for images.
    poster: bytes | None = None


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


def _corrupt(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Coarse blocks, strong noise and a grey cross over the picture."""
    width, height = image.size
    blocks = image.resize((max(1, width // 24), max(1, height // 24)), Image.Resampling.BILINEAR)
    image = blocks.resize((width, height), Image.Resampling.NEAREST)
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 60, (height, width, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    stroke = max(4, min(width, height) // 12)
    draw.line((0, 0, width, height), fill=(128, 128, 128), width=stroke)
    draw.line((0, height, width, 0), fill=(128, 128, 128), width=stroke)
    return image


def make_attention_copy(media: IngestedMedia) -> IngestedMedia:
    """The known-worse side of an attention check, made from an ingested medium.

    An image gets visibly corrupted. A video is either corrupted on every frame or frozen
    on its first frame for the whole clip, chosen by its content hash; either way it keeps
    the original's rate and length.
    """
    # Seeded by the content, so the copy of the same output is always the same.
    rng = np.random.default_rng(int(media.sha256[:16], 16))
    if media.media_type == "video/mp4":
        return _video_attention_copy(media, rng)
    image = _corrupt(Image.open(io.BytesIO(media.data)).convert("RGB"), rng)
    return _result(_encode_png(image), image.size)


def _video_attention_copy(media: IngestedMedia, rng: np.random.Generator) -> IngestedMedia:
    frozen = int(media.sha256[16:32], 16) % 2 == 1
    fps = round(read_header(media.data).fps)  # our own file: an exact constant rate
    count = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal count
        first = None
        for _, pixels in timed_frames(media.data):
            count += 1
            if frozen:
                first = pixels if first is None else first
                yield first
            else:
                yield np.asarray(_corrupt(Image.fromarray(pixels, "RGB"), rng))

    mp4 = encode_mp4_stream(frames(), fps)
    return _video_result(mp4, frames=count, fps=fps)


def _video_result(mp4: bytes, *, frames: int, fps: int) -> IngestedMedia:
    # The poster is the first frame as the browser will decode it, through the image path.
    first = decode_frames(mp4, max_frames=1)[0]
    return IngestedMedia(
        data=mp4,
        extension=".mp4",
        media_type="video/mp4",
        width=first.shape[1],
        height=first.shape[0],
        sha256=hashlib.sha256(mp4).hexdigest(),
        duration_s=round(frames / fps, 4),
        poster=_encode_png(Image.fromarray(first, "RGB")),
    )


def _video_header(data: bytes, *, max_pixels: int, max_seconds: float) -> Header:
    """The container's claims, checked before a frame is decoded."""
    try:
        header = read_header(data)
    except av.FFmpegError:
        raise IngestError(
            "not a video that can be read (damaged, truncated or not a video at all); "
            "allowed are MP4, MOV and WebM"
        ) from None
    except UndecodableStream:
        raise IngestError(
            "the video stream cannot be decoded (the file is damaged or truncated, or its "
            "codec is unknown)"
        ) from None
    except ValueError:
        raise IngestError("the file holds no video stream") from None
    if header.container not in ALLOWED_VIDEO_CONTAINERS:
        kind = "an image" if header.container.endswith("_pipe") else f"a {header.container} file"
        raise IngestError(f"this is {kind}, not a video; allowed are MP4, MOV and WebM")
    if header.codec not in ALLOWED_VIDEO_CODECS:
        raise IngestError(
            f"video codec {header.codec} is not allowed; use H.264, H.265, VP8, VP9, AV1 or MPEG-4"
        )
    width, height = header.width, header.height
    if width < 2 or height < 2:
        raise IngestError(f"the video is {width}×{height} pixels: too small to show")
    if width * height > max_pixels:
        raise IngestError(
            f"the video is {width}×{height} = {width * height:,} pixels a frame, above the "
            f"limit of {max_pixels:,}"
        )
    if header.duration_s is not None and header.duration_s > max_seconds + 1e-3:
        raise IngestError(_too_long(header.duration_s, max_seconds))
    return header


def _too_long(seconds: float, limit: float) -> str:
    return f"the clip is {seconds:.2f} s long, above the limit of {limit:g} s"


class _Resampled:
    """The source's frames at a constant ``fps``: each output tick shows the last source
    frame shown by then, so a variable or odd rate keeps its timing and length. The limits
    are checked again on what actually decodes, since a header can lie."""

    def __init__(self, data: bytes, *, header: Header, fps: int, max_seconds: float) -> None:
        self.data, self.header, self.fps, self.max_seconds = data, header, fps, max_seconds
        self.emitted = 0
        self.decoded = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        step = Fraction(1, self.fps)
        # A source frame's own length, for timestamps the container does not give.
        rate = Fraction(self.header.fps).limit_denominator(1001)
        source_step = 1 / rate if rate else step
        size = (self.header.height, self.header.width)
        most = int((self.max_seconds + 1) * MAX_SOURCE_FPS)
        start: Fraction | None = None
        held: np.ndarray | None = None
        last = Fraction(0)
        try:
            for time, pixels in timed_frames(self.data):
                self.decoded += 1
                if self.decoded > most:
                    raise IngestError("the video has far more frames than its length allows")
                if pixels.shape[:2] != size:
                    raise IngestError("the video changes its picture size part-way through")
                if time is None:
                    time = (self.decoded - 1) * source_step
                start = time if start is None else start
                last = time - start
                if last > self.max_seconds + 1e-3:
                    raise IngestError(_too_long(float(last), self.max_seconds))
                if held is not None:
                    while self.emitted * step < last:
                        self.emitted += 1
                        yield held
                held = pixels
        except av.FFmpegError:
            raise IngestError(
                "the video is damaged or truncated: its frames do not decode"
            ) from None
        if held is None:
            raise IngestError("the video has no frame that decodes")
        if self.header.frames > self.decoded + 1:
            # One frame of slack: an edit list may hide a leading frame.
            raise IngestError(
                f"the video is truncated: its header lists {self.header.frames} frames, "
                f"{self.decoded} decode"
            )
        # The last frame lasts one source frame; the length is rounded to whole ticks.
        total = max(1, round((last + source_step) * self.fps))
        while self.emitted < total:
            self.emitted += 1
            yield held


def ingest_video(
    data: bytes,
    *,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    max_pixels: int | None = None,
) -> IngestedMedia:
    """Validate a video and return it re-encoded by the one recipe (H.264 MP4, constant
    rate, no audio, no metadata) with a PNG poster of its first frame.

    Raises IngestError with a message fit for the researcher.
    """
    max_bytes = settings.INGEST_MAX_BYTES if max_bytes is None else max_bytes
    max_seconds = settings.INGEST_MAX_VIDEO_SECONDS if max_seconds is None else max_seconds
    max_pixels = settings.INGEST_MAX_PIXELS if max_pixels is None else max_pixels
    if not data:
        raise IngestError("the file is empty")
    if len(data) > max_bytes:
        raise IngestError(f"the file is {len(data):,} bytes, above the limit of {max_bytes:,}")
    header = _video_header(data, max_pixels=max_pixels, max_seconds=max_seconds)
    fps = min(MAX_FPS, max(MIN_FPS, round(header.fps))) if header.fps else DEFAULT_FPS
    frames = _Resampled(data, header=header, fps=fps, max_seconds=max_seconds)
    try:
        mp4 = encode_mp4_stream(iter(frames), fps)
    except (av.FFmpegError, ValueError):
        raise IngestError("the video's frames could not be written again") from None
    return _video_result(mp4, frames=frames.emitted, fps=fps)


INGESTERS: dict[str, Callable[..., IngestedMedia]] = {"image": ingest_image, "video": ingest_video}


def ingest_media(
    data: bytes,
    *,
    modality: str,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    max_seconds: float | None = None,
) -> IngestedMedia:
    """Ingest a medium of a study's modality ("image" or "video"): the one place that
    tells the two apart. An image given to a video study (or the reverse) is refused."""
    limits: dict[str, float | None] = {"max_bytes": max_bytes, "max_pixels": max_pixels}
    if modality == "video":
        limits["max_seconds"] = max_seconds
    try:
        ingest = INGESTERS[modality]
    except KeyError:
        raise IngestError(f"there is no ingest for {modality!r} media") from None
    return ingest(data, **limits)
