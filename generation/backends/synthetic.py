"""Synthetic backend: deterministic procedural images with per-system degradations.

A calibration tool, not a model. The scene depends only on (prompt, seed), so every
system draws the same picture; each system's parameters then degrade it (blur, noise,
JPEG quality, colour shift, lower resolution, and a "prompt mismatch" that drops an
element the prompt names). Systems therefore have a known true quality order, which is
what the demo, the tests and a new study's dry run need: a pipeline that cannot rank
these correctly will not rank real models correctly either.

Prompts are read for colours, counts and shapes ("two red circles above a blue square").
Words it does not know still give a deterministic picture, made from the prompt's hash.
The output carries a PNG text chunk naming the system, as diffusion UIs write one, so that
every run exercises the metadata stripping of ingest.

For a video study it makes a short clip of the same scene with its elements drifting and
bouncing, and the video degradations (flicker, dropped frames, judder) on top of the
per-frame ones. The clip's MP4 tags name the system, for ingest to strip the same way.
"""

import hashlib
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from PIL.PngImagePlugin import PngInfo

from generation.backends.base import (
    GeneratedMedia,
    GenerationRequest,
    Parameter,
    validate_declared,
)
from generation.exceptions import BackendBusy
from generation.video import encode_mp4_stream

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "orange": (245, 130, 32),
    "yellow": (250, 210, 30),
    "gold": (212, 175, 55),
    "green": (44, 160, 44),
    "teal": (0, 128, 128),
    "blue": (31, 90, 200),
    "purple": (128, 60, 170),
    "pink": (240, 120, 180),
    "brown": (130, 80, 40),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (25, 25, 25),
}
# Word -> drawing primitive, and the colour it gets when the prompt names none.
SHAPES: dict[str, tuple[str, str]] = {
    "circle": ("disc", "red"),
    "ball": ("disc", "orange"),
    "dot": ("disc", "black"),
    "planet": ("disc", "teal"),
    "sun": ("sun", "yellow"),
    "moon": ("moon", "white"),
    "square": ("square", "blue"),
    "box": ("square", "brown"),
    "cube": ("square", "purple"),
    "triangle": ("triangle", "green"),
    "pyramid": ("triangle", "gold"),
    "mountain": ("mountain", "grey"),
    "star": ("star", "yellow"),
    "heart": ("heart", "red"),
    "tree": ("tree", "green"),
    "flower": ("flower", "pink"),
    "cloud": ("cloud", "white"),
    "house": ("house", "brown"),
    "ring": ("ring", "gold"),
}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
MAX_PER_ELEMENT = 6
MAX_ELEMENTS = 12


def _param(name: str, kind: type, low: float, high: float, default: Any, help: str,
           nullable: bool = False) -> tuple[str, Parameter]:  # fmt: skip
    return name, Parameter(name, kind, default, help, low, high, nullable)


PARAMS: dict[str, Parameter] = dict(
    [
        _param("width", int, 32, 2048, 512, "Image width in pixels."),
        _param("height", int, 32, 2048, 512, "Image height in pixels."),
        _param("blur", float, 0, 30, 0.0, "Gaussian blur radius in pixels."),
        _param("noise", float, 0, 128, 0.0, "Added Gaussian noise (SD, 0–255 scale)."),
        _param(
            "jpeg_quality",
            int,
            1,
            95,
            None,
            "JPEG round trip at this quality; none: lossless.",
            nullable=True,
        ),  # fmt: skip
        _param("colour_shift", float, -180, 180, 0.0, "Hue rotation in degrees."),
        _param(
            "resolution",
            float,
            0.02,
            1,
            1.0,
            "Render at this fraction of the size, then scale back up.",
        ),  # fmt: skip
        # The same draw is used for every system, so a higher value drops on a superset.
        _param(
            "prompt_mismatch",
            float,
            0,
            1,
            0.0,
            "Probability that one element the prompt names is left out.",
        ),  # fmt: skip
        # Simulated operating costs (the demo's readiness view), jittered ±30 % per output.
        _param(
            "simulated_gpu_seconds",
            float,
            0,
            600,
            0.0,
            "Simulated GPU-seconds per image; 0 reports none.",
        ),  # fmt: skip
        _param(
            "simulated_memory_mb",
            float,
            0,
            200_000,
            0.0,
            "Simulated peak GPU memory (MiB); 0 reports none.",
        ),  # fmt: skip
        _param(
            "simulated_seconds",
            float,
            0,
            600,
            0.0,
            "An API model's simulated latency in seconds (no GPU-seconds).",
        ),  # fmt: skip
        # Video studies only; an image study ignores these.
        _param("frames", int, 1, 720, 24, "Video: frames in the clip."),
        _param("fps", int, 1, 60, 12, "Video: frames per second."),
        _param(
            "flicker",
            float,
            0,
            1,
            0.0,
            "Video: brightness oscillates frame to frame by up to this fraction.",
        ),  # fmt: skip
        _param(
            "dropped_frames",
            float,
            0,
            1,
            0.0,
            "Video: share of frames replaced by the frame before.",
        ),  # fmt: skip
        _param(
            "judder",
            float,
            0,
            1,
            0.0,
            "Video: each frame's moment jitters by up to this fraction of a frame.",
        ),  # fmt: skip
        _param(
            "fail_attempts",
            int,
            0,
            10,
            0,
            "Testing aid: fail the first N attempts of every item as busy.",
        ),  # fmt: skip
    ]
)


