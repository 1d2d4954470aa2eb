import io

import numpy as np
import pytest
from PIL import Image

from generation.backends import GenerationRequest, get_backend
from generation.backends.synthetic import parse_elements
from generation.exceptions import BackendBusy, BackendParamsError
from generation.ingest import ingest_video
from generation.video import decode_frames, probe

backend = get_backend("synthetic")


def _request(
    prompt: str = "two red circles above a blue square", seed: int = 1, **params: object
) -> GenerationRequest:
    return GenerationRequest(
        system_name="sys",
        prompt_text=prompt,
        prompt_category="",
        seed=seed,
        params={"width": 96, "height": 96, **params},
    )


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def test_prompt_words_become_elements_with_colour_and_count() -> None:
    elements = parse_elements("Two red circles above a blue square and three stars")
    assert [(e.word, e.colour, e.count) for e in elements] == [
        ("circle", (214, 39, 40), 2),
        ("square", (31, 90, 200), 1),
        ("star", (250, 210, 30), 3),
    ]


def test_same_prompt_and_seed_give_identical_bytes() -> None:
    assert backend.generate(_request()).data == backend.generate(_request()).data


def test_other_seed_gives_another_picture() -> None:
    assert backend.generate(_request(seed=1)).data != backend.generate(_request(seed=2)).data


def test_every_system_draws_the_same_scene_before_degradation() -> None:
    clean = _pixels(backend.generate(_request()).data)
    blurred = _pixels(backend.generate(_request(blur=3)).data)
    noisy = _pixels(backend.generate(_request(noise=40)).data)
    # Degraded, but the same picture underneath (not a different layout).
    assert 0 < np.abs(clean - blurred).mean() < 15
    assert np.abs(clean - noisy).mean() > np.abs(clean - blurred).mean()


def test_stronger_degradation_moves_further_from_the_clean_image() -> None:
    clean = _pixels(backend.generate(_request()).data)
    errors = [
        np.abs(clean - _pixels(backend.generate(_request(noise=n, blur=b)).data)).mean()
        for n, b in ((5, 0.5), (20, 1.5), (50, 3))
    ]
    assert errors == sorted(errors) and errors[0] > 0


def test_prompt_mismatch_drops_a_named_element_on_a_nested_set_of_items() -> None:
    def dropped(p: float) -> set[int]:
        return {
            seed
            for seed in range(40)
            if backend.generate(_request(seed=seed, prompt_mismatch=p)).metadata["dropped_element"]
        }

    low, high = dropped(0.2), dropped(0.6)
    assert low < high
    assert 2 <= len(low) <= 16 and 14 <= len(high) <= 34
    assert (
        backend.generate(_request(seed=next(iter(low)), prompt_mismatch=0.2)).metadata[
            "dropped_element"
        ]
        == "square"
    )


def test_output_names_the_system_in_a_png_text_chunk_for_ingest_to_strip() -> None:
    data = backend.generate(_request()).data
    assert b"Model: sys" in data


def test_fail_attempts_raises_busy_until_the_attempt_passes() -> None:
    request = _request(fail_attempts=2)
    for attempt in (0, 1):
        with pytest.raises(BackendBusy):
            backend.generate(GenerationRequest(**{**request.__dict__, "attempt": attempt}))
    assert backend.generate(GenerationRequest(**{**request.__dict__, "attempt": 2})).data


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"blurr": 1}, "unknown synthetic parameter"),
        ({"blur": -1}, "outside"),
        ({"noise": "lots"}, "must be a number"),
        ({"width": 10.5}, "whole number"),
        ({"jpeg_quality": True}, "must be a number"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict[str, object], message: str) -> None:
    with pytest.raises(BackendParamsError, match=message):
        backend.validate_params(params)


def test_defaults_are_filled_in() -> None:
    params = backend.validate_params({"blur": 2})
    assert params["blur"] == 2.0 and params["width"] == 512 and params["jpeg_quality"] is None


