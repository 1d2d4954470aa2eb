"""Set metrics against closed forms, a transcription of pytorch-fid's Fréchet distance,
and brute-force second implementations written from the papers (METRICS.md §6.2)."""

import numpy as np
import numpy.typing as npt
import pytest
from scipy import linalg, special, stats
from scipy.spatial.distance import cdist

from analysis.core.setmetrics import (
    FeatureStats,
    cmmd,
    fd,
    fd_infinity,
    frechet_distance,
    inception_score,
    kid,
    mmd2_unbiased,
    polynomial_mmd2,
    prdc,
    rbf_mmd2_biased,
)
from analysis.core.setmetrics.inception import split_scores
from analysis.core.setmetrics.kernel import _weighted_mmd2_unbiased, polynomial_kernel

STATS_TOLERANCE = 1e-12
CLOSED_FORM_TOLERANCE = 1e-9
# eigh against sqrtm: the bar (both are float64 roots of the same product).
METHOD_AGREEMENT = 1e-6
REFERENCE_TOLERANCE = 1e-12
Array = npt.NDArray[np.float64]


def _gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> Array:
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift


def _relu(rng: np.random.Generator, n: int, d: int) -> Array:
    return np.maximum(_gaussian(rng, n, d), 0.0)


def pytorch_fid_frechet(
    mu1: Array, sigma1: Array, mu2: Array, sigma2: Array, eps: float = 1e-6
) -> float:
    """Transcription of pytorch-fid 0.3.0 ``calculate_frechet_distance`` (Apache-2.0),
    test-only reference; ``disp=False`` dropped (same array, deprecated in SciPy 1.17)."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("Imaginary component")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _moments(x: Array) -> tuple[Array, Array]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


# --- streaming statistics -------------------------------------------------------------


def test_streamed_batches_equal_numpy_cov() -> None:
    rng = np.random.default_rng(1)
    x = _relu(rng, 300, 16) + 1e4  # a large common offset: the shifted sums keep precision
    stats_ = FeatureStats(dim=16)
    for batch in np.array_split(x, 7):
        stats_.update(batch)
    mu, cov = _moments(x)
    assert stats_.n == 300
    np.testing.assert_allclose(stats_.mean, mu, rtol=STATS_TOLERANCE)
    np.testing.assert_allclose(stats_.cov, cov, rtol=1e-9, atol=STATS_TOLERANCE)


def test_merge_is_order_free_and_equals_one_pass() -> None:
    rng = np.random.default_rng(2)
    x = _gaussian(rng, 200, 8, shift=3.0)
    a, b = FeatureStats.from_features(x[:70]), FeatureStats.from_features(x[70:] * 1.0)
    for merged in (a.merge(b), b.merge(a)):
        np.testing.assert_allclose(merged.mean, x.mean(axis=0), atol=STATS_TOLERANCE)
        np.testing.assert_allclose(merged.cov, np.cov(x, rowvar=False), atol=STATS_TOLERANCE)
    empty = FeatureStats(dim=8)
    np.testing.assert_allclose(empty.merge(a).cov, a.cov, atol=STATS_TOLERANCE)


def test_counts_equal_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    x = _gaussian(rng, 40, 5)
    counts = rng.multinomial(40, np.full(40, 1 / 40))
    weighted = FeatureStats.from_features(x, counts=counts)
    repeated = np.repeat(x, counts, axis=0)
    np.testing.assert_allclose(weighted.cov, np.cov(repeated, rowvar=False), atol=STATS_TOLERANCE)


def test_stats_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="2-d"):
        FeatureStats.from_features(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats.from_features(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="two rows"):
        _ = FeatureStats.from_features(np.zeros((1, 3))).cov


# --- Fréchet distance: closed forms -----------------------------------------------------


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_fd_of_diagonal_and_commuting_gaussians(method: str) -> None:
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.1, 3.0, 12), rng.uniform(0.1, 3.0, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method)
    assert got == pytest.approx(expected, rel=CLOSED_FORM_TOLERANCE)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    rotated = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T, method=method)
    assert rotated == pytest.approx(expected, rel=CLOSED_FORM_TOLERANCE)


def test_fd_of_a_set_with_itself_is_zero() -> None:
    x = _gaussian(np.random.default_rng(5), 300, 32)
    result = fd(real=x, fake=x, extractor_id="test", replicates=0)
    assert result.value is not None and abs(result.value) < CLOSED_FORM_TOLERANCE


def test_fd_symmetry_invariances_and_scaling() -> None:
    rng = np.random.default_rng(6)
    x, y = _gaussian(rng, 200, 16), _gaussian(rng, 150, 16, shift=0.5)
    base = frechet_distance(*_moments(x), *_moments(y))
    assert frechet_distance(*_moments(y), *_moments(x)) == pytest.approx(base, rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    t = rng.normal(size=16)
    moved = frechet_distance(*_moments(x @ q + t), *_moments(y @ q + t))
    assert moved == pytest.approx(base, rel=1e-10)
    scaled = frechet_distance(*_moments(3.0 * x), *_moments(3.0 * y))
    assert scaled == pytest.approx(9.0 * base, rel=1e-10)


@pytest.mark.parametrize(("n", "d"), [(400, 64), (100, 64), (600, 256), (200, 256)])
def test_eigh_agrees_with_sqrtm_and_pytorch_fid(n: int, d: int) -> None:
    rng = np.random.default_rng(d + n)
    x, y = _relu(rng, n, d), _relu(rng, n, d) * 1.1
    moments = (*_moments(x), *_moments(y))
    by_eigh = frechet_distance(*moments, method="eigh")
    by_sqrtm = frechet_distance(*moments, method="sqrtm")
    assert by_eigh == pytest.approx(by_sqrtm, rel=METHOD_AGREEMENT)
    assert by_sqrtm == pytest.approx(pytorch_fid_frechet(*moments), rel=REFERENCE_TOLERANCE)


@pytest.mark.parametrize("singular", ["first", "second", "both"])
def test_eigh_paths_for_singular_covariances_agree_with_sqrtm(
    singular: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Cholesky form factors whichever covariance has a factor; with none it roots Σ₁
    by eigh. Each path gives pytorch-fid's value."""
    rng = np.random.default_rng(7)
    small, large = _relu(rng, 90, 128), _relu(rng, 500, 128) * 1.1
    x, y = (small, large) if singular == "first" else (large, small)
    if singular == "both":
        refuse = linalg.LinAlgError("forced: no factor")
        monkeypatch.setattr(linalg, "cholesky", lambda *a, **k: (_ for _ in ()).throw(refuse))
    moments = (*_moments(x), *_moments(y))
    by_eigh = frechet_distance(*moments, method="eigh")
    assert by_eigh == pytest.approx(frechet_distance(*moments, method="sqrtm"), rel=1e-6)
    assert by_eigh == pytest.approx(frechet_distance(*moments[2:], *moments[:2]), rel=1e-9)


