"""InceptionV3 for FID: the 2015-12-05 TensorFlow graph (METRICS.md §2.9, §4.2).

Two on-disk forms of the same network load here, both from a local file:

- the TorchScript ``inception-2015-12-05.pt`` of StyleGAN2-ADA / clean-fid, used as it is
  (no architecture code): ``model(x, return_features=True)`` on float N×3×H×W in 0..255,
  which resizes to 299 inside the graph with TF1's bilinear resize;
- the state dict ``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid, loaded into
  :class:`FIDInceptionV3`, written here from the architecture (torchvision is never
  imported: it does not import beside this torch build, METRICS.md §1.1).

Preprocessing modes: ``clean`` (clean-fid's default: PIL bicubic, antialiased, per channel
on float, no quantisation) and ``legacy_tensorflow`` (the original TF pipeline: bilinear
without antialias, TF1 sampling). Each extractor's id carries the weights' hash prefix
and the mode; numbers from different ids must never be compared.
"""

import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metrics.extractors import (
    Extractor,
    ExtractorUnavailable,
    file_digest,
    map_images,
    resize_bicubic,
)

RESIZE_MODES = ("clean", "legacy_tensorflow")
SIZE = 299
FEATURES = 2048
# The 2015-12-05 graph's classifier: 1008 outputs (1000 ImageNet classes + 8 unused).
CLASSES = 1008
# Full sha256 of published weight files -> what they are. Left empty on purpose: the
# reference notes give no full hash, and the files cannot be downloaded here to compute
# one. torch.hub names carry a sha256 *prefix* (``-6726825d`` below), too short to
# vouch for a file. Add a verified hash, e.g. of pytorch-fid's
# pt_inception-2015-12-05-6726825d.pth or clean-fid's inception-2015-12-05.pt, to mark
# extractors built from that file comparable with published FIDs.
KNOWN_SHA256: dict[str, str] = {}
# torch.hub's check_hash: the digits after the last "-" of the file name begin its sha256.
PYTORCH_FID_HUB_PREFIX = "6726825d"
NOT_COMPARABLE = (
    "weights sha256 {digest} is not a known published InceptionV3 file: numbers will not "
    "match published FID (compare only with numbers of the same extractor id)."
)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- the network ------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (TF's epsilon 0.001), ReLU."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False)
        # nn.Module, not BatchNorm2d: inference_copy folds it away into an Identity.
        self.bn: nn.Module = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        # In place: the convolution's output is new, so this saves a pass over memory.
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x: Tensor) -> Tensor:
    # The FID variant: TF's average pool ignores the zero padding at the borders
    # (torchvision's Inception3 counts it, the reason pytorch-fid subclasses the blocks).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1×1, 5×5, double 3×3 and pooled branches (35×35)."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35→17 (strided 3×3, strided double 3×3, max pool)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b–6e: factorised 7×7 (1×7 then 7×1) branches (17×17)."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            d7 = layer(d7)
        d7 = self.branch7x7dbl_5(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17→8."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b/7c: expanded 1×3 / 3×1 branches (8×8). The graph's last block pools with
    a max pool where the one before averages (pytorch-fid's FIDInceptionE_2 vs _1)."""

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d3 = torch.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d3, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 as the 2015-12-05 TF graph FID uses (pytorch-fid's port), without the
    auxiliary classifier: ``forward`` maps float N×3×299×299 in 0..255 to the 2048-d pool3
    features; ``logits`` applies the 1008-way classifier to them.

    Parameter names follow torchvision's Inception3 / pytorch-fid's FIDInception blocks
    (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ``fc.bias``),
    so pytorch-fid's state dict loads with ``strict=True``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - 128.0) / 128.0  # the graph's own input scaling (Sub 128, Mul 1/128)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits(self, features: Tensor, *, bias: bool = True) -> Tensor:
        """The 1008 class logits of pool3 features; ``bias=False`` gives the logits the
        original Inception Score code used (torch-fidelity's ``logits_unbiased``)."""
        return F.linear(features, self.fc.weight, self.fc.bias if bias else None)


def inference_copy(model: FIDInceptionV3) -> FIDInceptionV3:
    """An eval-mode copy with each batch norm folded into its convolution and weights in
    channels-last layout: the same function (float32 round-off apart, ~1e-6 relative),
    about a fifth faster on CPU, where the network is nearly all of the extraction time."""
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = nn.utils.fusion.fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    # The stubs' Module.to overloads omit memory_format, which torch accepts.
    return fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


# -- preprocessing ----------------------------------------------------------------------


def resize_bilinear_tf1(x: Tensor, size: int) -> Tensor:
    """TF1 ``tf.image.resize_bilinear(align_corners=False)`` of float N×C×H×W to
    size×size, as the 2015-12-05 graph resizes its input.

    TF1's kernel (``resize_bilinear_op.cc`` with ``half_pixel_centers=False``, the TF1
    default) samples output index i at source coordinate ``i · (in/out)`` in float32,
    with no half-pixel offset (so the image shifts by up to half a source pixel against
    ``F.interpolate(align_corners=False)``), no antialiasing on downscale, and neighbours
    ``floor(s)`` and ``min(floor(s) + 1, in − 1)``; it interpolates along x first, then y.
    torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` reproduces the same
    kernel (METRICS.md §2.9); this is written from the kernel's description, not copied.
    """

    def taps(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        source = torch.arange(size, dtype=torch.float32) * scale
        low = source.floor()
        fraction = (source - low).to(device=x.device, dtype=x.dtype)
        lo = low.long().clamp(max=n_in - 1).to(x.device)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, fraction

    lo_y, hi_y, fy = taps(x.shape[-2])
    lo_x, hi_x, fx = taps(x.shape[-1])
    left, right = x[..., lo_x], x[..., hi_x]
    across = left + (right - left) * fx
    top, bottom = across[..., lo_y, :], across[..., hi_y, :]
    return top + (bottom - top) * fy[:, None]


def _to_tensor(image: np.ndarray) -> Tensor:
    """H×W×3 (uint8 or float) as a float32 1×3×H×W tensor in 0..255."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def _clean(image: np.ndarray) -> Tensor:
    return _to_tensor(resize_bicubic(image, SIZE))


def _legacy_tensorflow(image: np.ndarray) -> Tensor:
    x = _to_tensor(image)
    return x if x.shape[-2:] == (SIZE, SIZE) else resize_bilinear_tf1(x, SIZE)


PREPROCESS: dict[str, Callable[[np.ndarray], Tensor]] = {
    "clean": _clean,
    "legacy_tensorflow": _legacy_tensorflow,
}


# -- extractors -------------------------------------------------------------------------


class InceptionExtractor(Extractor):
    """Shared bookkeeping: id, comparability and the warning, batching to the device."""

    dim = FEATURES
    batch_size = 32

    def __init__(self, path: Path, resize: str, digest: str) -> None:
        self.path = path
        self.resize = resize
        self.sha256 = digest
        self.id = f"inception-fid-{digest[:10]}-{resize}"
        self.comparable = digest in KNOWN_SHA256
        self.warning = "" if self.comparable else NOT_COMPARABLE.format(digest=digest[:10])
        if not self.comparable and digest.startswith(PYTORCH_FID_HUB_PREFIX):
            self.warning += (
                f" Its hash begins with {PYTORCH_FID_HUB_PREFIX}, the torch.hub prefix of "
                "pytorch-fid's file: record its full sha256 in KNOWN_SHA256 once verified."
            )
        self.device = device()

    def extract_logits(self, images: Sequence[np.ndarray], *, bias: bool = False) -> np.ndarray:
        """(n, 1008) float64 class logits for the Inception Score."""
        raise NotImplementedError

    def _chunks(self, images: Sequence[np.ndarray]) -> list[Sequence[np.ndarray]]:
        return [images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)]

    @staticmethod
    def _rows(outputs: list[Tensor], width: int) -> np.ndarray:
        if not outputs:
            return np.zeros((0, width))
        return torch.cat(outputs).to("cpu", torch.float64).numpy()


class StateDictInception(InceptionExtractor):
    """pytorch-fid's state dict in :class:`FIDInceptionV3`, preprocessed here."""

    def __init__(self, path: Path, resize: str, digest: str, model: FIDInceptionV3) -> None:
        super().__init__(path, resize, digest)
        self.model = model.eval()  # as loaded: the reference the tests compare with
        self.network = inference_copy(self.model).to(self.device)
        self._preprocess = PREPROCESS[resize]

    def _batch(self, images: Sequence[np.ndarray]) -> Tensor:
        x = torch.cat(map_images(self._preprocess, images)).to(self.device)
        return x.contiguous(memory_format=torch.channels_last)

    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            outputs = [self.network(self._batch(chunk)) for chunk in self._chunks(images)]
        return self._rows(outputs, FEATURES)

    def extract_logits(self, images: Sequence[np.ndarray], *, bias: bool = False) -> np.ndarray:
        """(n, 1008) float64 class logits, for the Inception Score; without the bias by
        default, as the original IS code (METRICS.md §2.3)."""
        with torch.inference_mode():
            outputs = [
                self.network.logits(self.network(self._batch(chunk)), bias=bias)
                for chunk in self._chunks(images)
            ]
        return self._rows(outputs, CLASSES)


class TorchScriptInception(InceptionExtractor):
    """The StyleGAN2-ADA / clean-fid TorchScript graph, called as
    ``model(x, return_features=True)``. In ``legacy_tensorflow`` mode images go in at
    their own size and the graph resizes them (TF1 bilinear); in ``clean`` mode they are
    bicubic-resized to 299 first, so the graph's resize does nothing."""

    def __init__(self, path: Path, resize: str, digest: str, model: torch.jit.ScriptModule) -> None:
        super().__init__(path, resize, digest)
        self.model = model.eval().to(self.device)

    def _call(self, x: Tensor) -> Tensor:
        out: Tensor = self.model(x.to(self.device), return_features=True)
        return out.reshape(x.shape[0], -1)

    def extract(self, images: Sequence[np.ndarray]) -> np.ndarray:
        outputs: list[Tensor] = []
        with torch.inference_mode():
            for chunk in self._chunks(images):
                if self.resize == "clean":
                    outputs.append(self._call(torch.cat(map_images(_clean, chunk))))
                    continue
                # Native sizes: one call per run of equally sized images.
                start = 0
                while start < len(chunk):
                    end = start + 1
                    while end < len(chunk) and chunk[end].shape == chunk[start].shape:
                        end += 1
                    outputs.append(
                        self._call(torch.cat([_to_tensor(image) for image in chunk[start:end]]))
                    )
                    start = end
        return self._rows(outputs, FEATURES)

    def extract_logits(self, images: Sequence[np.ndarray], *, bias: bool = False) -> np.ndarray:
        raise ExtractorUnavailable(
            "Logits need pytorch-fid's state dict (pt_inception-2015-12-05-6726825d.pth): "
            "the TorchScript graph's default output is class probabilities."
        )


def _state_dict(path: Path) -> dict[str, Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of something else, a truncated file, ...
        raise ExtractorUnavailable(
            f"{path} is neither a TorchScript archive nor a readable state dict: {exc}"
        ) from None
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ExtractorUnavailable(f"{path} does not hold a state dict of tensors.")
    return loaded


def _load_module(path: Path) -> FIDInceptionV3:
    state = _state_dict(path)
    model = FIDInceptionV3()
    expected = set(model.state_dict())
    # BatchNorm fills in num_batches_tracked for files saved before it existed.
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise ExtractorUnavailable(
            f"{path} is not an FID InceptionV3 state dict: keys {'; '.join(parts)}. "
            "Expected pytorch-fid's pt_inception-2015-12-05-6726825d.pth."
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # tensor shapes that do not fit
        raise ExtractorUnavailable(f"{path} does not fit FID InceptionV3: {exc}") from None
    return model


def load_inception(path: Path, resize: str) -> InceptionExtractor:
    """The InceptionV3 FID extractor from a local TorchScript archive or state dict."""
    if resize not in RESIZE_MODES:
        raise ExtractorUnavailable(
            f"VERDICT_INCEPTION_RESIZE is {resize!r}; choose one of {', '.join(RESIZE_MODES)}."
        )
    path = Path(path)
    digest = file_digest(path)
    try:
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript, but the published graph is a TorchScript
            # archive and jit.load is the only way to read it.
            warnings.simplefilter("ignore", DeprecationWarning)
            script = torch.jit.load(str(path), map_location="cpu")
    except Exception:  # not TorchScript (a state dict, zip or legacy pickle)
        return StateDictInception(path, resize, digest, _load_module(path))
    return TorchScriptInception(path, resize, digest, script)
