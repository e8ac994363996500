"""Benchmark items: what ShapesBench asks and the truth it scores against, from the world or a JSONL file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tuna.data.shapes.render import render
from tuna.data.shapes.samples import EditOp, VideoScene
from tuna.data.shapes.scene import Scene
from tuna.data.shapes.spec import GenSpec, realise
from tuna.data.shapes.video import render_video
from tuna.data.shapes.world import ShapesWorld, WorldConfig

BENCH_TASKS: tuple[str, ...] = ("t2i", "vqa", "edit", "t2v", "video_qa")
BENCH_SPLIT = "test"


@dataclass(frozen=True, eq=False)
class T2IItem:
    prompt: str
    spec: GenSpec
    scene: Scene  # one scene that satisfies the spec (what the ground-truth control draws)


@dataclass(frozen=True, eq=False)
class QAItem:
    media: Image.Image | list[Image.Image]  # an image, or a video's frames
    question: str
    answer: str
    kind: str
    scene: Scene  # the (first-frame) scene, for caption scoring and reports


@dataclass(frozen=True, eq=False)
class EditItem:
    image: Image.Image
    instruction: str
    source: Scene
    target: Scene
    op: EditOp


@dataclass(frozen=True, eq=False)
class T2VItem:
    prompt: str
    video: VideoScene


BenchItem = T2IItem | QAItem | EditItem | T2VItem


def build_items(task: str, seed: int, n: int, config: WorldConfig) -> list[BenchItem]:
    """The first `n` test-split samples of `task`, as benchmark items."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    world = ShapesWorld(seed, BENCH_SPLIT, config)
    if task == "t2i":
        return [T2IItem(s.prompt, s.spec, s.scene) for s in world.samples("t2i", stop=n)]
    if task == "vqa":
        return [
            QAItem(s.image, s.qa[0].question, s.qa[0].answer, s.qa[0].kind, s.scene)
            for s in world.samples("vqa", stop=n)
        ]
    if task == "edit":
        return [
            EditItem(s.source_image, s.instruction, s.source, s.target, s.op)
            for s in world.samples("edit", stop=n)
        ]
    if task == "t2v":
        return [T2VItem(s.caption, s.video) for s in world.samples("video", stop=n)]
    if task == "video_qa":
        return [
            QAItem(s.frames, s.qa[0].question, s.qa[0].answer, s.qa[0].kind, s.video.scene)
            for s in world.samples("video_qa", stop=n)
        ]
    raise ValueError(f"unknown bench task {task!r}; expected one of {BENCH_TASKS}")


def load_prompt_items(path: str | Path, seed: int, config: WorldConfig) -> list[T2IItem]:
    """User generation prompts: one JSON object per line, `{"prompt": ..., <GenSpec fields>}`."""
    items = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
                raise ValueError("each line must be an object with a string 'prompt'")
            spec = GenSpec.from_dict(data)
            rng = np.random.default_rng([seed, number])
            scene = realise(spec, rng, config.height, config.width)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ValueError(f"{path}:{number}: {err}") from err
        items.append(T2IItem(data["prompt"], spec, scene))
    if not items:
        raise ValueError(f"{path} holds no prompts")
    return items


def render_truth(item: BenchItem, antialias: bool = True) -> Image.Image | list[Image.Image]:
    """The ideal output for a generation or edit item."""
    if isinstance(item, T2IItem):
        return render(item.scene, antialias)
    if isinstance(item, EditItem):
        return render(item.target, antialias)
    if isinstance(item, T2VItem):
        return render_video(item.video, antialias)
    raise TypeError(f"{type(item).__name__} has no rendered truth")