def test_sqrtm_retry_adds_eps_as_pytorch_fid(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    moments = (*_moments(_gaussian(rng, 50, 6)), *_moments(_gaussian(rng, 50, 6, 1.0)))
    real_sqrtm = linalg.sqrtm
    calls: list[int] = []

    def failing_once(a: Array) -> Array:
        calls.append(1)
        return np.full_like(a, np.inf) if len(calls) == 1 else real_sqrtm(a)

    # frechet.py calls scipy.linalg.sqrtm through the module: patch it there, once for both.
    monkeypatch.setattr(linalg, "sqrtm", failing_once)
    got = frechet_distance(*moments, method="sqrtm")
    calls.clear()
    expected = pytorch_fid_frechet(*moments)
    assert len(calls) == 2  # the reference took its retry branch too
    assert got == pytest.approx(expected, rel=REFERENCE_TOLERANCE)
    x, y = _gaussian(rng, 30, 4), _gaussian(rng, 30, 4)
    calls.clear()
    result = fd(real=x, fake=y, extractor_id="test", method="sqrtm", replicates=0)
    assert any("retried" in note for note in result.notes)


def test_fd_refuses_bad_input() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")
    with pytest.raises(ValueError, match="dimension"):
        fd(real=x, fake=np.zeros((5, 4)), extractor_id="test")
    with pytest.raises(ValueError, match="two rows"):
        fd(real=x, fake=np.zeros((1, 3)), extractor_id="test")
    with pytest.raises(TypeError):
        fd(x, x, extractor_id="test")  # type: ignore[misc]


# --- honest numbers and intervals -----------------------------------------------------


def test_fd_result_carries_counts_interval_and_singular_note() -> None:
    rng = np.random.default_rng(8)
    x, y = _gaussian(rng, 60, 64), _gaussian(rng, 50, 64, 0.3)
    result = fd(real=x, fake=y, extractor_id="random-cnn@seed0", replicates=50, rng=1)
    assert (result.n_real, result.n_fake, result.dim) == (60, 50, 64)
    assert result.method == "eigh" and result.extractor_id == "random-cnn@seed0"
    assert any("singular" in note for note in result.notes)
    assert result.low is not None and result.high is not None and result.low < result.high
    again = fd(real=x, fake=y, extractor_id="random-cnn@seed0", replicates=50, rng=1)
    assert again == result


def test_intervals_say_why_they_are_missing() -> None:
    rng = np.random.default_rng(9)
    small = fd(real=_gaussian(rng, 10, 3), fake=_gaussian(rng, 10, 3), extractor_id="t")
    assert small.low is None and small.interval_reason is not None
    assert "too few images" in small.interval_reason
    none = fd(
        real=_gaussian(rng, 40, 3), fake=_gaussian(rng, 40, 3), extractor_id="t", replicates=0
    )
    assert none.low is None and none.interval_reason == "no bootstrap replicates were requested"
    large = fd(real=_gaussian(rng, 40, 3), fake=_gaussian(rng, 40, 3), extractor_id="t")
    assert not large.notes and large.interval_reason is None


def test_bootstrap_interval_covers_the_truth_mostly() -> None:
    # Shifted means only: the FD is ‖Δμ‖² = 4 in the limit; a small-N interval should
    # contain the sample value.
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + [2.0, 0.0]
    result = fd(real=x, fake=y, extractor_id="t", replicates=200, rng=3)
    assert result.low is not None and result.high is not None and result.value is not None
    assert result.low <= result.value <= result.high
    assert result.low < 4.0 < result.high


# --- KID --------------------------------------------------------------------------------


def _kid_brute_force(x: Array, y: Array) -> float:
    """MMD²ᵤ written out pair by pair (Bińkowski et al. 2018, eq. 3; cross diagonal kept)."""
    d, m = x.shape[1], x.shape[0]

    def k(a: Array, b: Array) -> float:
        return float((a @ b / d + 1.0) ** 3)

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2.0 * cross / m**2


def test_kid_with_full_subsets_equals_the_pairwise_formula() -> None:
    rng = np.random.default_rng(11)
    x, y = _relu(rng, 40, 8), _relu(rng, 40, 8) + 0.2
    result = kid(real=x, fake=y, extractor_id="t", subsets=5, subset_size=40, replicates=0)
    assert result.value == pytest.approx(_kid_brute_force(x, y), rel=REFERENCE_TOLERANCE)
    assert result.std is not None and result.std < REFERENCE_TOLERANCE
    assert polynomial_mmd2(x, y) == pytest.approx(_kid_brute_force(x, y), rel=REFERENCE_TOLERANCE)


def test_kid_of_one_distribution_is_zero_within_its_spread() -> None:
    rng = np.random.default_rng(12)
    x = _gaussian(rng, 1200, 16)
    result = kid(real=x[:600], fake=x[600:], extractor_id="t", subset_size=200, replicates=0)
    assert result.value is not None and result.std is not None
    assert abs(result.value) < 3 * result.std
    shifted = kid(real=x[:600], fake=x[600:] + 0.5, extractor_id="t", subset_size=200, replicates=0)
    assert shifted.value is not None and shifted.value > 10 * result.std


def test_kid_refuses_subsets_larger_than_a_set() -> None:
    x = np.zeros((50, 4))
    with pytest.raises(ValueError, match=r"subset_size=1000 exceeds.*subset_size=50"):
        kid(real=x, fake=x, extractor_id="t")


def test_kid_bootstrap_weights_leave_repeated_pairs_out() -> None:
    rng = np.random.default_rng(13)
    x, y = _relu(rng, 30, 4), _relu(rng, 30, 4)
    k_xx, k_xy, k_yy = polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y)
    ones = np.ones(30, dtype=np.int64)
    full = _weighted_mmd2_unbiased(k_xx, k_xy, k_yy, ones, ones)
    assert full == pytest.approx(mmd2_unbiased(k_xx, k_xy, k_yy), rel=REFERENCE_TOLERANCE)
    result = kid(real=x, fake=y, extractor_id="t", subsets=3, subset_size=30, replicates=100)
    assert result.low is not None and result.high is not None and result.low < result.high


