"""Agreement statistics against krippendorff, statsmodels and ImagenHub's published values."""

import json
from typing import Any

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from analysis.core.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    majority_agreement,
    percent_agreement,
    split_half_reliability,
)

REFERENCE_TOLERANCE = 1e-12
# Published values are printed to two decimals.
PUBLISHED_TOLERANCE = 0.005 + 1e-9
IMAGENHUB = {
    # task: {dimension: {model: (fleiss kappa, ordinal alpha)}}
    "Text-To-Image": {
        0: {
            "DALLE": (0.37, 0.47),
            "DeepFloydIF": (0.53, 0.58),
            "OpenJourney": (0.46, 0.56),
            "SD": (0.55, 0.64),
            "SDXL": (0.49, 0.59),
            "Midjourney": (0.44, 0.57),
            "DALLE3": (0.47, 0.55),
        },
        1: {
            "DALLE": (0.39, 0.42),
            "SD": (0.23, 0.24),
            "Midjourney": (0.05, 0.06),
            "DALLE3": (0.06, 0.13),
        },
    },
    "Text-Guided_IE": {0: {"InstructPix2Pix": (0.60, 0.74), "MagicBrush": (0.50, 0.66)}},
}


def _long(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(units, raters) ratings with NaN for missing, in long form."""
    unit, rater = np.nonzero(np.ones_like(matrix))
    return unit, rater, matrix[unit, rater]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_equals_the_krippendorff_package(level: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ratings = rng.integers(1, 6, size=(60, 5)).astype(float)
    ratings[rng.random(ratings.shape) < 0.3] = np.nan
    reference = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=level)
    ours = krippendorff_alpha(*_long(ratings), level=level)
    assert ours.defined and abs(ours.value - reference) < REFERENCE_TOLERANCE


@pytest.mark.parametrize("seed", [0, 1])
def test_fleiss_kappa_equals_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(80, 5))
    table, _ = aggregate_raters(codes, n_cat=4)
    ours = fleiss_kappa(*_long(codes.astype(float)))
    assert abs(ours.value - statsmodels_fleiss(table)) < REFERENCE_TOLERANCE


def _imagenhub(human_data, task: str):  # type: ignore[no-untyped-def]
    raters = []
    for number in (1, 2, 3):
        lines = (
            (human_data / "imagenhub-human-ratings" / task / f"{task}_rater{number}.tsv")
            .read_text()
            .splitlines()
        )
        header = lines[0].split("\t")
        raters.append({row.split("\t")[0]: row.split("\t")[1:] for row in lines[1:] if row.strip()})
    items = sorted(set(raters[0]) & set(raters[1]) & set(raters[2]))
    return header, raters, items


@pytest.mark.parametrize("task", sorted(IMAGENHUB))
def test_imagenhub_agreement_matches_the_published_values(human_data, task: str) -> None:  # type: ignore[no-untyped-def]
    header, raters, items = _imagenhub(human_data, task)
    for dimension, models in IMAGENHUB[task].items():
        for model, (kappa, alpha) in models.items():
            column = header.index(model) - 1
            ratings = np.array(
                [[json.loads(r[item][column])[dimension] for r in raters] for item in items]
            )
            unit, rater, value = _long(ratings)
            ours_kappa = fleiss_kappa(unit, rater, value)
            ours_alpha = krippendorff_alpha(unit, rater, value, level="ordinal")
            assert abs(ours_kappa.value - kappa) < PUBLISHED_TOLERANCE, (
                model,
                dimension,
                ours_kappa.value,
            )
            assert abs(ours_alpha.value - alpha) < PUBLISHED_TOLERANCE, (
                model,
                dimension,
                ours_alpha.value,
            )


def test_identical_ratings_are_reported_undefined_not_a_crash(human_data) -> None:  # type: ignore[no-untyped-def]
    header, raters, items = _imagenhub(human_data, "Text-Guided_IE")
    column = header.index("Imagic") - 1
    ratings = np.array([[json.loads(r[item][column])[0] for r in raters] for item in items])
    assert np.unique(ratings).size == 1  # every rater gave every item the same score
    for result in (
        fleiss_kappa(*_long(ratings)),
        krippendorff_alpha(*_long(ratings), level="ordinal"),
        krippendorff_alpha(*_long(ratings), level="nominal"),
    ):
        assert not result.defined and np.isnan(result.value)
        assert "same" in result.reason or "one category" in result.reason
        assert result.as_dict()["value"] is None
    assert percent_agreement(*_long(ratings)).value == 1.0


def test_percent_agreement_and_majority_agreement() -> None:
    # Unit 0: all agree; unit 1: two of three; unit 2: all differ.
    ratings = np.array([[1, 1, 1], [1, 1, 2], [1, 2, 3]], dtype=float)
    assert percent_agreement(*_long(ratings)).value == pytest.approx((1 + 1 / 3 + 0) / 3)
    per_rater = {r.rater: (r.agreed, r.compared) for r in majority_agreement(*_long(ratings))}
    # Rater 2 disagrees with the others' clear majority on unit 1; unit 2 has no majority.
    assert per_rater == {0: (1, 1), 1: (1, 1), 2: (1, 2)}


def test_no_ratings_give_no_majority_agreement_and_undefined_coefficients() -> None:
    # A study whose raters have no votes yet (or whose pilot was discarded).
    empty_i, empty_f = np.array([], dtype=np.int64), np.array([], dtype=float)
    assert majority_agreement(empty_i, empty_i, empty_f) == []
    assert not krippendorff_alpha(empty_i, empty_i, empty_f).defined
    assert not percent_agreement(empty_i, empty_i, empty_f).defined


def test_split_half_reliability_is_high_for_a_clear_order_and_low_for_noise() -> None:
    rng = np.random.default_rng(3)
    raters = np.repeat(np.arange(20), 50)
    system = rng.integers(0, 5, raters.size)
    good = 5.0 - system + rng.normal(0, 0.5, raters.size)
    noise = rng.normal(0, 1, raters.size)

    def scorer(values: np.ndarray):  # type: ignore[no-untyped-def]
        return lambda mask: np.array([values[mask & (system == s)].mean() for s in range(5)])

    clear = split_half_reliability(raters, scorer(good), splits=30, rng=1)
    random = split_half_reliability(raters, scorer(noise), splits=30, rng=1)
    assert clear.reliability > 0.95 and clear.low > 0.8
    assert random.reliability < 0.6
    with pytest.raises(ValueError, match="at least 4 raters"):
        split_half_reliability(np.array([0, 1, 1]), scorer(good), splits=2)


def test_split_half_of_halves_that_disagree_completely_is_minus_one_not_infinite() -> None:
    rater = np.repeat(np.arange(4), 5)

    def opposite(mask: np.ndarray) -> np.ndarray:  # each half ranks the systems oppositely
        return np.arange(3.0) if mask[0] else -np.arange(3.0)

    result = split_half_reliability(rater, opposite, splits=10, rng=0)
    assert result.splits == 10
    assert result.reliability == -1.0 and result.low == -1.0 and result.high == -1.0
