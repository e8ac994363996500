"""`tuna data preview`: an image grid (GIFs for video) and the texts of the first n samples of a task."""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image

from tuna.data.shapes.world import ShapesWorld

PREVIEW_TASKS: tuple[str, ...] = ("t2i", "vqa", "edit", "video", "caption", "video_qa")
GIF_FRAME_MS = 120


def grid(images: list[Image.Image], columns: int | None = None) -> Image.Image:
    """Tile equal-sized images row by row."""
    if not images:
        raise ValueError("no images to tile")
    cols = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    out = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, im in enumerate(images):
        out.paste(im, ((i % cols) * w, (i // cols) * h))
    return out


def _record(task: str, s) -> tuple[list[Image.Image], dict]:
    """Tiles (for videos: the frames) and the JSON-ready texts of one sample."""
    if task == "t2i":
        return [s.image], {"prompt": s.prompt, "spec": s.spec.to_dict(), "scene": s.scene.to_dict()}
    if task == "caption":
        return [s.image], {"caption": s.caption, "scene": s.scene.to_dict()}
    if task == "vqa":
        qa = [{"question": p.question, "answer": p.answer, "type": p.kind} for p in s.qa]
        return [s.image], {"qa": qa, "scene": s.scene.to_dict()}
    if task == "edit":
        return [s.source_image, s.target_image], {
            "instruction": s.instruction,
            "type": s.op.kind,
            "source": s.source.to_dict(),
            "target": s.target.to_dict(),
        }
    if task == "video":
        return s.frames, {"caption": s.caption, "video": s.video.to_dict()}
    if task == "video_qa":
        qa = [{"question": p.question, "answer": p.answer, "type": p.kind} for p in s.qa]
        return s.frames, {"qa": qa, "video": s.video.to_dict()}
    raise ValueError(f"unknown preview task {task!r}; expected one of {PREVIEW_TASKS}")


def write_preview(task: str, n: int, out: str | Path, seed: int = 0, split: str = "train") -> list[Path]:
    """Write `grid.png` (edits: source|target pairs; videos: first frames) plus `texts.jsonl`, and for videos
    one GIF per sample. Returns the written paths."""
    if task not in PREVIEW_TASKS:
        raise ValueError(f"unknown preview task {task!r}; expected one of {PREVIEW_TASKS}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = ShapesWorld(seed, split)
    tiles, texts, written = [], [], []
    for i, sample in enumerate(world.samples(task, stop=n)):
        media, record = _record(task, sample)
        texts.append({"index": i, **record})
        if task in ("video", "video_qa"):
            gif = out_dir / f"{task}_{i:03d}.gif"
            media[0].save(gif, save_all=True, append_images=media[1:], duration=GIF_FRAME_MS, loop=0)
            written.append(gif)
            tiles.append(media[0])
        elif task == "edit":
            tiles.append(grid(media, columns=2))
        else:
            tiles.append(media[0])
    grid_path = out_dir / "grid.png"
    grid(tiles).save(grid_path)
    text_path = out_dir / "texts.jsonl"
    text_path.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    return [grid_path, text_path, *written]
