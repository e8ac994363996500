"""Pixel geometry shared by the generator and the detector, so both sides apply the very same rules."""

from __future__ import annotations

import math

from tuna.data.shapes import palette
from tuna.data.shapes.scene import Scene, SceneObject

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels

# GenEval's rule: the centre offset must exceed this share of the two objects' summed sides before a
# relation counts, and then the offset's direction must be within 60° of the axis (|cos| > 0.5).
RELATION_MARGIN = 0.1
RELATION_COS = 0.5
# A displacement names a direction only within ~37° of that axis (cosine above this).
DIRECTION_COS = 0.8


def side_px(size: str, height: int, width: int) -> float:
    return palette.SIZES[size] * min(height, width)


def object_box(obj: SceneObject, height: int, width: int) -> Box:
    half = side_px(obj.size, height, width) / 2
    cx, cy = obj.x * width, obj.y * height
    return (cx - half, cy - half, cx + half, cy + half)


def boxes_clear(a: Box, b: Box, gap: float) -> bool:
    """True when the boxes are at least `gap` pixels apart along some axis."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def inside_canvas(box: Box, height: int, width: int) -> bool:
    margin = palette.EDGE_MARGIN * min(height, width)
    return box[0] >= margin and box[1] >= margin and box[2] <= width - margin and box[3] <= height - margin


def layout_ok(scene: Scene) -> bool:
    """All objects inside the margins and pairwise separated by the gap."""
    h, w = scene.height, scene.width
    gap = palette.OBJECT_GAP * min(h, w)
    boxes = [object_box(o, h, w) for o in scene.objects]
    if not all(inside_canvas(b, h, w) for b in boxes):
        return False
    return all(boxes_clear(a, b, gap) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def relations(
    a_xy: tuple[float, float], a_side: float, b_xy: tuple[float, float], b_side: float
) -> frozenset[str]:
    """Relations of A to B ("A is left of B"), from pixel centres and sides; may be empty or two."""
    off = (a_xy[0] - b_xy[0], a_xy[1] - b_xy[1])
    norm = math.hypot(*off)
    if norm == 0:
        return frozenset()
    slack = RELATION_MARGIN * (a_side + b_side)
    rx, ry = (math.copysign(max(abs(v) - slack, 0.0), v) / norm for v in off)
    found = set()
    if rx < -RELATION_COS:
        found.add("left of")
    if rx > RELATION_COS:
        found.add("right of")
    if ry < -RELATION_COS:
        found.add("above")
    if ry > RELATION_COS:
        found.add("below")
    return frozenset(found)


def scene_relations(a: SceneObject, b: SceneObject, height: int, width: int) -> frozenset[str]:
    return relations(
        (a.x * width, a.y * height),
        side_px(a.size, height, width),
        (b.x * width, b.y * height),
        side_px(b.size, height, width),
    )


def direction_of(dx: float, dy: float, min_distance: float) -> str | None:
    """The named direction of a displacement (pixels, y down), or None if too short or too diagonal."""
    norm = math.hypot(dx, dy)
    if norm < min_distance:
        return None
    ux, uy = dx / norm, dy / norm
    for name, (vx, vy) in palette.DIRECTION_VECTORS.items():
        if ux * vx + uy * vy > DIRECTION_COS:
            return name
    return None