# --- CMMD -------------------------------------------------------------------------------


def _unit(x: Array) -> Array:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cmmd_equals_the_rbf_formula_from_cdist() -> None:
    rng = np.random.default_rng(14)
    x, y = _unit(_gaussian(rng, 80, 32)), _unit(_gaussian(rng, 60, 32, 0.3))
    gamma = 1.0 / (2 * 10.0**2)

    def k(a: Array, b: Array) -> Array:
        return np.asarray(np.exp(-gamma * cdist(a, b, "sqeuclidean")))

    expected = 1000 * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    result = cmmd(real=x, fake=y, extractor_id="clip-test", replicates=50)
    assert result.value == pytest.approx(expected, rel=REFERENCE_TOLERANCE)
    assert 1000 * rbf_mmd2_biased(x, y) == pytest.approx(expected, rel=REFERENCE_TOLERANCE)
    assert result.value is not None and result.value > 0 and not result.notes
    assert result.low is not None and result.high is not None


def test_cmmd_of_a_set_with_itself_is_zero_and_non_unit_norms_are_noted() -> None:
    x = _unit(_gaussian(np.random.default_rng(15), 30, 8))
    assert cmmd(real=x, fake=x, extractor_id="t", replicates=0).value == pytest.approx(
        0.0, abs=1e-12
    )
    loose = cmmd(real=2 * x, fake=x, extractor_id="t", replicates=0)
    assert any("unit-norm" in note for note in loose.notes)