def _video(prompt: str = "two red circles above a blue square", seed: int = 1, **params: object):
    return backend.generate(
        GenerationRequest(
            system_name="sys",
            prompt_text=prompt,
            prompt_category="",
            seed=seed,
            params={"width": 64, "height": 48, "frames": 12, "fps": 6, **params},
            modality="video",
        )
    )


def _brightness_steps(frames: np.ndarray) -> np.ndarray:
    """How much each frame's mean brightness differs from the one before."""
    return np.diff(frames.reshape(len(frames), -1).astype(float).mean(axis=1))


def test_a_video_study_gets_a_clip_of_the_declared_length() -> None:
    media = _video(frames=10, fps=5)
    info = probe(media.data)
    assert (info.codec, info.frames, info.fps, info.duration_s) == ("h264", 10, 5.0, 2.0)
    assert (info.width, info.height) == (64, 48)
    assert media.metadata["params"]["frames"] == 10
    assert media.metadata["elements"] == ["circle", "square"]


def test_same_prompt_seed_and_parameters_give_identical_clips() -> None:
    assert _video().data == _video().data
    assert _video(seed=1).data != _video(seed=2).data
    assert _video().data != _video(noise=10).data


def test_the_clip_starts_on_the_still_picture_and_then_moves() -> None:
    frames = decode_frames(_video().data).astype(float)
    still = _pixels(backend.generate(_request(width=64, height=48)).data)
    other = _pixels(backend.generate(_request(seed=2, width=64, height=48)).data)
    error = np.abs(frames[0] - still).mean()  # the same scene, through H.264
    assert error < 5 and np.abs(frames[0] - other).mean() > 4 * error
    assert np.abs(frames[-1] - frames[0]).mean() > 3 * error


def test_flicker_makes_brightness_jump_between_frames() -> None:
    steady = _brightness_steps(decode_frames(_video().data))
    flicker = _brightness_steps(decode_frames(_video(flicker=0.3).data))
    assert np.abs(flicker).mean() > 10 * max(np.abs(steady).mean(), 0.1)


def test_dropped_frames_repeat_the_frame_before() -> None:
    def repeats(share: float) -> int:
        frames = decode_frames(_video(frames=24, dropped_frames=share).data).astype(float)
        return sum(np.abs(b - a).mean() < 0.5 for a, b in zip(frames, frames[1:], strict=False))

    none, some, most = repeats(0), repeats(0.3), repeats(0.8)
    assert none == 0 and 0 < some < most


def test_judder_moves_the_motion_off_its_even_beat() -> None:
    even = decode_frames(_video(frames=24).data).astype(float)
    juddery = decode_frames(_video(frames=24, judder=1).data).astype(float)
    assert np.abs(juddery[0] - even[0]).mean() < 1  # the poster frame stays put
    assert np.abs(juddery[1:] - even[1:]).mean() > 1

    def motion(frames: np.ndarray) -> np.ndarray:
        return np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))

    # Even motion moves about the same each frame; judder makes the steps uneven.
    assert motion(juddery).std() > 2 * motion(even).std()


def test_per_frame_degradations_keep_the_quality_order_in_video() -> None:
    clean = decode_frames(_video().data).astype(float)
    errors = [
        np.abs(clean - decode_frames(_video(noise=n, blur=b).data)).mean()
        for n, b in ((5, 0.5), (20, 1.5), (50, 3))
    ]
    assert errors == sorted(errors) and errors[0] > 0


def test_the_clip_names_the_system_in_its_tags_for_ingest_to_strip() -> None:
    data = _video().data
    assert b"Model: sys" in data
    assert b"Model: sys" not in ingest_video(data).data


def test_images_ignore_the_video_parameters() -> None:
    plain = _pixels(backend.generate(_request()).data)
    assert np.array_equal(plain, _pixels(backend.generate(_request(frames=5, flicker=1)).data))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"frames": 0}, "outside"), ({"fps": 61}, "outside"), ({"dropped_frames": 2}, "outside")],
)
def test_bad_video_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(BackendParamsError, match=message):
        backend.validate_params(params)
