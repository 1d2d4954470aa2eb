"""Video encoding, probing and decoding with PyAV (its wheels ship FFmpeg: no system binary).

Every video a rater sees is written here, by one recipe: H.264 (libx264) in MP4, yuv420p,
constant frame rate, no audio, ``+faststart`` so a browser can start before the end has
arrived. The container is written with ``+bitexact`` (no encoder tag), and x264's SEI
message, which carries its version and whole option string inside the bitstream, is cut
out by the ``filter_units`` bitstream filter. Two systems' clips therefore differ in
pixels only: the same settings, the same bytes for the same frames.
"""

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

# H.264 SEI NAL units (type 6): x264 writes its version and options there.
STRIP_SEI = "filter_units=remove_types=6"
CRF = "20"
PRESET = "medium"


class UndecodableStream(ValueError):
    """A video stream is there, but FFmpeg cannot open a decoder for it (a damaged or
    truncated file, or a codec it does not know)."""


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream, checked against decoding."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frames: int
    has_audio: bool


def _even(frames: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: drop a last odd row or column."""
    height, width = frames.shape[1:3]
    return frames[:, : height - height % 2, : width - width % 2]


def encode_mp4(frames: np.ndarray, fps: int) -> bytes:
    """Frames (T × H × W × 3, uint8 RGB) as a metadata-free H.264 MP4 at ``fps``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be T×H×W×3 uint8, not {frames.shape} {frames.dtype}")
    return encode_mp4_stream(iter(frames), fps)


def encode_mp4_stream(frames: Iterable[np.ndarray], fps: int) -> bytes:
    """The same recipe as encode_mp4, for frames (H × W × 3 uint8 RGB, all one size) that
    arrive one at a time: ingest never holds a whole decoded clip in memory."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        container.metadata.clear()
        stream = container.add_stream(
            "libx264",
            rate=int(fps),
            options={"crf": CRF, "preset": PRESET, "movflags": "+faststart"},
        )
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.time_base = Fraction(1, int(fps))
        # Made once the encoder is open (after the first packet), without an out_stream:
        # made earlier, the header keeps PyAV's default size (reference/DIFFUSERS-TINY.md §3).
        strip: BitStreamFilterContext | None = None

        def mux(packets: list[av.Packet]) -> None:
            nonlocal strip
            for packet in packets:
                if strip is None:
                    strip = BitStreamFilterContext(STRIP_SEI, stream)
                for clean in strip.filter(packet):
                    clean.stream = stream
                    container.mux(clean)

        size: tuple[int, int] | None = None
        for index, pixels in enumerate(frames):
            if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
                raise ValueError(f"a frame must be H×W×3 uint8, not {pixels.shape} {pixels.dtype}")
            pixels = _even(pixels[None])[0]
            if size is None:
                size = (pixels.shape[1], pixels.shape[0])
                if size[0] < 2 or size[1] < 2:
                    raise ValueError("no frames to encode")
                stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            elif (pixels.shape[1], pixels.shape[0]) != size:
                raise ValueError(f"frame {index} is not {size[0]}×{size[1]}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = index
            mux(stream.encode(frame))
        if size is None:
            raise ValueError("no frames to encode")
        mux(stream.encode(None))
        if strip is not None:
            for clean in strip.filter(None):
                clean.stream = stream
                container.mux(clean)
    return out.getvalue()


def probe(data: bytes) -> VideoInfo:
    """Read the container and count the first video stream's frames by decoding them all
    (a header's frame count and duration can lie); raises av.FFmpegError or ValueError."""
    with av.open(io.BytesIO(data), "r") as container:
        videos = container.streams.video
        if not videos:
            raise ValueError("no video stream")
        stream = videos[0]
        if stream.codec_context is None:
            raise UndecodableStream("no decoder for the video stream")
        frames = 0
        last_time = 0.0
        for frame in container.decode(stream):
            frames += 1
            if frame.time is not None:
                last_time = max(last_time, float(frame.time))
        rate = stream.average_rate or stream.guessed_rate or 0
        fps = float(rate) if rate else 0.0
        duration = (frames / fps) if fps else last_time
        return VideoInfo(
            container=container.format.name,
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=fps,
            duration_s=round(duration, 4),
            frames=frames,
            has_audio=bool(container.streams.audio),
        )


def decode_frames(data: bytes, *, max_frames: int | None = None) -> np.ndarray:
    """The first video stream's frames as T × H × W × 3 uint8 RGB."""
    out = []
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(container.streams.video[0]):
            out.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(out) >= max_frames:
                break
    if not out:
        raise ValueError("no frame could be decoded")
    return np.stack(out)


@dataclass(frozen=True)
class Header:
    """What a container claims before anything is decoded (any of it may lie)."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float | None
    frames: int
    has_audio: bool


def read_header(data: bytes) -> Header:
    """The container's claims about its first video stream, without decoding a frame;
    raises av.FFmpegError or ValueError."""
    with av.open(io.BytesIO(data), "r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise UndecodableStream("no decoder for the video stream")
        rate = stream.average_rate or stream.guessed_rate or 0
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return Header(
            container=container.format.name,
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0,
            duration_s=duration,
            frames=stream.frames,
            has_audio=bool(container.streams.audio),
        )


def timed_frames(data: bytes) -> Iterator[tuple[Fraction | None, np.ndarray]]:
    """The first video stream's frames, one at a time, as (presentation time in seconds,
    or None where the container gives none; H × W × 3 uint8 RGB)."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            time = None
            if frame.pts is not None and frame.time_base is not None:
                time = frame.pts * frame.time_base
            yield time, frame.to_ndarray(format="rgb24")
