"""Metric-versus-human correlations reproduced from published tables (tests/data)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis.core.correlation import correlate
from tests.unit.analysis.conftest import read_csv

# Published correlations are printed to two decimals.
PRINTED = 0.005
# The Stein et al. values are computed from the transcription (README of the data), to 3.
COMPUTED = 5e-4


def _spearman(human: np.ndarray, metric: np.ndarray, *, lower_is_better: bool) -> float:
    coefficients, _, _ = correlate(human, metric, lower_is_better=lower_is_better)
    value = next(c for c in coefficients if c.name == "spearman").value
    assert value is not None
    return value


def test_imagereward_table1_spearman_with_fid_oriented(human_data: Path) -> None:
    rows = read_csv(human_data / "imagereward-table1" / "table1.csv")
    wins = np.array([float(r["human_wins"]) for r in rows])
    assert [int(r["human_rank"]) for r in rows] == list(
        stats.rankdata(-wins, method="min").astype(int)
    )

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    published = {
        ("imagereward", False): 1.00,
        ("clip", False): 0.60,
        ("coco_imagereward", False): 0.77,
        ("zero_shot_fid", True): 0.09,
    }
    for (name, lower), value in published.items():
        # The table's ranks are those of its scores (lower FID ranked better).
        sign = 1 if lower else -1
        ranks = stats.rankdata(sign * column(name), method="min").astype(int)
        assert list(ranks) == [int(r[f"{name}_rank"]) for r in rows], name
        assert _spearman(wins, column(name), lower_is_better=lower) == pytest.approx(
            value, abs=PRINTED
        ), name
    # Unoriented, FID would read as a (weak) negative correlation: the sign is the point.
    assert _spearman(wins, column("zero_shot_fid"), lower_is_better=False) == pytest.approx(-3 / 35)


STEIN_DINOV2 = {"cifar10": 0.978, "imagenet256": 0.825, "lsun256": 0.976, "ffhq256": 0.383}


@pytest.fixture(scope="module")
def stein(human_data: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    folder = human_data / "dgm-eval-human-realism"
    table = read_csv(folder / "table11_dinov2_transcribed.csv")
    order = read_csv(folder / "inception_fid_order_from_figure.csv")
    out = {}
    for dataset in STEIN_DINOV2:
        rows = [r for r in table if r["dataset"] == dataset]
        rank = {
            r["model"]: float(r["inception_fd_rank_worst_to_best"])
            for r in order
            if r["dataset"] == dataset
        }
        assert set(rank) == {r["model"] for r in rows}, dataset
        out[dataset] = (
            np.array([float(r["human_err_rate"]) for r in rows]),
            np.array([float(r["fd_dinov2"]) for r in rows]),
            np.array([rank[r["model"]] for r in rows]),
        )
    return out


@pytest.mark.parametrize("dataset", STEIN_DINOV2)
def test_stein_human_error_rate_tracks_fd_dinov2(
    stein: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dataset: str
) -> None:
    human, fd, _ = stein[dataset]
    # More human error = more realistic; lower FD is better.
    rho = _spearman(human, fd, lower_is_better=True)
    assert rho == pytest.approx(STEIN_DINOV2[dataset], abs=COMPUTED)
    assert rho == pytest.approx(stats.spearmanr(human, -fd).statistic, abs=1e-12)


def test_stein_inception_order_disagrees_on_imagenet_and_lsun(
    stein: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    results = {}
    for dataset, (human, fd, rank) in stein.items():
        # Ranks run worst to best: higher is better.
        coefficients, _, _ = correlate(human, rank, lower_is_better=False)
        rho = next(c for c in coefficients if c.name == "spearman")
        dino, _, _ = correlate(human, fd, lower_is_better=True)
        results[dataset] = (rho, next(c for c in dino if c.name == "spearman"))
    for dataset in ("imagenet256", "lsun256"):
        inception, dinov2 = results[dataset]
        assert inception.value is not None and inception.value < 0  # people and FID disagree
        assert inception.p_value is not None and inception.p_value > 0.5
        assert dinov2.p_value is not None and dinov2.p_value < 0.01
    assert results["imagenet256"][0].value == pytest.approx(-0.169, abs=COMPUTED)
    assert results["lsun256"][0].value == pytest.approx(-1 / 6, abs=COMPUTED)
    assert results["cifar10"][0].value == pytest.approx(0.967, abs=COMPUTED)
    assert results["ffhq256"][0].value == pytest.approx(0.467, abs=COMPUTED)
