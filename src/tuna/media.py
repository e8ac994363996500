"""Images and videos in and out: PIL / files ↔ pixel tensors in [-1, 1], with a documented size policy.

Size policy for inputs: an image keeps its aspect ratio, is scaled so its area is about `target`²
pixels, and its sides are rounded to multiples of `multiple` (the VAE's stride), at least one multiple.
Outputs requested by the user (generate/edit/video sizes) are never resized: a size that is not a
positive multiple of the stride, or beyond `MAX_SIDE`, is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MAX_SIDE = 2048  # pixels; larger requests are refused rather than allowed to exhaust memory


def check_size(height: int, width: int, multiple: int) -> None:
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or side <= 0 or side % multiple or side > MAX_SIDE:
            raise ValueError(
                f"{name} must be a positive multiple of {multiple} up to {MAX_SIDE}, got {side!r}"
            )


def fit_size(width: int, height: int, target: int, multiple: int) -> tuple[int, int]:
    """(width, height) with the input's aspect ratio, area ≈ target², sides multiples of `multiple`."""
    scale = (target * target / (width * height)) ** 0.5
    fit = lambda side: max(multiple, round(side * scale / multiple) * multiple)  # noqa: E731
    return min(fit(width), MAX_SIDE), min(fit(height), MAX_SIDE)


def load_image(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image: {err}") from err


def image_to_pixels(image: Image.Image, target: int, multiple: int) -> torch.Tensor:
    """PIL → (3, 1, H, W) in [-1, 1], resized by the size policy."""
    size = fit_size(*image.size, target=target, multiple=multiple)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy())
    return (array / 127.5 - 1).permute(2, 0, 1)[:, None]


def frames_to_pixels(frames: Sequence[Image.Image], target: int, multiple: int) -> torch.Tensor:
    """Frames → (3, F, H, W) in [-1, 1], every frame resized like the first."""
    return torch.cat([image_to_pixels(f, target, multiple) for f in frames], dim=1)


def pixels_to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """(3, F, H, W) in [-1, 1] → F PIL images."""
    array = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(array[:, f].permute(1, 2, 0).cpu().numpy()) for f in range(array.shape[1])]


def read_video(path: str | Path, num_frames: int) -> list[Image.Image]:
    """`num_frames` frames sampled evenly over the whole video (PyAV)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    try:
        with av.open(str(path)) as container:
            frames = [f.to_image() for f in container.decode(video=0)]
    except (av.FFmpegError, IndexError) as err:
        raise ValueError(f"{path} is not a readable video: {err}") from err
    if not frames:
        raise ValueError(f"{path} has no video frames")
    picks = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    return [frames[i].convert("RGB") for i in picks]


def write_video(frames: Sequence[Image.Image], path: str | Path, fps: int = 8) -> Path:
    """Write frames as .gif (PIL) or .mp4 (PyAV, H.264)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        frames[0].save(path, save_all=True, append_images=list(frames[1:]), duration=1000 // fps, loop=0)
        return path
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"video output must end in .mp4 or .gif, got {path.name}")
    import av

    width, height = frames[0].size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
