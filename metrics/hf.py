"""DINOv2 (FD-DINOv2) and CLIP (CMMD) extractors built with ``transformers`` from a local
Hugging Face model folder (METRICS.md §2.5, §2.6, §4.2).

Preprocessing is done here in numpy/PIL, never by a ``transformers`` image processor: the
processors' defaults (resize shortest side 256, crop 224 for DINOv2; resize-then-crop for
CLIP) are not what the reference implementations do, and some backends need torchvision.

- DINOv2, as dgm-eval: PIL bicubic resize (antialiased, on the uint8 image, which is what
  torchvision ``Resize`` does on a PIL image) straight to 224×224 without cropping, /255,
  mean/std normalisation; feature = ``last_hidden_state[:, 0]``, the CLS token after the
  final layer norm (equal to ``pooler_output``; the hub model's ``model(x)``).
- CLIP, as google-research/cmmd: centre-crop to a square, PIL bicubic resize to the
  model's input size (336 for ViT-L/14-336), /255, CLIP mean/std; feature =
  ``image_embeds`` of ``CLIPVisionModelWithProjection``, L2-normalised (CMMD needs unit
  norm).

Mean and std come from the folder's ``preprocessor_config.json`` when it has them, else
the published defaults; values other than the defaults add a ``-norm…`` tag to the id.

Ids: ``{net}-{arch}-{digest[:10]}-{resize}{size}``, where the digest is a sha256 over
config.json and the weight files the model loads from. Whether a digest is that of a
published checkpoint is not known here, so ``comparable`` stays False: numbers are
comparable between equal ids (same weights, same preprocessing), not with published
FD-DINOv2 or CMMD values until the digests are checked against the published files.
"""

import hashlib
import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Dinov2Model,
    PreTrainedConfig,
    PreTrainedModel,
)

from metrics.extractors import Extractor, ExtractorUnavailable, file_digest

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# FD-DINOv2 input size (dgm-eval). Not config.image_size: the hub checkpoints say 518,
# their pre-training size; the metric resizes to 224 and the position embeddings are
# interpolated.
DINOV2_SIZE = 224

_VIT_LETTERS = {384: "s", 768: "b", 1024: "l", 1280: "h", 1536: "g"}
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json", "model-*.safetensors")
_BINS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExtractorUnavailable(f"{path} is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ExtractorUnavailable(f"{path} does not hold a JSON object.")
    return data


def _check_folder(
    path: Path, types: tuple[str, ...], what: str
) -> tuple[dict[str, Any], list[Path]]:
    """The folder's config.json and the files to hash (config.json, then the weights
    transformers will load), after checking it is a local model of one of these types."""
    if not path.is_dir():
        raise ExtractorUnavailable(f"{path} is not a folder; expected {what}.")
    config = path / "config.json"
    if not config.is_file():
        raise ExtractorUnavailable(f"{path} has no config.json; expected {what}.")
    settings = _read_json(config)
    model_type = settings.get("model_type")
    if model_type not in types:
        raise ExtractorUnavailable(
            f"{path} holds a {model_type!r} model; expected {what} "
            f"(model_type {' or '.join(map(repr, types))})."
        )
    # transformers prefers safetensors when both are there, so only those count then.
    for patterns in (_SAFETENSORS, _BINS):
        weights = sorted({f for pattern in patterns for f in path.glob(pattern) if f.is_file()})
        if weights:
            return settings, [config, *weights]
    raise ExtractorUnavailable(
        f"{path} has no weights (model.safetensors or pytorch_model.bin); expected {what}."
    )


def _digest(files: list[Path]) -> str:
    """One sha256 over the names and contents: independent of where the folder lives."""
    combined = hashlib.sha256()
    for file in files:
        combined.update(f"{file.name}:{file_digest(file)}\n".encode())
    return combined.hexdigest()


def _mean_std(
    path: Path, mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    config = path / "preprocessor_config.json"
    if not config.is_file():
        return mean, std
    data = _read_json(config)
    values = []
    for key, default in (("image_mean", mean), ("image_std", std)):
        value = data.get(key, default)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 3
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and (key == "image_mean" or all(v > 0 for v in value))
        ):
            raise ExtractorUnavailable(f"{config}: {key} should be three numbers, not {value!r}.")
        values.append(tuple(float(v) for v in value))
    return values[0], values[1]


def _norm_tag(
    mean: tuple[float, ...],
    std: tuple[float, ...],
    default_mean: tuple[float, ...],
    default_std: tuple[float, ...],
) -> str:
    if np.allclose(mean, default_mean, rtol=0, atol=1e-9) and np.allclose(
        std, default_std, rtol=0, atol=1e-9
    ):
        return ""
    return "-norm" + hashlib.sha256(repr((mean, std)).encode()).hexdigest()[:6]


def _arch(hidden: int, patch: int) -> str:
    letter = _VIT_LETTERS.get(hidden)
    return f"vit{letter}{patch}" if letter else f"vit-h{hidden}-p{patch}"


def _load(
    cls: type[PreTrainedModel], path: Path, what: str, config: PreTrainedConfig | None = None
) -> PreTrainedModel:
    try:
        # With output_loading_info it returns (model, info); the stubs only know the model.
        loaded: Any = cls.from_pretrained(
            path,
            local_files_only=True,
            output_loading_info=True,
            dtype=torch.float32,
            config=config,
        )
        model, info = loaded
    except ImportError:
        raise  # get_extractor turns a missing package into its own message
    except Exception as exc:  # corrupt files, shape mismatches: all mean "not usable"
        raise ExtractorUnavailable(f"Could not load {what} from {path}: {exc}") from exc
    # transformers initialises missing weights at random with only a warning: features
    # from such a model would look fine and mean nothing.
    if info["missing_keys"] or info["mismatched_keys"]:
        missing = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
        raise ExtractorUnavailable(
            f"The weights in {path} do not fit {what}: {len(missing)} tensors missing or "
            f"mismatched ({', '.join(missing[:3])}, ...)."
        )
    model.eval().requires_grad_(False)
    return model


def _rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"Expected a uint8 height × width × 3 image, got {array.dtype} {array.shape}."
        )
    return array


