"""The FID InceptionV3 extractor on randomly initialised networks saved in the real on-disk
forms (pytorch-fid's state dict, StyleGAN2-ADA's TorchScript) and loaded through the real
loader (METRICS.md §4.2, §6.2 items 10–11). No published weights are needed."""

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from metrics import inception  # noqa: E402
from metrics.extractors import ExtractorUnavailable, resize_bicubic  # noqa: E402
from metrics.inception import (  # noqa: E402
    FIDInceptionV3,
    StateDictInception,
    TorchScriptInception,
    load_inception,
    resize_bilinear_tf1,
)

# Derived, not measured: torchvision documents inception_v3 at 27,161,264 parameters
# (1000 classes, with the auxiliary classifier). The FID graph has no auxiliary head:
# AuxLogits = conv0 1×1 768→128 (98,304 + BN 256) + conv1 5×5 128→768 (2,457,600 +
# BN 1,536) + fc 768→1000 (769,000) = 3,326,696. Its fc has 1008 outputs instead of
# 1000: + 8 × (2048 + 1) = 16,392. 27,161,264 − 3,326,696 + 16,392 = 23,850,960.
FID_INCEPTION_PARAMETERS = 23_850_960
# 94 BasicConv2d (stem 5, A 3×7, B 4, C 4×10, D 6, E 2×9), each conv.weight + BN weight,
# bias, running_mean, running_var, num_batches_tracked; plus fc weight and bias. METRICS.md
# §1.2 counts 566 tensors in torch-fidelity's copy of the same weights.
STATE_DICT_TENSORS = 94 * 6 + 2
MIXED = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")