@dataclass(frozen=True)
class Element:
    shape: str
    word: str
    colour: tuple[int, int, int]
    count: int


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _singular(word: str) -> str:
    for suffix, cut in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and word[: -len(suffix)] + cut in SHAPES:
            return word[: -len(suffix)] + cut
    return word


def parse_elements(prompt: str) -> list[Element]:
    """The shapes a prompt names, with their colour and count."""
    words = re.findall(r"[a-z]+|\d+", prompt.lower())
    elements: list[Element] = []
    for i, raw in enumerate(words):
        word = _singular(raw)
        if word not in SHAPES:
            continue
        shape, default_colour = SHAPES[word]
        colour, count = COLOURS[default_colour], 1
        for before in words[max(0, i - 3) : i]:
            if before in COLOURS:
                colour = COLOURS[before]
            elif before in NUMBERS:
                count = NUMBERS[before]
            elif before.isdigit():
                count = int(before)
        elements.append(Element(shape, word, colour, max(1, min(count, MAX_PER_ELEMENT))))
    return elements[:MAX_ELEMENTS]


def _fallback_elements(prompt: str) -> list[Element]:
    rng = _rng("fallback", prompt)
    words = sorted(SHAPES)
    colours = sorted(COLOURS)
    picked = []
    for _ in range(int(rng.integers(1, 4))):
        word = words[int(rng.integers(len(words)))]
        colour = COLOURS[colours[int(rng.integers(len(colours)))]]
        picked.append(Element(SHAPES[word][0], word, colour, int(rng.integers(1, 3))))
    return picked


