"""Real-or-generated judgments: Stein et al. (NeurIPS 2023) reproduced from their
per-participant data, and the behaviour of the rates, intervals and d′ on synthetic
judgments."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from analysis.core.cli import main
from analysis.core.correlation import correlation_coefficients
from analysis.core.realness import GENERATED, REAL, Realness, detection, realness
from analysis.core.serialize import from_json
from tests.unit.analysis.conftest import read_csv

# The two FFHQ models whose published rate is not the per-participant mean at two
# decimals (the data README): the gap is at most this.
FFHQ_GAP = 0.02
# Spearman values of the Stein data computed here, not printed in the paper, to 3 decimals.
COMPUTED = 5e-4
# The same quantity computed two ways (closed form, another library).
EXACT = 1e-12

DATASETS = ("cifar10", "imagenet256", "lsun256", "ffhq256")
# Names in the per-participant files that are not Table 11's (apart from case).
TABLE_NAMES = {
    "pfgmpp": "pfgm++",
    "unleashing": "unleash-trans",
    "unleashing-transformers": "unleash-trans",
    "ct2": "consistency",
    "diffusion-projected-gan": "diff-projgan",
    "admnet-dropout": "adm-dropout",
}
# Published rates that are not the per-participant mean at two decimals (39 of 41 are).
NOT_REPRODUCED = {("ffhq256", "StyleGAN2-ada"), ("ffhq256", "InsGen")}
# The transcription has 0.02 where the PNG prints "0.21±0.01" (tests/data SOURCE.md).
STEIN_DINOV2 = {"cifar10": 0.978, "imagenet256": 0.825, "lsun256": 0.976, "ffhq256": 0.383}
# From the unrounded per-participant means: the table's two-decimal ties broken (four
# pairs in CIFAR10, ADM and ADMG-ADMU in ImageNet); LSUN and FFHQ keep their order.
STEIN_DINOV2_UNROUNDED = {
    "cifar10": 0.967,
    "imagenet256": 0.836,
    "lsun256": 0.976,
    "ffhq256": 0.383,
}


def _no_nan(value: object) -> bool:
    """True when no float anywhere in a (nested) result is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(_no_nan(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_no_nan(getattr(value, f.name)) for f in dataclasses.fields(value))
    return True


@dataclasses.dataclass(frozen=True)
class Stein:
    participants: list[dict[str, str]]
    table: dict[str, dict[str, str]]  # Table 11 row by the participant files' model name
    result: Realness


def _judgments(participants: list[dict[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """Each participant's 100 generated and 100 real trials, from their error rates (the
    counts are all the study's numbers need: nothing is known of single images)."""
    rater: list[str] = []
    source: list[str] = []
    answer: list[str] = []
    for p in participants:
        fooled = round(100 * float(p["f_err_rt"]))
        missed = round(100 * float(p["r_err_rt"]))
        assert 200 - fooled - missed == round(float(p["num_correct"]))
        rater += [p["id"]] * 200
        source += [p["model"]] * 100 + [REAL] * 100
        answer += [REAL] * fooled + [GENERATED] * (100 - fooled)
        answer += [GENERATED] * missed + [REAL] * (100 - missed)
    return rater, source, answer


@pytest.fixture(scope="module")
def stein(human_data: Path) -> dict[str, Stein]:
    folder = human_data / "dgm-eval-human-realism"
    transcribed = read_csv(folder / "table11_dinov2_transcribed.csv")
    out = {}
    for dataset in DATASETS:
        participants = read_csv(folder / "data" / f"{dataset}.csv")
        by_name = {r["model"].lower(): r for r in transcribed if r["dataset"] == dataset}
        models = sorted({p["model"] for p in participants})
        table = {m: by_name[TABLE_NAMES.get(m.lower(), m.lower())] for m in models}
        assert len(set(map(id, table.values()))) == len(by_name), dataset
        out[dataset] = Stein(participants, table, realness(*_judgments(participants)))
    return out


def _per_participant(stein: Stein, model: str, column: str) -> np.ndarray:
    return np.array([float(p[column]) for p in stein.participants if p["model"] == model])


def test_stein_table11_is_the_mean_and_se_of_the_participants(stein: dict[str, Stein]) -> None:
    # Table 11 prints both to two decimals: compared rounded.
    reproduced, missed = 0, set()
    for dataset, data in stein.items():
        for model, row in data.table.items():
            err = _per_participant(data, model, "err_rt")
            mean, se = err.mean(), err.std(ddof=1) / math.sqrt(err.size)
            published_mean, published_se = float(row["human_err_rate"]), float(row["human_err_sem"])
            assert round(se, 2) == pytest.approx(published_se, abs=1e-9), (dataset, model)
            if round(mean, 2) == pytest.approx(published_mean, abs=1e-9):
                reproduced += 1
            else:
                missed.add((dataset, row["model"]))
                assert abs(mean - published_mean) <= FFHQ_GAP, (dataset, model)
    assert reproduced == 39 and missed == NOT_REPRODUCED


def test_stein_hype_is_the_participants_mean_error_and_its_clustered_se_their_se(
    stein: dict[str, Stein],
) -> None:
    for data in stein.values():
        assert data.result.n_raters == len(data.participants)
        for model in data.table:
            row = data.result.system(model)
            err = _per_participant(data, model, "err_rt")
            # Every participant judged 200 images of one session (100 real, 100 of this
            # model), so the pooled rate is the mean of their rates and the CR1 variance
            # G/(G−1) Σ (y_g − p̂ m)² / (G m)² reduces to Σ (p_g − p̄)² / (G (G − 1)):
            # the squared standard error of the mean with ddof = 1, exactly.
            assert row.raters == err.size and row.hype_infinity.raters == err.size
            assert row.hype_infinity.value == pytest.approx(err.mean(), abs=EXACT)
            assert row.hype_infinity.se == pytest.approx(
                err.std(ddof=1) / math.sqrt(err.size), abs=EXACT
            )
            assert row.hype_infinity.effective_raters == pytest.approx(err.size)
            fooled = _per_participant(data, model, "f_err_rt")
            assert row.fooled.value == pytest.approx(fooled.mean(), abs=EXACT)
            assert row.fooled.se == pytest.approx(
                fooled.std(ddof=1) / math.sqrt(fooled.size), abs=EXACT
            )
            missed = _per_participant(data, model, "r_err_rt")
            assert row.real_error.value == pytest.approx(missed.mean(), abs=EXACT)
            assert row.hype_infinity.low is not None and row.hype_infinity.high is not None
            assert row.hype_infinity.low < err.mean() < row.hype_infinity.high
            # People tell these models' images from real ones: d′ above 0, intervals honest.
            assert row.detection.d_prime is not None and row.detection.d_prime > 0
        assert _no_nan(data.result)


@pytest.mark.parametrize("dataset", DATASETS)
def test_stein_human_error_rate_tracks_fd_dinov2(stein: dict[str, Stein], dataset: str) -> None:
    data = stein[dataset]
    models = list(data.table)
    # Lower FD is better: negated, so that a positive rho means agreement.
    fd = -np.array([float(data.table[m]["fd_dinov2"]) for m in models])
    published = np.array([float(data.table[m]["human_err_rate"]) for m in models])
    ours = np.array([data.result.system(m).hype_infinity.value for m in models], dtype=float)
    rho = correlation_coefficients(published, fd)["spearman"]
    assert rho == pytest.approx(STEIN_DINOV2[dataset], abs=COMPUTED)
    unrounded = correlation_coefficients(ours, fd)["spearman"]
    assert unrounded == pytest.approx(STEIN_DINOV2_UNROUNDED[dataset], abs=COMPUTED)


def _panel(
    rates: np.ndarray, per_rater: int, rng: np.random.Generator
) -> tuple[list[str], list[str], list[str]]:
    """Raters judging ``per_rater`` images of system "s" (judged real with their own
    rate) and as many real images (judged real with probability 0.8)."""
    rater, source, answer = [], [], []
    for k, rate in enumerate(rates):
        fooled = rng.random(per_rater) < rate
        kept = rng.random(per_rater) < 0.8
        rater += [f"r{k}"] * (2 * per_rater)
        source += ["s"] * per_rater + [REAL] * per_rater
        answer += [REAL if f else GENERATED for f in fooled]
        answer += [REAL if f else GENERATED for f in kept]
    return rater, source, answer


def test_clustering_by_rater_widens_the_interval_when_raters_differ() -> None:
    rng = np.random.default_rng(7)
    alike = realness(*_panel(np.full(40, 0.35), 50, rng)).system("s").fooled
    differ = realness(*_panel(np.repeat([0.05, 0.65], 20), 50, rng)).system("s").fooled
    assert alike.value == pytest.approx(0.35, abs=0.05)
    assert differ.value == pytest.approx(0.35, abs=0.05)
    assert alike.se is not None and differ.se is not None
    binomial = math.sqrt(0.35 * 0.65 / 2000)
    assert alike.se == pytest.approx(binomial, rel=0.3)
    assert differ.se > 2.5 * binomial
    assert differ.low is not None and differ.high is not None
    assert alike.low is not None and alike.high is not None
    assert differ.high - differ.low > 2.5 * (alike.high - alike.low)


def test_clustered_se_and_interval_equal_statsmodels_cluster_robust_ols() -> None:
    rater, source, answer = _panel(np.repeat([0.1, 0.3, 0.5, 0.7], 3), 30, np.random.default_rng(3))
    row = realness(rater, source, answer, level=0.9).system("s").fooled
    fake = np.array(source) == "s"
    fooled = (np.array(answer)[fake] == REAL).astype(float)
    groups = np.unique(np.array(rater)[fake], return_inverse=True)[1]
    # An intercept-only OLS is the mean; its CR1 covariance with statsmodels' (N−1)/(N−K)
    # factor (1 for K = 1) and t(G − 1) is the ratio estimator's with equal raters.
    fit = sm.OLS(fooled, np.ones_like(fooled)).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    assert row.value == pytest.approx(fit.params[0], abs=EXACT)
    assert row.se == pytest.approx(fit.bse[0], abs=EXACT)
    low, high = fit.conf_int(alpha=0.1)[0]
    assert (row.low, row.high) == pytest.approx((low, high), abs=EXACT)


def test_perfect_rater_has_a_finite_large_d_prime_and_a_coin_flipper_none() -> None:
    perfect = detection(100, 100, 0, 100)
    assert perfect.d_prime is not None and 4.5 < perfect.d_prime < 6
    assert perfect.hit_rate == pytest.approx(100.5 / 101)
    assert perfect.criterion == pytest.approx(0.0, abs=EXACT)
    rng = np.random.default_rng(0)
    n = 4000
    result = realness(
        ["coin"] * n,
        np.where(rng.random(n) < 0.5, "s", REAL),
        np.where(rng.random(n) < 0.5, REAL, GENERATED),
    )
    coin = result.raters[0].detection
    assert coin.d_prime is not None and abs(coin.d_prime) < 0.15
    assert coin.criterion is not None and abs(coin.criterion) < 0.1
    # A rater who calls everything "generated" is liberal (c < 0), not sensitive.
    liberal = detection(90, 100, 85, 100)
    assert liberal.criterion is not None and liberal.criterion < -0.9
    assert liberal.d_prime is not None and liberal.d_prime < 0.4


def test_one_rater_gives_rates_and_a_reason_instead_of_an_interval() -> None:
    result = realness(["a"] * 4, ["s", "s", REAL, REAL], [REAL, GENERATED, REAL, REAL])
    row = result.system("s")
    assert row.fooled.value == 0.5 and row.hype_infinity.value == 0.25
    for part in (row.fooled, row.real_error, row.hype_infinity):
        assert part.low is None and part.high is None and part.se is None
        assert part.reason is not None and "one rater" in part.reason
    assert row.detection.d_prime is not None
    assert _no_nan(result)


def test_identical_answers_give_finite_numbers_and_reasons() -> None:
    rater = [f"r{k % 5}" for k in range(40)]
    source = ["s", REAL] * 20
    result = realness(rater, source, [REAL] * 40)
    row = result.system("s")
    assert row.fooled.value == 1.0 and row.real_error.value == 0.0
    assert row.fooled.low is None and row.fooled.reason is not None
    assert "standard error is 0" in row.fooled.reason
    assert row.detection.d_prime == pytest.approx(0.0, abs=EXACT)  # as many of each
    assert row.detection.criterion is not None and row.detection.criterion > 1.5
    assert all(r.flags == ("same_answer",) for r in result.raters)
    # Equal rates that floating point cannot represent exactly: still no interval.
    # (7 of 25 each: 7 − (35 / 125) · 25 is −8.9e-16, not 0.)
    answers = ([REAL] * 7 + [GENERATED] * 18) * 5
    alike = realness([f"r{k // 25}" for k in range(125)], ["s"] * 125, answers).system("s")
    assert alike.fooled.value == pytest.approx(7 / 25)
    assert alike.fooled.reason is not None and alike.fooled.low is None
    assert any("same answer" in n for n in result.notes)
    assert _no_nan(result)


def test_a_system_without_judgments_or_real_images_says_why() -> None:
    result = realness(
        ["a", "b", "b"], ["s", "s", "s"], [REAL, GENERATED, REAL], systems=["s", "ghost"]
    )
    ghost = result.system("ghost")
    assert ghost.reason is not None and ghost.raters == 0
    assert ghost.fooled.value is None and ghost.fooled.reason is not None
    assert ghost.hype_infinity.value is None and ghost.detection.d_prime is None
    s = result.system("s")
    assert s.fooled.value == pytest.approx(2 / 3) and s.fooled.low is not None
    assert s.hype_infinity.value is None and s.hype_infinity.reason is not None
    assert "no real images" in s.hype_infinity.reason
    assert s.detection.d_prime is None and s.detection.reason is not None
    assert any("ghost" in n for n in result.notes)
    assert any("No real images" in n for n in result.notes)
    assert _no_nan(result)
    empty = realness([], [], [], systems=["s"])
    assert empty.n_judgments == 0 and empty.system("s").reason is not None
    assert _no_nan(empty)


def test_hype_pools_real_and_generated_judgments_of_the_systems_raters() -> None:
    # r1 judged system a and real images; r2 judged only b and real images.
    rater = ["r1"] * 6 + ["r2"] * 4
    source = ["a", "a", "a", "a", REAL, REAL, "b", "b", REAL, REAL]
    answer = [REAL, REAL, GENERATED, GENERATED, GENERATED, REAL] + [REAL, REAL, REAL, REAL]
    result = realness(rater, source, answer)
    a, b = result.system("a"), result.system("b")
    assert a.fooled.value == 0.5 and a.real_error.value == 0.5
    assert a.hype_infinity.value == pytest.approx(3 / 6)  # r2's real images are not a's
    assert b.hype_infinity.value == pytest.approx(2 / 4)
    assert b.real_error.value == 0.0
    r1 = next(r for r in result.raters if r.rater == "r1")
    assert r1.fooled_rate == 0.5 and r1.error_rate == pytest.approx(3 / 6)


def test_exposure_breaks_the_fooled_rate_down() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    exposure = np.where(rng.random(n) < 0.5, 250.0, np.inf)
    # Short exposures fool more often.
    fooled = rng.random(n) < np.where(np.isinf(exposure), 0.2, 0.45)
    rater = [f"r{k % 30}" for k in range(n)]
    result = realness(rater, ["s"] * n, np.where(fooled, REAL, GENERATED), exposure_ms=exposure)
    short, unlimited = result.system("s").by_exposure
    assert short.exposure_ms == 250.0 and unlimited.exposure_ms is None
    assert short.fooled.value is not None and unlimited.fooled.value is not None
    assert short.fooled.value == pytest.approx(0.45, abs=0.04)
    assert unlimited.fooled.value == pytest.approx(0.2, abs=0.04)
    assert _no_nan(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer": ["real", "fake"]}, "answer"),
        ({"rater": ["a"]}, "equal lengths"),
        ({"exposure_ms": [100.0, float("nan")]}, "exposure_ms"),
        ({"systems": ["t"]}, "not in systems"),
        ({"level": 1.0}, "level"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"rater": ["a", "b"], "source": ["s", REAL], "answer": [REAL, REAL]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        realness(**args)  # type: ignore[arg-type]


def _judgment_file(tmp_path: Path, rows: list[str], header: str = "rater,source,answer") -> Path:
    path = tmp_path / "judgments.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_cli_prints_the_per_system_table_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = []
    for r in range(4):
        # Rater r calls r + 1 of 4 sys-a images real, one sys-b image (r0 only) and one of
        # 4 real images generated.
        rows += [f"r{r},sys-a,{'real' if k <= r else 'generated'}" for k in range(4)]
        rows += [f"r{r},sys-b,{'real' if r == k == 0 else 'generated'}" for k in range(4)]
        rows += [f"r{r},real,{'generated' if k == 0 else 'Real'}" for k in range(4)]
    rows.append("solo,sys-c,real")
    assert main(["realness", str(_judgment_file(tmp_path, rows)), "--raters"]) == 0
    out = capsys.readouterr().out
    table = {line.split()[1]: line.split() for line in out.splitlines() if "sys-" in line[:16]}
    assert table["sys-a"][:4] == ["4", "sys-a", "16", "62.5"]
    # HYPE∞ of sys-a: 10 of 16 generated images judged real + 4 of 16 real ones generated.
    assert "43.8" in table["sys-a"]
    assert table["sys-b"][:4] == ["4", "sys-b", "16", "6.2"]
    assert table["sys-c"][:4] == ["1", "sys-c", "1", "100.0"]
    assert "Note: sys-c: one rater: an interval clustered by rater needs at least two raters" in out
    assert "Note: sys-c: sys-c's raters judged no real images" in out
    assert "cluster-robust (CR1) by rater" in out
    assert "solo" in out and "r3" in out  # the per-rater rows


def test_cli_json_is_the_typed_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [f"r{k},s,{'real' if k % 3 else 'generated'},{250 if k % 2 else ''}" for k in range(12)]
    rows += [f"r{k},real,real," for k in range(12)]
    path = _judgment_file(tmp_path, rows, "rater,source,answer,exposure_ms")
    assert main(["realness", str(path), "--json"]) == 0
    result = from_json(Realness, json.loads(capsys.readouterr().out)["realness"])
    row = result.system("s")
    assert row.fooled.value == pytest.approx(8 / 12)
    assert [e.exposure_ms for e in row.by_exposure] == [250.0, None]
    assert row.real_error.value == 0.0


def test_cli_refuses_a_file_without_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _judgment_file(tmp_path, ["a,s"], "rater,source")
    assert main(["realness", str(path)]) == 2
    assert "missing answer" in capsys.readouterr().err
    bad = _judgment_file(tmp_path, ["a,s,fake"])
    assert main(["realness", str(bad)]) == 2
    assert "line 2: answer must be real or generated" in capsys.readouterr().err


def test_the_rater_bootstrap_of_fooled_rates_agrees_with_the_clustered_standard_error() -> None:
    """fooled_replicates resamples raters: its spread matches the analytic cluster-robust
    SE (which holds for many raters), it centres on the point estimate, and a system is
    NaN only in replicates that drew none of its raters."""
    from analysis.core.realness import fooled_replicates

    rng = np.random.default_rng(11)
    rater, source, answer = _panel(np.repeat([0.1, 0.6], 30), 40, rng)
    fooled = realness(rater, source, answer).system("s").fooled
    generated = np.array(source) == "s"
    ids = np.array([int(r[1:]) for r in rater])[generated]
    said_real = np.array(answer)[generated] == REAL
    # A second system judged by the first three raters only.
    few = ids < 3
    system = np.zeros(ids.size, dtype=np.int64)
    samples = fooled_replicates(
        np.concatenate([ids, ids[few]]),
        np.concatenate([system, np.ones(few.sum(), dtype=np.int64)]),
        np.concatenate([said_real, said_real[few]]),
        2,
        4000,
        seed=3,
    )
    assert samples.shape == (4000, 2)
    assert fooled.value is not None and fooled.se is not None
    assert np.nanmean(samples[:, 0]) == pytest.approx(fooled.value, abs=0.01)
    # CR1 carries G/(G-1) = 60/59; the bootstrap does not.
    assert np.std(samples[:, 0]) == pytest.approx(fooled.se * math.sqrt(59 / 60), rel=0.08)
    missing = np.isnan(samples[:, 1]).mean()
    assert missing == pytest.approx((57 / 60) ** 60, abs=0.01)  # none of 3 raters drawn
    assert not np.isnan(samples[:, 0]).any()
    again = fooled_replicates(ids, system, said_real, 1, 50, seed=3)
    assert np.array_equal(again, fooled_replicates(ids, system, said_real, 1, 50, seed=3))
