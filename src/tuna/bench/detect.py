"""The ShapesBench detector: image → background colour + objects (shape, colour, size, position).

Steps: (1) classify each pixel to its nearest palette colour within `MATCH_RADIUS` (a precomputed 32³ lookup
table), else "unknown"; (2) find connected components of object-coloured, non-background pixels; (3) keep a
component only if enough of it is *core* — pixels whose 4 neighbours share their colour. The 1–2 px rims that
anti-aliasing, blur or JPEG leave around shapes can be nearest to a third colour; they have no core, and
neither do speckles of noise; (4) reject components too large or too elongated to be a world object; (5)
classify the shape as the ideal template (circle, square, upright triangle) drawn in the component's
bounding box that overlaps it best (IoU), rejecting it if even the best overlap is poor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from tuna.bench.components import connected_components
from tuna.data.shapes import palette

UNKNOWN = 255
LUT_BITS = 5  # bits kept per channel for the lookup table: 32³ entries, ≤ 7 RGB units of rounding error

# Ideal templates overlap each other with IoU ≤ 0.785 (circle vs square), so a component must beat this to
# count as a shape at all.
MIN_IOU = 0.65
MAX_ASPECT = 1.6  # world objects have square bounding boxes; allow generous distortion
MIN_AREA = 0.15  # × (small side)², of core pixels: a small triangle's core is ≈ 0.4 × side²
MAX_SIDE = 0.6  # × shorter canvas side; anything bigger is a region, not an object
BACKGROUND_SHARE = 0.5  # the border's most common colour must cover this much to be the background


@dataclass(frozen=True)
class DetectedObject:
    shape: str
    color: str
    size: str
    x: float  # bounding-box centre, fraction of width
    y: float  # fraction of height
    side: float  # estimated side length in pixels
    iou: float  # overlap with the ideal shape template

    @property
    def combo(self) -> tuple[str, str]:
        return (self.color, self.shape)


@dataclass(frozen=True)
class Detection:
    background: str | None
    objects: tuple[DetectedObject, ...]
    height: int
    width: int

    def count(self, shape: str | None = None, color: str | None = None) -> int:
        return sum(1 for o in self.objects if shape in (None, o.shape) and color in (None, o.color))


def _names() -> list[str]:
    return [*palette.COLORS, *palette.BACKGROUNDS]


@lru_cache(maxsize=1)
def _lut() -> np.ndarray:
    names = _names()
    rgb = np.array([palette.all_rgb()[n] for n in names], dtype=np.float32)
    step = 1 << (8 - LUT_BITS)
    centres = np.arange(1 << LUT_BITS, dtype=np.float32) * step + (step - 1) / 2
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    dist = np.linalg.norm(grid - rgb[None], axis=-1)
    lut = np.argmin(dist, axis=1).astype(np.uint8)
    lut[dist.min(axis=1) > palette.MATCH_RADIUS] = UNKNOWN
    return lut


def classify_pixels(image: Image.Image) -> np.ndarray:
    """(H, W) palette indices (object colours first, then backgrounds), UNKNOWN where nothing is close."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    q = (arr >> (8 - LUT_BITS)).astype(np.intp)
    return _lut()[(q[..., 0] << (2 * LUT_BITS)) | (q[..., 1] << LUT_BITS) | q[..., 2]]


def _core(idx: np.ndarray) -> np.ndarray:
    core = np.zeros(idx.shape, dtype=bool)
    c = idx[1:-1, 1:-1]
    core[1:-1, 1:-1] = (
        (c != UNKNOWN)
        & (c == idx[:-2, 1:-1])
        & (c == idx[2:, 1:-1])
        & (c == idx[1:-1, :-2])
        & (c == idx[1:-1, 2:])
    )
    return core


def _background(idx: np.ndarray) -> int | None:
    border = np.concatenate([idx[0], idx[-1], idx[1:-1, 0], idx[1:-1, -1]])
    counts = np.bincount(border, minlength=UNKNOWN + 1)[:UNKNOWN]
    best = int(np.argmax(counts))
    return best if counts[best] >= BACKGROUND_SHARE * border.size else None


def templates(height: int, width: int) -> dict[str, np.ndarray]:
    """Ideal masks of every shape filling a `height`×`width` box (pixel centres sampled)."""
    v = (np.arange(height)[:, None] + 0.5) / height
    u = (np.arange(width)[None, :] + 0.5) / width
    return {
        "circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
        "square": np.ones((height, width), dtype=bool),
        "triangle": np.abs(u - 0.5) <= v / 2,
    }


def classify_shape(mask: np.ndarray) -> tuple[str | None, float]:
    """Best-matching shape of a component mask cropped to its bounding box, and that IoU."""
    best, best_iou = None, 0.0
    for name, tpl in templates(*mask.shape).items():
        iou = float((mask & tpl).sum() / (mask | tpl).sum())
        if iou > best_iou:
            best, best_iou = name, iou
    return (best, best_iou) if best_iou >= MIN_IOU else (None, best_iou)


def detect(image: Image.Image) -> Detection:
    idx = classify_pixels(image)
    h, w = idx.shape
    names = _names()
    n_colors = len(palette.COLORS)
    bg = _background(idx)
    short = min(h, w)
    small_side = palette.SIZES["small"] * short
    size_cut = math.sqrt(palette.SIZES["small"] * palette.SIZES["large"]) * short
    valid = idx < n_colors
    if bg is not None:
        valid &= idx != bg
    min_core = MIN_AREA * small_side**2
    found = connected_components(idx, valid, min_area=math.ceil(min_core))
    core_ids = found.ids[_core(idx) & valid]
    core_area = np.bincount(core_ids[core_ids >= 0], minlength=len(found.items))
    objects = []
    for comp in found.items:
        if core_area[comp.id] < min_core:
            continue
        box = (slice(comp.y0, comp.y1 + 1), slice(comp.x0, comp.x1 + 1))
        mask = found.ids[box] == comp.id
        bh, bw = mask.shape
        side = max(bw, bh)
        if side > MAX_SIDE * short or side / min(bw, bh) > MAX_ASPECT:
            continue
        shape, score = classify_shape(mask)
        if shape is None:
            continue
        objects.append(
            DetectedObject(
                shape,
                names[comp.label],
                "large" if side >= size_cut else "small",
                (comp.x0 + bw / 2) / w,
                (comp.y0 + bh / 2) / h,
                float(side),
                score,
            )
        )
    return Detection(names[bg] if bg is not None else None, tuple(objects), h, w)
