"""Random, non-overlapping object placement (rejection sampling), optionally along straight-line motions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tuna.data.shapes import palette
from tuna.data.shapes.geometry import Box, boxes_clear, inside_canvas, object_box, side_px
from tuna.data.shapes.scene import SceneObject

# Rejection-sampling budgets. Even four large objects fill < 40% of the canvas, so these are generous.
TRIES_PER_OBJECT = 100
RESTARTS = 300


@dataclass(frozen=True)
class Want:
    """An object to place: its look and, for videos, its total displacement in pixels (first → last frame)."""

    shape: str
    color: str
    size: str
    move: tuple[float, float] = (0.0, 0.0)


def _shifted(box: Box, move: tuple[float, float], t: float) -> Box:
    dx, dy = move[0] * t, move[1] * t
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def _fits(
    box: Box,
    move: tuple[float, float],
    others: Sequence[tuple[Box, tuple[float, float]]],
    times: Sequence[float],
    height: int,
    width: int,
) -> bool:
    # Motion is linear, so being inside the canvas at both ends means inside throughout.
    if not (inside_canvas(box, height, width) and inside_canvas(_shifted(box, move, 1.0), height, width)):
        return False
    gap = palette.OBJECT_GAP * min(height, width)
    return all(
        boxes_clear(_shifted(box, move, t), _shifted(ob, om, t), gap) for ob, om in others for t in times
    )


def place(
    rng: np.random.Generator,
    wants: Sequence[Want],
    height: int,
    width: int,
    existing: Sequence[SceneObject] = (),
    frames: int = 1,
    accept: Callable[[tuple[SceneObject, ...]], bool] | None = None,
) -> tuple[SceneObject, ...]:
    """Positions for `wants` that keep clear of each other and of the (static) `existing` objects.

    `accept` vetoes a whole arrangement (e.g. "A must be left of B"); the search then restarts.
    Raises RuntimeError if no arrangement is found, which means the request is (nearly) infeasible.
    """
    times = [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.0]
    fixed = [(object_box(o, height, width), (0.0, 0.0)) for o in existing]
    margin = palette.EDGE_MARGIN * min(height, width)
    for _ in range(RESTARTS):
        placed: list[tuple[Box, tuple[float, float]]] = list(fixed)
        new: list[SceneObject] = []
        for want in wants:
            half = side_px(want.size, height, width) / 2
            lo_x, hi_x = margin + half, width - margin - half
            lo_y, hi_y = margin + half, height - margin - half
            for _ in range(TRIES_PER_OBJECT):
                cx, cy = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
                box = (cx - half, cy - half, cx + half, cy + half)
                if _fits(box, want.move, placed, times, height, width):
                    placed.append((box, want.move))
                    new.append(SceneObject(want.shape, want.color, want.size, cx / width, cy / height))
                    break
            else:
                break
        if len(new) == len(wants) and (accept is None or accept(tuple(new))):
            return tuple(new)
    raise RuntimeError(f"could not place {list(wants)} on a {height}x{width} canvas beside {list(existing)}")
