import io

import numpy as np
import pytest
from PIL import Image

from generation.backends import GenerationRequest, get_backend
from generation.backends.synthetic import parse_elements
from generation.exceptions import BackendBusy, BackendParamsError

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