def _background(prompt: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    text = prompt.lower()
    width, height = size
    top: tuple[int, ...]
    bottom: tuple[int, ...]
    if any(w in text for w in ("night", "dark", "space")):
        top, bottom = (10, 14, 40), (40, 50, 90)
    elif any(w in text for w in ("sunset", "dusk", "dawn")):
        top, bottom = (90, 50, 140), (250, 150, 60)
    else:
        tint = rng.integers(-15, 16, size=3)
        top = tuple(int(c) for c in np.clip(np.array((150, 200, 240)) + tint, 0, 255))
        bottom = tuple(int(c) for c in np.clip(np.array((235, 240, 250)) + tint, 0, 255))
    ramp = np.linspace(0, 1, height)[:, None, None]
    pixels = (1 - ramp) * np.array(top) + ramp * np.array(bottom)
    image = Image.fromarray(np.repeat(pixels, width, axis=1).astype(np.uint8), "RGB")
    ground = None
    if any(w in text for w in ("ocean", "sea", "water", "lake", "beach")):
        ground = (40, 100, 170)
    elif any(w in text for w in ("grass", "field", "meadow", "garden")):
        ground = (90, 160, 70)
    elif any(w in text for w in ("snow", "winter")):
        ground = (240, 244, 250)
    elif any(w in text for w in ("desert", "sand")):
        ground = (220, 190, 130)
    if ground:
        ImageDraw.Draw(image).rectangle((0, int(height * 0.72), width, height), fill=ground)
    return image


def _draw(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    colour: tuple[int, int, int],
) -> None:
    dark = tuple(int(c * 0.55) for c in colour)
    if shape == "disc":
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=colour, outline=dark, width=max(1, int(r / 12))
        )
    elif shape == "sun":
        for k in range(12):
            a = k * math.pi / 6
            draw.line(
                (
                    cx + r * 1.1 * math.cos(a),
                    cy + r * 1.1 * math.sin(a),
                    cx + r * 1.5 * math.cos(a),
                    cy + r * 1.5 * math.sin(a),
                ),
                fill=colour,
                width=max(1, int(r / 8)),
            )
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "moon":
        # A crescent: the disc minus an offset disc, drawn through a mask.
        mask = Image.new("L", draw.im.size, 0)
        cut = ImageDraw.Draw(mask)
        cut.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        cut.ellipse((cx - r * 0.45, cy - r * 1.05, cx + r * 1.4, cy + r * 0.8), fill=0)
        draw.bitmap((0, 0), mask, fill=colour)
    elif shape == "square":
        draw.rectangle(
            (cx - r, cy - r, cx + r, cy + r), fill=colour, outline=dark, width=max(1, int(r / 12))
        )
    elif shape in ("triangle", "mountain"):
        scale = 1.6 if shape == "mountain" else 1.0
        points = [(cx, cy - r * scale), (cx - r * scale, cy + r), (cx + r * scale, cy + r)]
        draw.polygon(points, fill=colour, outline=dark)
        if shape == "mountain":
            cap = [
                (cx, cy - r * scale),
                (cx - r * 0.45, cy - r * 0.35),
                (cx + r * 0.45, cy - r * 0.35),
            ]
            draw.polygon(cap, fill=(250, 250, 250))
    elif shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
        draw.polygon(points, fill=colour, outline=dark)
    elif shape == "heart":
        draw.ellipse((cx - r, cy - r * 0.8, cx, cy + r * 0.2), fill=colour)
        draw.ellipse((cx, cy - r * 0.8, cx + r, cy + r * 0.2), fill=colour)
        draw.polygon(
            [(cx - r * 0.98, cy - r * 0.1), (cx + r * 0.98, cy - r * 0.1), (cx, cy + r)],
            fill=colour,
        )
    elif shape == "tree":
        draw.rectangle((cx - r * 0.15, cy, cx + r * 0.15, cy + r), fill=(110, 70, 35))
        draw.polygon(
            [(cx, cy - r), (cx - r * 0.7, cy + r * 0.2), (cx + r * 0.7, cy + r * 0.2)], fill=colour
        )
    elif shape == "flower":
        draw.line((cx, cy, cx, cy + r * 1.4), fill=(50, 130, 50), width=max(1, int(r / 8)))
        for k in range(6):
            a = k * math.pi / 3
            px, py = cx + r * 0.5 * math.cos(a), cy + r * 0.5 * math.sin(a)
            draw.ellipse((px - r * 0.35, py - r * 0.35, px + r * 0.35, py + r * 0.35), fill=colour)
        draw.ellipse(
            (cx - r * 0.25, cy - r * 0.25, cx + r * 0.25, cy + r * 0.25), fill=(250, 210, 30)
        )
    elif shape == "cloud":
        for dx, dy, size in ((-0.6, 0.1, 0.55), (0.0, -0.15, 0.7), (0.6, 0.1, 0.55)):
            draw.ellipse(
                (
                    cx + dx * r - size * r,
                    cy + dy * r - size * r,
                    cx + dx * r + size * r,
                    cy + dy * r + size * r,
                ),
                fill=colour,
            )
    elif shape == "house":
        draw.rectangle(
            (cx - r * 0.8, cy - r * 0.2, cx + r * 0.8, cy + r), fill=colour, outline=dark
        )
        draw.polygon(
            [(cx - r, cy - r * 0.2), (cx + r, cy - r * 0.2), (cx, cy - r)], fill=(170, 40, 40)
        )
        draw.rectangle((cx - r * 0.18, cy + r * 0.35, cx + r * 0.18, cy + r), fill=dark)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(2, int(r / 3.5)))


@dataclass(frozen=True)
class Placed:
    element: Element
    r: float
    cx: float
    cy: float


@dataclass(frozen=True)
class Layout:
    """Where (prompt, seed) puts everything, at twice the output size."""

    background: Image.Image
    placed: list[Placed]
    elements: list[Element]
    dropped: str | None


