"""Aspect-ratio buckets: a fixed set of (width, height) sizes of about the same area.

Every input image is resized to cover the bucket nearest its aspect ratio and centre-cropped to it, so
a dataset of arbitrary sizes produces only a handful of latent shapes: the VAE and the encoder batch
same-shaped visuals together, and token counts per image stay about constant (the official recipe
trains at a 512² base resolution "with other aspect ratios at a similar number of visual tokens").
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image

RATIOS = (1 / 2, 9 / 16, 2 / 3, 3 / 4, 1.0, 4 / 3, 3 / 2, 16 / 9, 2.0)  # width / height


@lru_cache(maxsize=32)
def buckets(target: int, multiple: int) -> tuple[tuple[int, int], ...]:
    """(width, height) per ratio, area ≈ target², sides positive multiples of `multiple`."""
    sizes = []
    for ratio in RATIOS:
        width = max(multiple, round(target * ratio**0.5 / multiple) * multiple)
        height = max(multiple, round(target / ratio**0.5 / multiple) * multiple)
        sizes.append((width, height))
    return tuple(dict.fromkeys(sizes))  # small targets make some ratios coincide


def nearest_bucket(width: int, height: int, target: int, multiple: int) -> tuple[int, int]:
    ratio = width / height
    return min(buckets(target, multiple), key=lambda wh: abs(wh[0] / wh[1] - ratio))


def fit_to_bucket(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to cover `size` (keeping the aspect ratio), then centre-crop to exactly `size`."""
    if image.size == size:
        return image
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.BICUBIC,
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))
