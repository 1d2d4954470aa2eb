"""Set metrics against torchmetrics 1.9.0 on the same feature arrays (METRICS.md §6.2).

torchmetrics is a test-only reference. Its FID/KID/IS classes accept any ``nn.Module``
as the feature extractor; an identity module hands them precomputed float64 features,
so neither torch-fidelity nor torchvision is needed. Its random subsets and shuffles
come from ``torch.randperm``: the tests replay the same draws from a seeded generator.
"""

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("torchmetrics", reason="torchmetrics is a test-only reference (test extra)")

import torch  # noqa: E402
from torchmetrics.image import fid as fid_module  # noqa: E402
from torchmetrics.image import inception as inception_module  # noqa: E402
from torchmetrics.image import kid as kid_module  # noqa: E402

from analysis.core.setmetrics import (  # noqa: E402
    frechet_distance,
    inception_score,
    kid,
    polynomial_mmd2,
)

# METRICS.md §6.2: eigenvalue forms of the same float64 statistics.
FD_TOLERANCE = 1e-9
# N ≤ d: Σ is singular, and square roots of round-off-sized eigenvalues (~1e-16 → 1e-8)
# separate the forms; measured here: eigh 3e-8, sqrtm 3e-9 relative to torchmetrics.
FD_SINGULAR_TOLERANCE = 1e-7
KERNEL_TOLERANCE = 1e-12
Array = npt.NDArray[np.float64]


class _Identity(torch.nn.Module):
    """Features in, features out: lets torchmetrics' metric classes take arrays."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _features(rng: np.random.Generator, n: int, d: int, kind: str) -> Array:
    x = rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d))
    return np.maximum(x, 0.0) if kind == "relu" else x


CASES = [
    (500, 8, "gauss"),
    (500, 64, "gauss"),
    (40, 64, "gauss"),
    (300, 128, "relu"),
    (600, 256, "relu"),
    (150, 256, "gauss"),
]


@pytest.mark.parametrize(("n", "d", "kind"), CASES)
def test_fd_equals_torchmetrics_compute_fid(n: int, d: int, kind: str) -> None:
    rng = np.random.default_rng(n + d)
    x, y = _features(rng, n, d, kind), _features(rng, n, d, kind) * 1.2 + 0.1
    moments = [x.mean(axis=0), np.cov(x, rowvar=False), y.mean(axis=0), np.cov(y, rowvar=False)]
    reference = float(fid_module._compute_fid(*(torch.from_numpy(m) for m in moments)))
    tolerance = FD_TOLERANCE if n > d else FD_SINGULAR_TOLERANCE
    for method in ("eigh", "sqrtm"):
        assert frechet_distance(*moments, method=method) == pytest.approx(reference, rel=tolerance)


def test_fd_equals_torchmetrics_fid_class_fed_features() -> None:
    rng = np.random.default_rng(1)
    real, fake = _features(rng, 300, 32, "relu"), _features(rng, 250, 32, "relu") + 0.05
    metric = fid_module.FrechetInceptionDistance(feature=_Identity(32))
    for batch in np.array_split(real, 4):
        metric.update(torch.from_numpy(batch), real=True)
    for batch in np.array_split(fake, 3):
        metric.update(torch.from_numpy(batch), real=False)
    reference = float(metric.compute())
    ours = frechet_distance(
        real.mean(axis=0), np.cov(real, rowvar=False), fake.mean(axis=0), np.cov(fake, rowvar=False)
    )
    assert ours == pytest.approx(reference, rel=FD_TOLERANCE)


def test_kid_with_full_subsets_equals_torchmetrics_poly_mmd() -> None:
    rng = np.random.default_rng(2)
    x, y = _features(rng, 200, 16, "relu"), _features(rng, 200, 16, "relu") + 0.1
    reference = float(kid_module.poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    result = kid(real=x, fake=y, extractor_id="t", subsets=3, subset_size=200, replicates=0)
    assert result.value == pytest.approx(reference, rel=KERNEL_TOLERANCE)


def test_kid_equals_torchmetrics_class_on_replayed_subsets() -> None:
    rng = np.random.default_rng(3)
    real, fake = _features(rng, 120, 16, "relu"), _features(rng, 90, 16, "relu") * 1.1
    metric = kid_module.KernelInceptionDistance(feature=_Identity(16), subsets=20, subset_size=50)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    torch.manual_seed(7)
    mean, std = (float(v) for v in metric.compute())
    torch.manual_seed(7)
    per_subset = []
    for _ in range(20):
        r = real[torch.randperm(120).numpy()[:50]]
        f = fake[torch.randperm(90).numpy()[:50]]
        per_subset.append(polynomial_mmd2(r, f))
    assert np.mean(per_subset) == pytest.approx(mean, rel=KERNEL_TOLERANCE)
    assert np.std(per_subset) == pytest.approx(std, rel=1e-9)


def test_inception_score_equals_torchmetrics_on_replayed_shuffle() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=4.0, size=(200, 30))
    metric = inception_module.InceptionScore(feature=_Identity(30), splits=10)
    metric.update(torch.from_numpy(logits))
    torch.manual_seed(11)
    mean, std = (float(v) for v in metric.compute())
    torch.manual_seed(11)
    shuffled = logits[torch.randperm(200).numpy()]
    ours = inception_score(shuffled, extractor_id="t", splits=10, shuffle=False, replicates=0)
    assert ours.value == pytest.approx(mean, rel=1e-12)
    # torchmetrics reports the ddof-1 spread, the original code (and ours) ddof 0.
    assert ours.std == pytest.approx(std * np.sqrt(9 / 10), rel=1e-9)