def _layout(prompt: str, seed: int, big: tuple[int, int], *, drop_one: bool) -> Layout:
    elements = parse_elements(prompt) or _fallback_elements(prompt)
    dropped = None
    if drop_one and elements:
        dropped = elements[-1].word
        elements = elements[:-1]
    rng = _rng("scene", prompt, seed)
    background = _background(prompt, big, rng)
    short = min(big)
    placed = []
    for element in elements:
        for _ in range(element.count):
            r = short * float(rng.uniform(0.07, 0.13)) * (1.4 if element.count == 1 else 1.0)
            cx = float(rng.uniform(r * 1.2, big[0] - r * 1.2))
            cy = float(rng.uniform(r * 1.2, big[1] - r * 1.4))
            placed.append(Placed(element, r, cx, cy))
    return Layout(background, placed, elements, dropped)


def render_scene(
    prompt: str, seed: int, size: tuple[int, int], *, drop_one: bool
) -> tuple[Image.Image, list[Element], str | None]:
    """The undegraded picture for (prompt, seed), drawn at 2x and downsampled."""
    layout = _layout(prompt, seed, (size[0] * 2, size[1] * 2), drop_one=drop_one)
    image = layout.background
    draw = ImageDraw.Draw(image)
    for p in layout.placed:
        _draw(draw, p.element.shape, p.cx, p.cy, p.r, p.element.colour)
    return image.resize(size, Image.Resampling.LANCZOS), layout.elements, layout.dropped


def _bounce(x: float, low: float, high: float) -> float:
    """``x`` folded into [low, high], as a ball bouncing between two walls."""
    span = high - low
    if span <= 0:
        return (low + high) / 2
    k = (x - low) % (2 * span)
    return low + (k if k <= span else 2 * span - k)


def render_clip(
    prompt: str, seed: int, size: tuple[int, int], times: Sequence[float], *, drop_one: bool
) -> tuple[Iterator[Image.Image], list[Element], str | None]:
    """The undegraded scene at each of ``times`` (seconds), its elements drifting and
    bouncing; at time 0 it is render_scene's picture."""
    big = (size[0] * 2, size[1] * 2)
    layout = _layout(prompt, seed, big, drop_one=drop_one)
    motion = _rng("motion", prompt, seed)
    # Up to a third of the frame per second: visible motion in a short clip.
    speeds = [
        (float(motion.uniform(-1, 1)) * big[0] / 3, float(motion.uniform(-1, 1)) * big[1] / 3)
        for _ in layout.placed
    ]

    def frames() -> Iterator[Image.Image]:
        for t in times:
            image = layout.background.copy()
            draw = ImageDraw.Draw(image)
            for p, (vx, vy) in zip(layout.placed, speeds, strict=True):
                cx = _bounce(p.cx + vx * t, p.r * 1.2, big[0] - p.r * 1.2)
                cy = _bounce(p.cy + vy * t, p.r * 1.2, big[1] - p.r * 1.4)
                _draw(draw, p.element.shape, cx, cy, p.r, p.element.colour)
            yield image.resize(size, Image.Resampling.LANCZOS)

    return frames(), layout.elements, layout.dropped


def _rotate_hue(image: Image.Image, degrees: float) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    shift = int(round(degrees / 360 * 256))
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _simulated_costs(p: Mapping[str, Any], request: GenerationRequest) -> dict[str, float]:
    """What a GPU backend would report about its run, made up from the parameters."""
    out = {}
    if p["simulated_gpu_seconds"]:
        jitter = float(_rng("cost", request.prompt_text, request.seed).uniform(0.7, 1.3))
        out["gpu_seconds"] = round(p["simulated_gpu_seconds"] * jitter, 4)
        # Wall time a GPU worker would see: the GPU time plus a little overhead.
        out["seconds"] = round(out["gpu_seconds"] * 1.05 + 0.02, 4)
    elif p["simulated_seconds"]:
        jitter = float(_rng("cost", request.prompt_text, request.seed).uniform(0.7, 1.3))
        out["seconds"] = round(p["simulated_seconds"] * jitter, 4)
    if p["simulated_memory_mb"]:
        out["peak_gpu_memory_mb"] = p["simulated_memory_mb"]
    return out