# --- Inception Score --------------------------------------------------------------------


def test_inception_score_of_uniform_and_one_hot_logits() -> None:
    uniform = inception_score(np.zeros((50, 10)), extractor_id="t", replicates=0, splits=5)
    assert uniform.value == pytest.approx(1.0, abs=1e-12)
    one_hot = np.repeat(np.eye(8) * 80.0, 10, axis=0)
    result = inception_score(one_hot, extractor_id="t", splits=1, replicates=0)
    assert result.value == pytest.approx(8.0, rel=1e-9)
    probs = inception_score(
        np.repeat(np.eye(8), 10, axis=0),
        extractor_id="t",
        splits=1,
        probabilities=True,
        replicates=0,
    )
    assert probs.value == pytest.approx(8.0, rel=1e-12)


def test_inception_score_equals_a_direct_scipy_computation() -> None:
    rng = np.random.default_rng(16)
    logits = rng.normal(scale=3.0, size=(200, 20))
    p = special.softmax(logits, axis=1)
    kl = stats.entropy(p, p.mean(axis=0, keepdims=True), axis=1)
    result = inception_score(logits, extractor_id="t", splits=1, replicates=0)
    assert result.value == pytest.approx(np.exp(kl.mean()), rel=REFERENCE_TOLERANCE)
    by_split = [
        np.exp(stats.entropy(part, part.mean(axis=0, keepdims=True), axis=1).mean())
        for part in np.split(p, 10)
    ]
    ten = inception_score(logits, extractor_id="t", shuffle=False, replicates=40)
    assert ten.value == pytest.approx(np.mean(by_split), rel=REFERENCE_TOLERANCE)
    assert ten.std == pytest.approx(np.std(by_split), rel=1e-10)
    assert ten.n_real is None and ten.low is not None and ten.high is not None


def test_inception_score_refuses_more_splits_than_images() -> None:
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((5, 3)), extractor_id="t", splits=10)
    assert split_scores(np.log(np.full((4, 2), 0.5)), 2) == pytest.approx([1.0, 1.0])


# --- precision / recall / density / coverage --------------------------------------------


def _prdc_brute_force(real: Array, fake: Array, k_pr: int = 3, k_dc: int = 5) -> list[float]:
    """Loops over samples, radii from sorted distances (Kynkäänniemi 2019, Naeem 2020)."""

    def radius(points: Array, i: int, k: int) -> float:
        others = [np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i]
        return float(sorted(others)[k - 1])

    r_pr = [radius(real, i, k_pr) for i in range(len(real))]
    f_pr = [radius(fake, j, k_pr) for j in range(len(fake))]
    r_dc = [radius(real, i, k_dc) for i in range(len(real))]
    dist = [[float(np.linalg.norm(r - f)) for f in fake] for r in real]
    nr, nf = len(real), len(fake)
    precision = np.mean([any(dist[i][j] <= r_pr[i] for i in range(nr)) for j in range(nf)])
    recall = np.mean([any(dist[i][j] <= f_pr[j] for j in range(nf)) for i in range(nr)])
    density = sum(dist[i][j] < r_dc[i] for i in range(nr) for j in range(nf)) / (k_dc * nf)
    coverage = np.mean([min(dist[i]) < r_dc[i] for i in range(nr)])
    return [float(precision), float(recall), float(density), float(coverage)]


