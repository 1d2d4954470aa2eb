"""Per-asset, weight-free measures: low-level quality signals, not judgements.

They say whether an image is sharp, colourful, noisy, blocky or badly exposed; they know
nothing of the prompt or of beauty. On modern generators they track people weakly,
which the report shows (METRICS.md §4.3). Every measure is computed after resizing to
one working size, since sharpness depends on resolution; noise and blockiness are read at
the stored resolution, where they live.

BRISQUE is left out: the ``brisque`` package does not import beside numpy 2.4 (it pins
numpy < 2.4), and NIQE needs a pristine-model file the user would have to supply.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metrics.extractors import resize_bicubic

WORKING_SIZE = 256
# Luminance weights of ITU-R BT.601, as Pillow's "L" conversion.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Measure:
    name: str
    lower_is_better: bool
    description: str


MEASURES = (
    Measure("sharpness", False, "variance of the Laplacian of luminance (Pech-Pacheco 2000)"),
    Measure("tenengrad", False, "mean squared Sobel gradient magnitude of luminance"),
    Measure("colourfulness", False, "Hasler & Süsstrunk (2003) M on 0..255"),
    Measure("noise", True, "wavelet (Haar HH) median absolute deviation / 0.6745 (Donoho)"),
    Measure("blockiness", True, "mean |Δ| across 8-px block edges over inside (1: none)"),
    Measure("clipped", True, "share of pixels at luminance ≤ 2 or ≥ 253"),
    Measure("contrast", False, "RMS contrast: standard deviation of luminance"),
)


def measure_image(image: np.ndarray) -> dict[str, float]:
    """Every measure of one decoded RGB image (uint8, height × width × 3)."""
    rgb = resize_bicubic(image, WORKING_SIZE).astype(np.float64)
    luma = rgb @ LUMA
    sobel = np.hypot(ndimage.sobel(luma, axis=0), ndimage.sobel(luma, axis=1))
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    native = np.asarray(image, dtype=np.float64) @ LUMA
    return {
        "sharpness": float(ndimage.laplace(luma).var()),
        "tenengrad": float((sobel**2).mean()),
        "colourfulness": float(colourfulness),
        "noise": _noise(native),
        "blockiness": _blockiness(native),
        "clipped": float(((luma <= 2) | (luma >= 253)).mean()),
        "contrast": float(luma.std()),
    }


def _noise(luma: np.ndarray) -> float:
    """Donoho's estimate at the stored resolution (a resize would smooth the noise away):
    the median absolute Haar diagonal detail of 2×2 blocks, the finest scale, where
    noise dominates, over 0.6745 (σ for Gaussian noise)."""
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    q = luma[:h, :w]
    diagonal = (q[0::2, 0::2] - q[0::2, 1::2] - q[1::2, 0::2] + q[1::2, 1::2]) / 2.0
    return float(np.median(np.abs(diagonal)) / 0.6745)


def _blockiness(luma: np.ndarray) -> float:
    """JPEG blocking at the stored resolution (blocks live on the encoder's 8-px grid,
    which a resize would blur): mean absolute step across block edges over the mean step
    inside blocks, both directions. 1.0: no blocking; a flat image: 1.0."""
    across, inside = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(luma, axis=axis))
        positions = np.arange(steps.shape[axis])
        on_edge = (positions % 8) == 7
        if not on_edge.any() or on_edge.all():
            continue
        across.append(np.take(steps, np.flatnonzero(on_edge), axis=axis).mean())
        inside.append(np.take(steps, np.flatnonzero(~on_edge), axis=axis).mean())
    if not across:
        return 1.0
    within = float(np.mean(inside))
    return float(np.mean(across)) / within if within > 1e-9 else 1.0
