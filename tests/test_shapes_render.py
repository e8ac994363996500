"""The shapes renderer supersamples only around objects; it must equal drawing the whole canvas."""

import numpy as np
import pytest

from tuna.data.shapes import ShapesWorld, WorldConfig, palette
from tuna.data.shapes.render import render, render_reference
from tuna.data.shapes.scene import Scene, SceneObject
from tuna.data.shapes.video import frame_scenes


def _same(scene: Scene) -> bool:
    return np.array_equal(np.asarray(render(scene)), np.asarray(render_reference(scene)))


def _world_scenes(size: int, n: int):
    world = ShapesWorld(seed=3, split="test", config=WorldConfig(height=size, width=size))
    for i in range(n):
        yield world.sample("caption", i).scene
        yield world.sample("t2i", i).scene
        edit = world.sample("edit", i)
        yield edit.source
        yield edit.target
    yield from frame_scenes(world.sample("video", 0).video)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_the_world_renders_as_the_whole_supersampled_canvas(size):
    assert all(_same(scene) for scene in _world_scenes(size, 40))


def test_overlapping_stacked_and_clipped_objects_render_as_the_whole_canvas():
    # Scenes the world never makes: objects overlapping in every drawing order, touching each other's
    # pixels, hanging off every edge, on non-square canvases.
    rng = np.random.default_rng(0)
    for i in range(1000):
        objects = [
            SceneObject(
                shape=str(rng.choice(palette.SHAPES)),
                color=str(rng.choice(list(palette.COLORS))),
                size=str(rng.choice(list(palette.SIZES))),
                x=float(rng.choice([0.0, 1.0, rng.random()])) if i % 3 == 0 else float(rng.random()),
                y=float(rng.random()),
            )
            for _ in range(int(rng.integers(0, 7)))
        ]
        height, width = (int(v) for v in rng.choice([64, 80, 96, 128, 160], size=2))
        scene = Scene(str(rng.choice(list(palette.BACKGROUNDS))), tuple(objects), height, width)
        assert _same(scene), scene


def test_drawing_order_decides_overlaps():
    big = SceneObject("square", "red", "large", 0.5, 0.5)
    small = SceneObject("circle", "blue", "small", 0.5, 0.5)
    centre = lambda objects: np.asarray(render(Scene("white", objects)))[64, 64].tolist()  # noqa: E731
    assert centre((big, small)) == list(palette.COLORS["blue"])
    assert centre((small, big)) == list(palette.COLORS["red"])


@pytest.mark.parametrize("width,height", [(64, 64), (256, 256), (256, 128), (96, 192), (128, 160)])
def test_box_down_equals_pillows_one_call_resize_on_the_worlds_canvases(width, height):
    # What keeps every render (and so every sample and benchmark item) as it was before patches.
    from PIL import Image

    from tuna.data.shapes.render import SUPERSAMPLE, box_down

    ss = SUPERSAMPLE
    pixels = np.random.default_rng(width + height).integers(0, 256, (height * ss, width * ss, 3), np.uint8)
    image = Image.fromarray(pixels)
    one_call = image.resize((width, height), Image.Resampling.BOX)
    assert np.array_equal(np.asarray(box_down(image, ss)), np.asarray(one_call))
