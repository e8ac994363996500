"""Every fixed constant of the shapes world, in one place: shapes, colours, sizes, layout rules, held-out set.

`docs/shapes-world.md` documents these values; a test checks the two agree, so change both together.
"""

from __future__ import annotations

import itertools
import math

RGB = tuple[int, int, int]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

# Object colours. Chosen so every pair (objects and backgrounds together) is at least ~85 apart in RGB,
# which lets the detector classify pixels by nearest colour with a generous tolerance for model outputs.
COLORS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 130, 20),
    "yellow": (240, 215, 40),
    "green": (40, 165, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 80, 220),
    "purple": (135, 55, 185),
    "pink": (245, 120, 190),
}

BACKGROUNDS: dict[str, RGB] = {
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
    "brown": (110, 70, 40),
}

# The "blank" control paints this: deliberately farther than MATCH_RADIUS from every palette colour, so a
# blank image reads as "no background, no objects" rather than as a lucky guess of a background colour.
BLANK_RGB: RGB = (190, 190, 190)

# A pixel belongs to its nearest palette colour only if it lies within this RGB distance of it.
MATCH_RADIUS = 60.0

# Object side (bounding-box width = height) as a fraction of the canvas' shorter side.
SIZES: dict[str, float] = {"small": 0.16, "large": 0.28}

# Layout rules, as fractions of the canvas' shorter side.
EDGE_MARGIN = 0.03  # free border between any object and the canvas edge
OBJECT_GAP = 0.05  # free space between the bounding boxes of any two objects
MAX_OBJECTS = 4

# Canvas rules: sides are multiples of PATCH (the VAE/patch grid), and at least MIN_SIDE so small objects
# stay detectable.
PATCH = 16
MIN_SIDE = 64
DEFAULT_SIZE = 128

# Video: 1 + 4k frames (the causal video VAE's frame grouping); objects travel this fraction of the
# shorter side between the first and the last frame.
DEFAULT_FRAMES = 17
MOTION_DISTANCE = 0.3
# Move edits shift an object this fraction of the shorter side.
EDIT_MOVE_DISTANCE = 0.25
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}

# Spatial relations between two objects, GenEval's four.
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

# Colour-shape combinations that never appear anywhere in the train split (compositional generalisation).
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {("yellow", "circle"), ("purple", "square"), ("blue", "triangle"), ("pink", "triangle")}
)
# In val/test generation prompts that name colours, this share of items is forced to use a held-out combo so
# the `held_out` score has enough samples.
HELD_OUT_RATE = 0.25

SPLITS: tuple[str, ...] = ("train", "val", "test")


def all_rgb() -> dict[str, RGB]:
    """Object and background colours together (their names are disjoint)."""
    return {**COLORS, **BACKGROUNDS}


def min_palette_distance() -> float:
    """Smallest RGB distance between any two palette colours (a sanity bound for MATCH_RADIUS)."""
    return min(math.dist(a, b) for a, b in itertools.combinations(all_rgb().values(), 2))


def allowed_combos(split: str) -> tuple[tuple[str, str], ...]:
    """(colour, shape) pairs a scene of `split` may contain."""
    check_split(split)
    combos = tuple(itertools.product(COLORS, SHAPES))
    return tuple(c for c in combos if c not in HELD_OUT) if split == "train" else combos


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def check_canvas(height: int, width: int) -> None:
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or side < MIN_SIDE or side % PATCH:
            raise ValueError(f"{name} {side!r} must be a multiple of {PATCH} and at least {MIN_SIDE}")


def check_frames(frames: int) -> None:
    if not isinstance(frames, int) or frames < 1 or (frames - 1) % 4:
        raise ValueError(f"frames {frames!r} must be 1 + 4k (1, 5, 9, 13, 17, ...)")