def _bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """PIL bicubic (antialiased) on the uint8 image, as torchvision Resize on a PIL image
    (dgm-eval) and cmmd's loader do; quantised to uint8 like theirs."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def _normalise(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 H×W×3 to float32 3×H×W, /255 then (x − mean) / std, in float32 as ToTensor
    and Normalize compute it."""
    scaled = image.astype(np.float32) / np.float32(255)
    x = (scaled - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


class _HFExtractor(Extractor):
    comparable = False
    batch_size = 32

    def __init__(
        self,
        model: PreTrainedModel,
        path: Path,
        digest: str,
        size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # Module.to moves in place; transformers' `to` is typed as unbound by its @wraps.
        self.model: torch.nn.Module = torch.nn.Module.to(model, self.device)
        self.path = path
        self.weights_digest = digest  # full sha256, to check against published files
        self.size = size
        self.mean = mean
        self.std = std

    @abstractmethod
    def _pixels(self, image: np.ndarray) -> np.ndarray:
        """One checked RGB uint8 image to the model's float32 3×size×size input."""

    @abstractmethod
    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """A batch of inputs to its (batch, dim) features."""

    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        rows = [np.zeros((0, self.dim))]
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = np.stack(
                    [self._pixels(_rgb(im)) for im in images[start : start + self.batch_size]]
                )
                out = self._forward(torch.from_numpy(batch).to(self.device))
                rows.append(out.double().cpu().numpy())
        return np.concatenate(rows)


class DINOv2(_HFExtractor):
    """FD-DINOv2 features: the CLS token after the final layer norm, 224 bicubic input."""

    def __init__(self, model: PreTrainedModel, path: Path, digest: str, size: int) -> None:
        mean, std = _mean_std(path, IMAGENET_MEAN, IMAGENET_STD)
        super().__init__(model, path, digest, size, mean, std)
        config = model.config
        self.dim = int(config.hidden_size)
        self.id = (
            f"dinov2-{_arch(self.dim, int(config.patch_size))}-{digest[:10]}-bicubic{size}"
            + _norm_tag(mean, std, IMAGENET_MEAN, IMAGENET_STD)
        )

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        return _normalise(_bicubic(image, self.size), self.mean, self.std)

    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # last_hidden_state is after the final layernorm; index 0 is the CLS token.
        return self.model(pixel_values=pixel_values).last_hidden_state[:, 0]


class CLIPImage(_HFExtractor):
    """CMMD features: CLIP image embeddings, L2-normalised, centre-crop + bicubic input."""

    def __init__(self, model: PreTrainedModel, path: Path, digest: str) -> None:
        mean, std = _mean_std(path, CLIP_MEAN, CLIP_STD)
        config = model.config
        # CLIP's position embeddings are fixed, so the input size is the model's own.
        super().__init__(model, path, digest, int(config.image_size), mean, std)
        self.dim = int(config.projection_dim)
        arch = _arch(int(config.hidden_size), int(config.patch_size))
        self.id = f"clip-{arch}-{self.size}-{digest[:10]}-cropbicubic{self.size}" + _norm_tag(
            mean, std, CLIP_MEAN, CLIP_STD
        )

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        # cmmd: the centred square first, then the resize (not resize-then-crop).
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top : top + side, left : left + side]
        return _normalise(_bicubic(square, self.size), self.mean, self.std)

    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeds = self.model(pixel_values=pixel_values).image_embeds.double()
        return embeds / embeds.norm(dim=1, keepdim=True)


def load_dinov2(path: Path, size: int = DINOV2_SIZE) -> Extractor:
    """A DINOv2 extractor from a local transformers folder (e.g. facebook/dinov2-large)."""
    path = Path(path)
    what = "a DINOv2 Hugging Face folder (e.g. facebook/dinov2-large)"
    _, files = _check_folder(path, ("dinov2",), what)
    digest = _digest(files)
    return DINOv2(_load(Dinov2Model, path, what), path, digest, size)


def load_clip(path: Path) -> Extractor:
    """A CLIP image extractor from a local transformers folder: a full CLIP model (e.g.
    openai/clip-vit-large-patch14-336) or a saved CLIPVisionModelWithProjection."""
    path = Path(path)
    what = "a CLIP Hugging Face folder (e.g. openai/clip-vit-large-patch14-336)"
    settings, files = _check_folder(path, ("clip", "clip_vision_model"), what)
    digest = _digest(files)
    config = None
    if settings.get("model_type") == "clip" and "projection_dim" in settings:
        # CLIPModel sizes visual_projection by the top-level projection_dim; the vision
        # config's own copy may be absent (default 512) or stale in saved full models.
        try:
            config = CLIPVisionConfig.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise ExtractorUnavailable(f"Could not read {what} config in {path}: {exc}") from exc
        config.projection_dim = int(settings["projection_dim"])
    return CLIPImage(_load(CLIPVisionModelWithProjection, path, what, config), path, digest)