def test_prdc_equals_the_brute_force_definitions() -> None:
    rng = np.random.default_rng(17)
    real, fake = _gaussian(rng, 40, 3), _gaussian(rng, 35, 3, 0.7) * 1.3
    result = prdc(real=real, fake=fake, extractor_id="t", replicates=0)
    got = [m.value for m in (result.precision, result.recall, result.density, result.coverage)]
    assert got == pytest.approx(_prdc_brute_force(real, fake), abs=1e-15)


def test_prdc_on_identical_and_separated_sets() -> None:
    rng = np.random.default_rng(18)
    x = _gaussian(rng, 100, 4)
    same = prdc(real=x, fake=x, extractor_id="t", replicates=0)
    assert (same.precision.value, same.recall.value, same.coverage.value) == (1.0, 1.0, 1.0)
    assert same.density.value == pytest.approx(1.0, abs=0.1)
    far = prdc(real=x, fake=x + 100.0, extractor_id="t", replicates=0)
    assert [m.value for m in (far.precision, far.recall, far.density, far.coverage)] == [0.0] * 4


def test_prdc_sets_are_keyword_only_and_swapping_swaps_precision_and_recall() -> None:
    rng = np.random.default_rng(19)
    real, fake = _gaussian(rng, 80, 3), _gaussian(rng, 80, 3) * 0.3
    forward = prdc(real=real, fake=fake, extractor_id="t", replicates=0)
    swapped = prdc(real=fake, fake=real, extractor_id="t", replicates=0)
    assert forward.precision.value == swapped.recall.value
    assert forward.recall.value == swapped.precision.value
    assert forward.precision.value != forward.recall.value
    with pytest.raises(TypeError):
        prdc(real, fake, extractor_id="t")  # type: ignore[misc]


def test_prdc_bootstrap_gives_one_interval_per_metric() -> None:
    rng = np.random.default_rng(20)
    real, fake = _gaussian(rng, 60, 3), _gaussian(rng, 60, 3, 0.5)
    result = prdc(real=real, fake=fake, extractor_id="t", replicates=60, rng=2)
    for metric in (result.precision, result.recall, result.density, result.coverage):
        assert metric.low is not None and metric.high is not None and metric.value is not None
        assert metric.low <= metric.high and metric.replicates == 60
    few = prdc(real=real[:8], fake=fake[:8], extractor_id="t")
    assert few.precision.low is None and few.precision.notes
    with pytest.raises(ValueError, match="more than 5 rows"):
        prdc(real=real[:5], fake=fake, extractor_id="t")


# --- FD∞ --------------------------------------------------------------------------------


def test_fd_infinity_extrapolates_towards_the_true_distance() -> None:
    # d = 32: the k/N bias dominates the subsampling noise, so the line is clear.
    rng = np.random.default_rng(23)
    d = 32
    real = rng.normal(size=(20000, d))
    fake = rng.normal(size=(2000, d)) * np.sqrt(2.0) + 0.25
    # True FD between N(0, I) and N(0.25, 2I): d·0.25² + d·(√2 − 1)².
    truth = d * 0.25**2 + d * (np.sqrt(2.0) - 1.0) ** 2
    result = fd_infinity(
        real=real, fake=fake, extractor_id="t", sizes=(100, 200, 400, 800, 1600, 2000), replicates=0
    )
    largest = frechet_distance(*_moments(real), *_moments(fake))
    assert result.metric.value is not None
    assert abs(result.metric.value - truth) < abs(largest - truth)
    assert abs(result.metric.value - truth) < 0.05 * truth
    assert result.slope > 0 and result.r_squared is not None and result.r_squared > 0.9
    assert result.values[0] > result.values[-1]


def test_fd_infinity_defaults_and_interval() -> None:
    rng = np.random.default_rng(22)
    real, fake = rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 0.5
    result = fd_infinity(real=real, fake=fake, extractor_id="t", replicates=20, rng=4)
    assert result.sizes[0] == 30 and result.sizes[-1] == 300 and len(result.sizes) == 15
    assert result.metric.low is not None and result.metric.high is not None
    with pytest.raises(ValueError, match="three distinct sizes"):
        fd_infinity(real=real, fake=fake, extractor_id="t", sizes=(10, 10, 20))
    with pytest.raises(ValueError, match="sizes must lie"):
        fd_infinity(real=real, fake=fake, extractor_id="t", sizes=(10, 20, 400))