def _randomise(model: nn.Module, seed: int) -> None:
    """Kaiming convolutions and random batch-norm statistics and affine terms: PyTorch's
    default init leaves InceptionV3 features nearly constant (METRICS.md §1.3)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(t.shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                std = (2.0 / fan_in) ** 0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            elif isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.copy_(uniform(module.running_mean, -0.5, 0.5))
                module.running_var.copy_(uniform(module.running_var, 0.5, 2.0))
                module.weight.copy_(uniform(module.weight, 0.5, 1.5))
                module.bias.copy_(uniform(module.bias, -0.2, 0.2))
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.02)
                module.bias.copy_(uniform(module.bias, -1.0, 1.0))


def _images(seed: int, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Structured images (gradients, a square, noise) so the network sees real contrast."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in shapes:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * rng.uniform(80, 255, 3)
        top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
        base[top : top + h // 3, left : left + w // 3] = rng.uniform(0, 255, 3)
        out.append((base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8))
    return out


def _nchw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.float32)).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    _randomise(model, seed=1)
    state = model.state_dict()
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def clean(weights: tuple[Path, dict[str, torch.Tensor]]) -> StateDictInception:
    extractor = load_inception(weights[0], "clean")
    assert isinstance(extractor, StateDictInception)
    return extractor


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    # Two different images of different sizes, then an exact copy of the first.
    first, second = _images(3, [(320, 300), (256, 384)])
    return [first, second, first.copy()]


@pytest.fixture(scope="module")
def features(clean: StateDictInception, images: list[np.ndarray]) -> np.ndarray:
    return clean.extract(images)


# -- (e) the architecture ---------------------------------------------------------------


def test_parameter_count_and_state_dict_names() -> None:
    model = FIDInceptionV3()
    assert sum(p.numel() for p in model.parameters()) == FID_INCEPTION_PARAMETERS
    state = model.state_dict()
    assert len(state) == STATE_DICT_TENSORS
    prefixes = {key.split(".")[0] for key in state}
    assert {f"Mixed_{name}" for name in MIXED} <= prefixes
    assert not any(key.startswith("AuxLogits") for key in state)
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_1a_3x3.bn.running_mean",
        "Mixed_5b.branch1x1.conv.weight",
        "Mixed_6e.branch7x7dbl_5.bn.running_var",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
    ):
        assert key in state
    assert state["fc.weight"].shape == (1008, 2048) and state["fc.bias"].shape == (1008,)
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)


def test_pooled_features_have_2048_dimensions_at_299() -> None:
    model = FIDInceptionV3().eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 299, 299)).shape == (1, 2048)


# -- (a) state dict through the loader --------------------------------------------------


def test_state_dict_loads_and_features_follow_the_images(
    clean: StateDictInception, features: np.ndarray
) -> None:
    assert features.shape == (3, 2048) and features.dtype == np.float64
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(features[0], features[2])
    gap = np.abs(features[0] - features[1]).mean()
    assert gap > 1e-2 * np.abs(features).mean()
    assert features.std(axis=0).mean() > 1e-3  # not the collapse of METRICS.md §1.3
    assert clean.dim == 2048 and clean.batch_size == 32
    assert clean.id == f"inception-fid-{clean.sha256[:10]}-clean"
    assert not clean.comparable and "will not match published FID" in clean.warning


def test_loaded_weights_are_the_saved_ones(
    clean: StateDictInception, weights: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    loaded = clean.model.state_dict()
    for key, value in weights[1].items():
        assert torch.equal(loaded[key], value), key


def test_batches_are_independent(clean: StateDictInception, images: list[np.ndarray]) -> None:
    one_at_a_time = np.concatenate([clean.extract([image]) for image in images[:2]])
    np.testing.assert_allclose(one_at_a_time, clean.extract(images[:2]), rtol=1e-5, atol=1e-6)
    assert clean.extract([]).shape == (0, 2048)


def test_logits_are_the_classifier_of_the_features(
    clean: StateDictInception, images: list[np.ndarray], features: np.ndarray
) -> None:
    weight = clean.model.fc.weight.detach().double().numpy()
    bias = clean.model.fc.bias.detach().double().numpy()
    unbiased = clean.extract_logits(images[:2])
    assert unbiased.shape == (2, 1008)
    np.testing.assert_allclose(unbiased, features[:2] @ weight.T, rtol=1e-4, atol=1e-4)
    biased = clean.extract_logits(images[:2], bias=True)
    np.testing.assert_allclose(biased - unbiased, np.tile(bias, (2, 1)), atol=1e-4)


# -- (d) preprocessing by hand ----------------------------------------------------------


def test_clean_path_equals_bicubic_resize_then_network(
    clean: StateDictInception, images: list[np.ndarray], features: np.ndarray
) -> None:
    x = _nchw([resize_bicubic(image, 299) for image in images[:2]])
    with torch.inference_mode():
        by_hand = clean.model(x).double().numpy()
    # The extractor runs a batch-norm-folded, channels-last copy: float32 round-off only.
    np.testing.assert_allclose(features[:2], by_hand, rtol=1e-4, atol=1e-4 * np.abs(by_hand).max())


def test_legacy_tensorflow_path_equals_tf1_resize_then_network(
    weights: tuple[Path, dict[str, torch.Tensor]], images: list[np.ndarray]
) -> None:
    legacy = load_inception(weights[0], "legacy_tensorflow")
    assert isinstance(legacy, StateDictInception)
    assert legacy.id.endswith("-legacy_tensorflow")
    x = torch.cat([resize_bilinear_tf1(_nchw([image]), 299) for image in images[:2]])
    with torch.inference_mode():
        by_hand = legacy.model(x).double().numpy()
    got = legacy.extract(images[:2])
    np.testing.assert_allclose(got, by_hand, rtol=1e-4, atol=1e-4 * np.abs(by_hand).max())


def test_tf1_resize_samples_without_half_pixel_offset() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # Downscale by 2: TF1 samples source 2i exactly (no blending, no antialias) ...
    assert torch.equal(resize_bilinear_tf1(x, 2), x[..., ::2, ::2])
    # ... where align_corners=False half-pixel sampling averages neighbours.
    assert not torch.equal(F.interpolate(x, size=(2, 2), mode="bilinear"), x[..., ::2, ::2])
    # Upscale 2 → 4: sources 0, 0.5, 1, 1.5 with the last neighbour clamped.
    row = resize_bilinear_tf1(torch.tensor([[[[10.0, 20.0], [10.0, 20.0]]]]), 4)[0, 0, 0]
    assert row.tolist() == [10.0, 15.0, 20.0, 20.0]
    assert torch.equal(resize_bilinear_tf1(x, 4), x)


# -- (b) strict loading -----------------------------------------------------------------


def test_missing_key_is_a_clear_error(
    tmp_path: Path, weights: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    state = dict(weights[1])
    del state["Mixed_6b.branch7x7_2.conv.weight"]
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ExtractorUnavailable) as error:
        load_inception(path, "clean")
    message = str(error.value)
    assert "1 missing" in message and "Mixed_6b.branch7x7_2.conv.weight" in message
    assert "1 unexpected" in message and "AuxLogits.fc.weight" in message
    assert str(path) in message


def test_wrong_shape_and_non_weights_are_clear_errors(
    tmp_path: Path, weights: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    state = dict(weights[1])
    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ExtractorUnavailable, match="does not fit"):
        load_inception(tmp_path / "shape.pth", "clean")
    (tmp_path / "junk.pth").write_bytes(b"not a weight file")
    with pytest.raises(ExtractorUnavailable, match="neither a TorchScript archive"):
        load_inception(tmp_path / "junk.pth", "clean")
    with pytest.raises(ExtractorUnavailable, match="VERDICT_INCEPTION_RESIZE"):
        load_inception(tmp_path / "junk.pth", "bilinear")


def test_state_dict_without_num_batches_tracked_still_loads(
    tmp_path: Path, weights: tuple[Path, dict[str, torch.Tensor]], images: list[np.ndarray]
) -> None:
    """Files saved before BatchNorm counted batches lack those buffers; BN fills them in."""
    state = {k: v for k, v in weights[1].items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    extractor = load_inception(tmp_path / "old.pth", "clean")
    assert isinstance(extractor, StateDictInception)
    for key, value in state.items():
        assert torch.equal(extractor.model.state_dict()[key], value), key


# -- (c) TorchScript --------------------------------------------------------------------


class TinyStyleGANInception(nn.Module):
    """StyleGAN2-ADA's TorchScript API on a tiny network: float N×3×H×W in 0..255 at any
    size, resized inside; ``return_features=True`` gives 2048-d features, otherwise class
    probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.features = nn.Linear(8 * 16, 2048)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if x.shape[2] != 299 or x.shape[3] != 299:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = torch.relu(self.conv((x - 128.0) / 128.0))
        f = torch.relu(self.features(torch.flatten(F.adaptive_avg_pool2d(x, 4), 1)))
        if return_features:
            return f
        return torch.softmax(self.fc(f), dim=1)


