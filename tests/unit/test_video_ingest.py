"""Video ingest: every clip re-encoded by one recipe, hostile inputs refused plainly."""

import hashlib
import io
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from generation.exceptions import IngestError
from generation.ingest import IngestedMedia, ingest_media, ingest_video, make_attention_copy
from generation.video import decode_frames, probe, read_header
from tests.factories import png_bytes

SECRET = "SECRET-model-9000"
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"  # FFmpeg's name for the MP4 demuxer


def _frames(count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A bright square moving over a gradient: smooth enough to compress like a video."""
    width, height = size
    ramp = np.linspace(40, 200, width, dtype=np.float64)[None, :, None]
    base = np.broadcast_to(ramp, (height, width, 3)).copy()
    base[..., seed % 3] = 90
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frame = base.copy()
        x = (i * 3) % max(1, width - 8)
        frame[4:12, x : x + 8] = 250
        out[i] = frame.astype(np.uint8)
    return out


def _clip(
    count: int = 12,
    size: tuple[int, int] = (48, 32),
    rate: int | Fraction = 12,
    *,
    fmt: str = "mp4",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    audio: bool = False,
    seed: int = 0,
) -> bytes:
    """A clip written with PyAV the way other tools write theirs (tags, audio, any codec)."""
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        container.metadata.update(tags or {})
        video = container.add_stream(codec, rate=rate, options=options or {})
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
        if tags:
            video.metadata.update({"handler_name": tags.get("title", ""), "encoder": SECRET})
        sound = container.add_stream("aac", rate=44100) if audio else None
        for i, pixels in enumerate(_frames(count, size, seed)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            silence = np.zeros((1, 1024), np.float32)
            for i in range(44):  # about a second
                chunk = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, i * 1024
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return out.getvalue()


def _tags(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    with av.open(io.BytesIO(data), "r") as container:
        return dict(container.metadata), [dict(s.metadata) for s in container.streams]


def test_a_clip_is_reencoded_as_h264_mp4_with_a_png_poster() -> None:
    source = _clip()
    media = ingest_video(source)
    assert (media.media_type, media.extension) == ("video/mp4", ".mp4")
    assert (media.width, media.height, media.duration_s) == (48, 32, 1.0)
    assert media.sha256 == hashlib.sha256(media.data).hexdigest()
    info = probe(media.data)
    assert (info.codec, info.fps, info.frames, info.has_audio) == ("h264", 12.0, 12, False)
    # The same pictures, through one lossy generation more.
    assert np.abs(decode_frames(media.data).astype(float) - _frames(12, (48, 32))).mean() < 6
    assert media.poster is not None
    poster = Image.open(io.BytesIO(media.poster))
    assert (poster.format, poster.size, poster.info) == ("PNG", (48, 32), {})
    assert np.array_equal(np.asarray(poster.convert("RGB")), decode_frames(media.data)[0])
    assert ingest_video(source).data == media.data  # one recipe: the same bytes again


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01garbage" * 500, "not a video that can be read"),
        (np.random.default_rng(3).bytes(20_000), "not a video that can be read"),
        (png_bytes(), "this is an image, not a video"),
    ],
    ids=["empty", "zeros", "random", "png"],
)
def test_what_is_not_a_video_is_refused_plainly(data: bytes, message: str) -> None:
    with pytest.raises(IngestError, match=message) as caught:
        ingest_video(data)
    assert "Errno" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_truncated_clip_is_refused() -> None:
    clip = _clip(count=24)
    for cut in (len(clip) // 2, len(clip) - 200, 64):
        with pytest.raises(IngestError, match="damaged or truncated|truncated"):
            ingest_video(clip[:cut])


def _audio_with(video_codec: str | None) -> bytes:
    """A WebM of a little sound and, if named, a video stream that never gets a frame."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        if video_codec:
            video = container.add_stream(video_codec, rate=12)
            assert isinstance(video, av.VideoStream)
            video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        sound = container.add_stream("libopus", rate=48000)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), "fltp", "mono")
        chunk.sample_rate, chunk.pts = 48000, 0
        for packet in [*sound.encode(chunk), *sound.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def test_a_clip_without_frames_or_without_video_is_refused() -> None:
    empty_stream = _audio_with("libvpx-vp9")
    assert read_header(empty_stream).codec == "vp9"  # a video stream, and nothing in it
    with pytest.raises(IngestError, match="no frame that decodes"):
        ingest_video(empty_stream)
    with pytest.raises(IngestError, match="no video stream"):
        ingest_video(_audio_with(None))


def test_limits_on_length_size_and_pixels() -> None:
    three_seconds = _clip(count=36)
    with pytest.raises(IngestError, match=r"3.00 s long, above the limit of 2 s"):
        ingest_video(three_seconds, max_seconds=2)
    assert ingest_video(three_seconds, max_seconds=3).duration_s == 3.0
    with pytest.raises(IngestError, match="above the limit of 100"):
        ingest_video(three_seconds, max_bytes=100)
    with pytest.raises(IngestError, match=r"48×32 = 1,536 pixels a frame, above the limit"):
        ingest_video(three_seconds, max_pixels=1000)


def test_the_default_length_limit_comes_from_settings(settings: Any) -> None:
    settings.INGEST_MAX_VIDEO_SECONDS = 0.5
    with pytest.raises(IngestError, match="above the limit of 0.5 s"):
        ingest_video(_clip())


def test_audio_is_dropped() -> None:
    source = _clip(audio=True)
    assert read_header(source).has_audio
    media = ingest_video(source)
    with av.open(io.BytesIO(media.data), "r") as container:
        assert [s.type for s in container.streams] == ["video"]


def test_tags_and_encoder_strings_do_not_survive() -> None:
    source = _clip(tags={"title": SECRET, "comment": SECRET, "encoder": SECRET, "artist": SECRET})
    assert SECRET.encode() in source and b"x264" in source
    media = ingest_video(source)
    for needle in (SECRET.encode(), b"x264", b"Lavf", b"Lavc", b"encoder"):
        assert needle not in media.data
    container_tags, stream_tags = _tags(media.data)
    assert not {"title", "comment", "encoder", "artist"} & set(container_tags)
    assert SECRET not in str(container_tags) + str(stream_tags)


def test_an_odd_sized_clip_loses_its_last_row_and_column() -> None:
    source = _clip(size=(33, 25), pix_fmt="yuv444p")
    assert (read_header(source).width, read_header(source).height) == (33, 25)
    media = ingest_video(source)
    assert (media.width, media.height) == (32, 24)
    assert probe(media.data).codec == "h264"


def test_vp9_webm_is_accepted_and_written_as_h264_mp4() -> None:
    vp9 = {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "4"}
    source = _clip(count=8, rate=8, fmt="webm", codec="libvpx-vp9", options=vp9)
    assert read_header(source).codec == "vp9"
    media = ingest_video(source)
    info = probe(media.data)
    assert (info.container.split(",")[1], info.codec, info.fps, info.frames) == (
        "mp4",
        "h264",
        8,
        8,
    )
    assert media.media_type == "video/mp4" and media.duration_s == 1.0


@pytest.mark.parametrize(
    ("rate", "count", "fps", "frames"),
    [
        (Fraction(30000, 1001), 30, 30, 30),  # NTSC: rounded to a whole rate
        (120, 120, 60, 60),  # above the ceiling: resampled, the length kept
        (Fraction(1, 2), 2, 1, 4),  # below the floor: each frame held longer
    ],
)
def test_the_frame_rate_is_made_constant_and_sane(
    rate: Fraction | int, count: int, fps: int, frames: int
) -> None:
    source = _clip(count=count, rate=rate, size=(16, 16))
    info = probe(ingest_video(source).data)
    assert (info.fps, info.frames) == (fps, frames)


def test_ingest_media_dispatches_on_the_modality() -> None:
    assert ingest_media(_clip(), modality="video").media_type == "video/mp4"
    assert ingest_media(png_bytes(), modality="image").media_type == "image/png"
    assert ingest_media(png_bytes(), modality="image").poster is None
    with pytest.raises(IngestError, match="this is an image, not a video"):
        ingest_media(png_bytes(), modality="video")
    with pytest.raises(IngestError, match="not an image"):
        ingest_media(_clip(), modality="image")
    with pytest.raises(IngestError, match="no ingest for 'audio'"):
        ingest_media(b"x", modality="audio")
    with pytest.raises(IngestError, match="above the limit of 0.5 s"):
        ingest_media(_clip(), modality="video", max_seconds=0.5)


def _ingested_by_mode() -> dict[bool, IngestedMedia]:
    """An ingested clip of each attention-copy kind (frozen or not, by content hash)."""
    found: dict[bool, IngestedMedia] = {}
    for seed in range(40):
        media = ingest_video(_clip(seed=seed, count=6 + seed))
        found.setdefault(int(media.sha256[16:32], 16) % 2 == 1, media)
        if len(found) == 2:
            return found
    raise AssertionError("no clip of each kind")


def test_video_attention_copies_keep_rate_and_length_and_are_plainly_worse() -> None:
    for frozen, media in _ingested_by_mode().items():
        copy = make_attention_copy(media)
        assert copy == make_attention_copy(media)  # seeded by the content
        assert (copy.media_type, copy.extension) == ("video/mp4", ".mp4")
        assert (copy.width, copy.height, copy.duration_s) == (
            media.width,
            media.height,
            media.duration_s,
        )
        original, worse = decode_frames(media.data), decode_frames(copy.data)
        assert probe(copy.data).fps == probe(media.data).fps
        assert len(worse) == len(original)
        assert copy.poster is not None
        poster = np.asarray(Image.open(io.BytesIO(copy.poster)).convert("RGB"))
        assert np.array_equal(poster, worse[0])
        if frozen:
            # The first picture held: no motion at all, while the original moves.
            assert np.abs(worse.astype(float) - worse[0]).max() <= 2
            assert np.abs(original.astype(float) - original[0]).max() > 100
        else:
            assert np.abs(worse.astype(float) - original).mean() > 30