def _degrade(
    image: Image.Image, p: Mapping[str, Any], size: tuple[int, int], noise_rng: np.random.Generator
) -> Image.Image:
    """The per-picture degradations, in a fixed order (a video's every frame gets them)."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    if p["colour_shift"]:
        image = _rotate_hue(image, p["colour_shift"])
    if p["blur"]:
        image = image.filter(ImageFilter.GaussianBlur(p["blur"]))
    if p["noise"]:
        noise = noise_rng.normal(0, p["noise"], (size[1], size[0], 3))
        image = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8), "RGB")
    if p["jpeg_quality"] is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=p["jpeg_quality"])
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def _clip(
    request: GenerationRequest,
    p: Mapping[str, Any],
    size: tuple[int, int],
    render_size: tuple[int, int],
    drop: bool,
    credits: str,
) -> tuple[bytes, list[Element], str | None]:
    """The clip as a tagged MP4. Every random draw is the same for every system, scaled
    by its parameter, so a stronger degradation is a superset of a weaker one."""
    prompt, seed, count, fps = request.prompt_text, request.seed, p["frames"], p["fps"]
    jitter = _rng("judder", prompt, seed).uniform(-1, 1, count)
    jitter[0] = 0.0  # the first frame (the poster) stays where the picture is
    times = [(i + p["judder"] * jitter[i]) / fps for i in range(count)]
    dropped_at = _rng("dropped", prompt, seed).uniform(size=count) < p["dropped_frames"]
    dropped_at[0] = False
    rendered, elements, dropped = render_clip(prompt, seed, render_size, times, drop_one=drop)
    noise_rng = _rng("noise", prompt, seed)

    def frames() -> Iterator[np.ndarray]:
        previous: np.ndarray | None = None
        for i, image in enumerate(rendered):
            pixels = np.asarray(_degrade(image, p, size, noise_rng))
            if p["flicker"]:
                # A period of 3.3 frames: never in step with the frame rate.
                gain = 1 + p["flicker"] * math.sin(2 * math.pi * i / 3.3)
                pixels = np.clip(pixels * gain, 0, 255).astype(np.uint8)
            if dropped_at[i] and previous is not None:
                pixels = previous
            previous = pixels
            yield pixels

    return _tagged(encode_mp4_stream(frames(), fps), credits), elements, dropped


def _tagged(mp4: bytes, credits: str) -> bytes:
    """The clip remuxed with the container tags a generator UI might write."""
    out = io.BytesIO()
    with av.open(io.BytesIO(mp4), "r") as source, av.open(out, "w", format="mp4") as target:
        target.metadata.update({"comment": credits, "title": credits.split("\n")[0][:200]})
        video = source.streams.video[0]
        stream = target.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is None:  # the demuxer's closing empty packet
                continue
            packet.stream = stream
            target.mux(packet)
    return out.getvalue()


class SyntheticBackend:
    name = "synthetic"
    # It stands in for a GPU generator, so it travels the same queue.
    queue = "gpu"
    parameters: tuple[Parameter, ...] = tuple(PARAMS.values())

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return validate_declared(self.name, self.parameters, params)

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
        p = self.validate_params(request.params)
        if request.attempt < p["fail_attempts"]:
            raise BackendBusy(
                f"synthetic backend busy (fail_attempts={p['fail_attempts']}, "
                f"attempt {request.attempt})"
            )
        size = (p["width"], p["height"])
        drop = (
            float(_rng("mismatch", request.prompt_text, request.seed).uniform())
            < p["prompt_mismatch"]
        )
        render_size = (
            max(8, round(size[0] * p["resolution"])),
            max(8, round(size[1] * p["resolution"])),
        )
        # What diffusion UIs write into their files; ingest must strip it.
        credits = (
            f"{request.prompt_text}\nSeed: {request.seed}, "
            f"Model: {request.system_name}, Params: {p}"
        )
        if request.modality == "video":
            data, elements, dropped = _clip(request, p, size, render_size, drop, credits)
        else:
            image, elements, dropped = render_scene(
                request.prompt_text, request.seed, render_size, drop_one=drop
            )
            image = _degrade(image, p, size, _rng("noise", request.prompt_text, request.seed))
            info = PngInfo()
            info.add_text("parameters", credits)
            out = io.BytesIO()
            image.save(out, "PNG", pnginfo=info)
            data = out.getvalue()
        return GeneratedMedia(
            data=data,
            metadata={
                "backend": self.name,
                "params": p,
                "elements": [e.word for e in elements],
                "dropped_element": dropped,
                **_simulated_costs(p, request),
            },
        )