@pytest.fixture(scope="module")
def script_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(5)
    module = TinyStyleGANInception().eval()
    path = tmp_path_factory.mktemp("script") / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript, deprecated in 2.13
        torch.jit.script(module).save(str(path))
    return path


def test_torchscript_loads_and_matches_the_module(
    script_path: Path, images: list[np.ndarray]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = torch.jit.load(str(script_path)).eval()
    mixed = [*images, _images(9, [(320, 300)])[0]]  # sizes A, B, A, A: grouped by size
    legacy = load_inception(script_path, "legacy_tensorflow")
    assert isinstance(legacy, TorchScriptInception)
    with torch.inference_mode():
        expected = np.concatenate(
            [reference(_nchw([image]), return_features=True).double().numpy() for image in mixed]
        )
        x = _nchw([resize_bicubic(image, 299) for image in mixed])
        expected_clean = reference(x, return_features=True).double().numpy()
    got = legacy.extract(mixed)
    assert got.shape == (4, 2048)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(got[0] - got[1]).max() > 1e-3
    clean = load_inception(script_path, "clean")
    np.testing.assert_allclose(clean.extract(mixed), expected_clean, rtol=1e-5, atol=1e-6)
    assert clean.id.startswith("inception-fid-") and clean.id.endswith("-clean")
    with pytest.raises(ExtractorUnavailable, match="state dict"):
        legacy.extract_logits(mixed)


def test_known_hash_marks_the_extractor_comparable(
    script_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = load_inception(script_path, "clean")
    assert not unknown.comparable and unknown.warning
    digest = unknown.sha256
    monkeypatch.setattr(inception, "KNOWN_SHA256", {digest: "test file"})
    known = load_inception(script_path, "clean")
    assert known.comparable and known.warning == ""
    assert known.id == unknown.id
