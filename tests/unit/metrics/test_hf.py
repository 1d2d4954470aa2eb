"""The transformers extractors on tiny models built from configuration, saved in the real
Hugging Face folder format and loaded through the real loaders (METRICS.md §4.2)."""

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Dinov2Config,
    Dinov2Model,
)

from metrics.extractors import ExtractorUnavailable  # noqa: E402
from metrics.hf import load_clip, load_dinov2  # noqa: E402

TINY_VIT: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
)
# Written out here rather than imported, so the test does not share the module's constants.
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _scramble(model: torch.nn.Module, seed: int) -> None:
    """Large random weights everywhere: default init leaves tiny models nearly constant."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def _dinov2(folder: Path, seed: int = 0) -> Path:
    config = Dinov2Config(**TINY_VIT, image_size=56, patch_size=14)
    model = Dinov2Model(config)
    _scramble(model, seed)
    model.save_pretrained(folder)
    return folder


def _clip_vision(folder: Path, seed: int = 0) -> Path:
    config = CLIPVisionConfig(**TINY_VIT, image_size=56, patch_size=14, projection_dim=16)
    model = CLIPVisionModelWithProjection(config)
    _scramble(model, seed)
    model.save_pretrained(folder)
    return folder


def _clip_full(folder: Path, seed: int = 0) -> Path:
    """A whole CLIP (text tower too), the layout of openai/clip-vit-large-patch14-336."""
    config = CLIPConfig(
        vision_config=dict(**TINY_VIT, image_size=56, patch_size=14),
        text_config=dict(**TINY_VIT, vocab_size=64, max_position_embeddings=16),
        projection_dim=16,
    )
    model = CLIPModel(config)
    _scramble(model, seed)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {
        "dinov2": _dinov2(root / "dinov2"),
        "clip": _clip_vision(root / "clip"),
        "clip-full": _clip_full(root / "clip-full"),
    }


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(40, 60), (80, 80), (100, 30), (57, 57)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def _by_hand(image: np.ndarray, size: int, mean: tuple, std: tuple) -> torch.Tensor:
    """PIL bicubic to size×size, then /255 and (x − mean) / std in float64."""
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
    x = (resized / 255.0 - np.array(mean)) / np.array(std)
    return torch.tensor(x.transpose(2, 0, 1)[None], dtype=torch.float32)


def test_dinov2_features_shape_and_determinism(folders: dict[str, Path]) -> None:
    extractor = load_dinov2(folders["dinov2"])
    images = _images()
    features = extractor.extract(images)
    assert features.shape == (4, 32) and features.dtype == np.float64
    assert extractor.dim == 32 and extractor.comparable is False
    assert extractor.id.startswith("dinov2-vit-h32-p14-") and extractor.id.endswith("-bicubic224")
    # Every pair of different images gives different features.
    gaps = np.linalg.norm(features[:, None] - features[None], axis=2)
    assert gaps[~np.eye(4, dtype=bool)].min() > 1e-3
    # The same image gives the same features, whatever the batch around it.
    again = extractor.extract([images[2], images[2], images[0]])
    np.testing.assert_allclose(again[0], again[1], rtol=0, atol=0)
    np.testing.assert_allclose(again, features[[2, 2, 0]], rtol=1e-5, atol=1e-6)
    assert extractor.extract([]).shape == (0, 32)


def test_dinov2_equals_model_run_by_hand(folders: dict[str, Path]) -> None:
    extractor = load_dinov2(folders["dinov2"])
    images = _images(1)
    model = Dinov2Model.from_pretrained(folders["dinov2"], local_files_only=True).eval()
    with torch.no_grad():
        pixels = torch.cat([_by_hand(im, 224, *IMAGENET) for im in images])
        out = model(pixel_values=pixels, output_hidden_states=True)
        # The documented feature: CLS after the final layer norm = pooler_output.
        cls = model.layernorm(out.hidden_states[-1])[:, 0]
    np.testing.assert_allclose(cls.numpy(), out.pooler_output.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(extractor.extract(images), cls.numpy(), rtol=1e-4, atol=1e-5)


def test_dinov2_reads_mean_and_std_from_the_folder(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = shutil.copytree(folders["dinov2"], tmp_path / "dinov2")
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": list(mean), "image_std": list(std)})
    )
    extractor = load_dinov2(folder, size=56)
    images = _images(2)
    model = Dinov2Model.from_pretrained(folder, local_files_only=True).eval()
    with torch.no_grad():
        pixels = torch.cat([_by_hand(im, 56, mean, std) for im in images])
        expected = model(pixel_values=pixels).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(extractor.extract(images), expected, rtol=1e-4, atol=1e-5)
    # Same weights, other normalisation and size: another id, same digest part.
    default = load_dinov2(folders["dinov2"])
    assert extractor.id != default.id
    assert extractor.id.split("-")[4] == default.id.split("-")[4]
    assert "-bicubic56-norm" in extractor.id

    # The reference values written out give the default id.
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": list(IMAGENET[0]), "image_std": list(IMAGENET[1])})
    )
    assert load_dinov2(folder).id == default.id


@pytest.mark.parametrize("kind", ["clip", "clip-full"])
def test_clip_unit_norm_embeddings(folders: dict[str, Path], kind: str) -> None:
    extractor = load_clip(folders[kind])
    assert extractor.dim == 16 and extractor.comparable is False
    assert extractor.id.startswith("clip-vit-h32-p14-56-")
    assert extractor.id.endswith("-cropbicubic56")
    images = _images(3)
    features = extractor.extract(images)
    assert features.shape == (4, 16) and features.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=0, atol=1e-12)
    gaps = np.linalg.norm(features[:, None] - features[None], axis=2)
    assert gaps[~np.eye(4, dtype=bool)].min() > 1e-3
    again = extractor.extract([images[1], images[1]])
    np.testing.assert_array_equal(again[0], again[1])

    # Crop first, then resize (cmmd): a wide image and its centred square agree.
    wide = images[0]  # 40 × 60: the square is columns 10..50
    np.testing.assert_allclose(
        extractor.extract([wide]), extractor.extract([wide[:, 10:50].copy()]), atol=1e-6
    )

    # Centred squares of the 40×60, 80×80, 100×30 and 57×57 images, cut by hand.
    squares = [images[0][:, 10:50], images[1], images[2][35:65], images[3]]
    pixels = torch.cat([_by_hand(sq.copy(), 56, *OPENAI_CLIP) for sq in squares])
    with torch.no_grad():
        if kind == "clip-full":
            # Through CLIPModel itself, whose projection is sized by the top-level config.
            full = CLIPModel.from_pretrained(folders[kind], local_files_only=True).eval()
            pooled = full.vision_model(pixel_values=pixels).pooler_output
            embeds = full.visual_projection(pooled).double().numpy()
        else:
            model = CLIPVisionModelWithProjection.from_pretrained(
                folders[kind], local_files_only=True
            ).eval()
            embeds = model(pixel_values=pixels).image_embeds.double().numpy()
    expected = embeds / np.linalg.norm(embeds, axis=1, keepdims=True)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    for load in (load_dinov2, load_clip):
        with pytest.raises(ExtractorUnavailable, match=str(absent)):
            load(absent)


def test_wrong_model_type_names_path_and_expectation(folders: dict[str, Path]) -> None:
    with pytest.raises(ExtractorUnavailable) as caught:
        load_dinov2(folders["clip"])
    assert str(folders["clip"]) in str(caught.value) and "DINOv2" in str(caught.value)
    with pytest.raises(ExtractorUnavailable) as caught:
        load_clip(folders["dinov2"])
    assert str(folders["dinov2"]) in str(caught.value) and "CLIP" in str(caught.value)


def test_missing_or_foreign_weights(folders: dict[str, Path], tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folders["dinov2"] / "config.json", bare)
    with pytest.raises(ExtractorUnavailable, match="has no weights"):
        load_dinov2(bare)
    # A DINOv2 config beside CLIP weights: transformers would silently initialise the
    # missing tensors at random; the loader refuses.
    shutil.copy(folders["clip"] / "model.safetensors", bare)
    with pytest.raises(ExtractorUnavailable, match="do not fit"):
        load_dinov2(bare)
    (bare / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ExtractorUnavailable, match=str(bare)):
        load_dinov2(bare)
    (bare / "config.json").write_text("{")
    with pytest.raises(ExtractorUnavailable, match="not a readable JSON"):
        load_dinov2(bare)


def test_bad_images_are_refused(folders: dict[str, Path]) -> None:
    extractor = load_dinov2(folders["dinov2"])
    with pytest.raises(ValueError, match="uint8"):
        extractor.extract([np.zeros((20, 20), dtype=np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        extractor.extract([np.zeros((20, 20, 3), dtype=np.float32)])


def test_ids_follow_the_weights_not_the_folder(folders: dict[str, Path], tmp_path: Path) -> None:
    same = load_dinov2(_dinov2(tmp_path / "same", seed=0))
    other = load_dinov2(_dinov2(tmp_path / "other", seed=1))
    assert same.id == load_dinov2(folders["dinov2"]).id
    assert other.id != same.id
    assert load_clip(_clip_vision(tmp_path / "clip1", seed=1)).id != load_clip(folders["clip"]).id


@pytest.mark.django_db
def test_set_metrics_through_the_clip_setting_include_cmmd(
    folders: dict[str, Path], settings: Any
) -> None:
    """The whole path from the setting: the registry builds the CLIP extractor, stored
    media are decoded and embedded, and unit-norm features add CMMD to the set."""
    from metrics import compute, imports
    from metrics.models import MetricValue, ReferenceSet
    from tests.factories import make_asset, make_prompt, make_study, make_system

    settings.VERDICT_CLIP_PATH = str(folders["clip"])
    study = make_study()
    system = make_system(study, name="only")
    rng = np.random.default_rng(0)

    def png() -> bytes:
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(out, "PNG")
        return out.getvalue()

    for _ in range(6):
        make_asset(system, make_prompt(study), data=png())
    reference = ReferenceSet.objects.create(study=study, name="real")
    imports.add_reference_images(
        reference_set=reference, files=[(f"{k}.png", png()) for k in range(6)]
    )
    compute.compute_set_metrics(study=study, reference_set=reference, extractor_name="clip")
    stored = {v.metric: v for v in MetricValue.objects.filter(system=system)}
    assert {"fd", "kid", "cmmd"} <= set(stored) and stored["cmmd"].extractor.startswith("clip-")
    assert stored["cmmd"].value is not None and stored["cmmd"].value >= 0
