"""Scoring edits: did the asked change happen (per edit type), and did everything else stay (preservation)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from tuna.bench.detect import DetectedObject, Detection, detect
from tuna.data.shapes import palette
from tuna.data.shapes.geometry import direction_of
from tuna.data.shapes.samples import EditOp
from tuna.data.shapes.scene import Scene, SceneObject

# An object "stayed" if a detection of the same colour, shape and size lies within this share of the
# shorter side of where it was.
POSITION_TOLERANCE = 0.08
# A move counts if the object went at least this share of the asked distance in the asked direction.
MIN_MOVE_SHARE = 0.5


@dataclass(frozen=True)
class EditScore:
    success: bool
    preservation: float

    @property
    def overall(self) -> float:
        return float(self.success) * self.preservation


def _distance(a: SceneObject | DetectedObject, b: SceneObject | DetectedObject, det: Detection) -> float:
    return math.hypot((a.x - b.x) * det.width, (a.y - b.y) * det.height) / min(det.width, det.height)


def _near(det: Detection, color: str, shape: str, at: SceneObject) -> bool:
    return any(o.combo == (color, shape) and _distance(o, at, det) <= POSITION_TOLERANCE for o in det.objects)


def preserved(det: Detection, keep: list[SceneObject]) -> int:
    """How many of `keep` reappear (same colour, shape, size, place); each detection vouches for one."""
    free = list(det.objects)
    hits = 0
    for obj in keep:
        for o in free:
            if o.combo == obj.combo and o.size == obj.size and _distance(o, obj, det) <= POSITION_TOLERANCE:
                free.remove(o)
                hits += 1
                break
    return hits


def _success(source: Scene, op: EditOp, det: Detection) -> bool:
    """The asked change, in *this* picture: every edit but a background change must keep the background,
    and add/remove must change the number of objects by exactly one (so wiping the image is no "remove")."""
    obj, new = op.obj, op.new
    if op.kind == "background":
        return det.background == op.background
    if det.background != source.background:
        return False
    if op.kind == "add" and new is not None:
        return (
            len(det.objects) == len(source.objects) + 1
            and det.count(new.shape, new.color) == source.count(new.shape, new.color) + 1
        )
    if op.kind == "remove" and obj is not None:
        return (
            len(det.objects) == len(source.objects) - 1
            and det.count(obj.shape, obj.color) == source.count(obj.shape, obj.color) - 1
        )
    if op.kind in ("recolor", "replace") and obj is not None and new is not None:
        return _near(det, new.color, new.shape, obj) and not _near(det, obj.color, obj.shape, obj)
    if op.kind == "move" and obj is not None and op.direction is not None:
        if _near(det, obj.color, obj.shape, obj):
            return False
        need = MIN_MOVE_SHARE * palette.EDIT_MOVE_DISTANCE * min(det.width, det.height)
        return any(
            o.combo == obj.combo
            and direction_of((o.x - obj.x) * det.width, (o.y - obj.y) * det.height, need) == op.direction
            for o in det.objects
        )
    raise ValueError(f"malformed edit {op}")


def score_edit(source: Scene, op: EditOp, image: Image.Image) -> EditScore:
    det = detect(image)
    keep = [o for o in source.objects if o != op.obj]
    hits = preserved(det, keep)
    if op.kind == "background":
        preservation = hits / len(keep) if keep else 1.0
    else:
        preservation = (hits + (det.background == source.background)) / (len(keep) + 1)
    return EditScore(_success(source, op, det), preservation)
