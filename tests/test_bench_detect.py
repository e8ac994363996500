import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tuna.bench.components import connected_components
from tuna.bench.detect import detect
from tuna.data.shapes import ShapesWorld, WorldConfig, palette
from tuna.data.shapes.render import blank_image, noise_image


def _jpeg(im):
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75)
    return Image.open(buf).convert("RGB")


def _noisy(im):
    rng = np.random.default_rng(0)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-20, 21, size=(im.height, im.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


PERTURB = {
    "clean": lambda im: im,
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(1.0)),
    "jpeg": _jpeg,
    "noise": _noisy,
}


# Perturbations are tested on default renders only: 10 px shapes on a 64 px canvas do not survive a
# 1 px blur, and aliased renders are only ever scored clean.
CASES = [(p, WorldConfig()) for p in PERTURB] + [
    ("clean", WorldConfig(antialias=False)),
    ("clean", WorldConfig(height=64, width=128)),
]


@pytest.mark.parametrize("perturb, config", CASES)
def test_detector_recovers_scenes(perturb, config):
    for s in ShapesWorld(0, "test", config).samples("caption", stop=40):
        det = detect(PERTURB[perturb](s.image))
        assert det.background == s.scene.background
        want = sorted((o.color, o.shape, o.size) for o in s.scene.objects)
        assert sorted((o.color, o.shape, o.size) for o in det.objects) == want
        for o in s.scene.objects:
            assert any(
                d.combo == o.combo and abs(d.x - o.x) < 0.02 and abs(d.y - o.y) < 0.02 for d in det.objects
            )


def test_blank_and_noise_contain_nothing():
    assert detect(blank_image(128, 128)).objects == ()
    assert detect(blank_image(128, 128)).background is None
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert detect(noise_image(rng, 128, 128)).objects == ()


def test_palette_is_well_separated():
    assert palette.min_palette_distance() > 1.4 * palette.MATCH_RADIUS
    for rgb in palette.all_rgb().values():
        assert np.linalg.norm(np.subtract(rgb, palette.BLANK_RGB)) > palette.MATCH_RADIUS


def test_connected_components():
    labels = np.array(
        [
            [1, 1, 0, 2],
            [0, 1, 0, 2],
            [1, 0, 0, 2],
            [1, 1, 0, 0],
        ]
    )
    found = connected_components(labels, labels > 0)
    assert sorted((c.label, c.area) for c in found.items) == [(1, 3), (1, 3), (2, 3)]
    big = next(c for c in found.items if c.label == 1 and c.y0 == 0)
    assert (big.x0, big.y0, big.x1, big.y1) == (0, 0, 1, 1)
    assert (found.ids >= 0).sum() == 9
    assert connected_components(labels, labels > 0, min_area=4).items == []
