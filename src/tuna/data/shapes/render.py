"""Scene → PIL image. Shapes are drawn by PIL's rasteriser; anti-aliasing by supersampling and box filtering."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from tuna.data.shapes import palette
from tuna.data.shapes.geometry import object_box
from tuna.data.shapes.scene import Scene

SUPERSAMPLE = 4  # per side; 4×4 sub-pixels give 17 coverage levels per edge pixel


def render(scene: Scene, antialias: bool = True) -> Image.Image:
    """Draw `scene` at its own `height`×`width`."""
    h, w = scene.height, scene.width
    ss = SUPERSAMPLE if antialias else 1
    image = Image.new("RGB", (w * ss, h * ss), palette.BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x0, y0, x1, y1 = (round(v * ss) for v in object_box(obj, h, w))
        fill = palette.COLORS[obj.color]
        # PIL boxes are inclusive of their last pixel, hence the -1.
        if obj.shape == "circle":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif obj.shape == "square":
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([((x0 + x1 - 1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=fill)
        else:  # unreachable: SceneObject validates shapes; kept so a new shape cannot be silently skipped
            raise ValueError(f"no renderer for shape {obj.shape!r}")
    return image.resize((w, h), Image.Resampling.BOX) if ss > 1 else image


def blank_image(height: int, width: int) -> Image.Image:
    """A uniform image in a colour outside the palette (the "blank" control)."""
    return Image.new("RGB", (width, height), palette.BLANK_RGB)


def noise_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Uniform per-pixel RGB noise (the "noise" control)."""
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8), "RGB")
