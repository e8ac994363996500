"""`ShapesWorld`: seeded, reproducible, streaming datasets of every task and split."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuna.data.shapes import palette, text
from tuna.data.shapes.compose import random_scene
from tuna.data.shapes.context import TASKS, Ctx, sample_seed
from tuna.data.shapes.edit import make_edit
from tuna.data.shapes.render import render
from tuna.data.shapes.samples import CaptionSample
from tuna.data.shapes.t2i import make_t2i
from tuna.data.shapes.video import make_video, make_video_qa
from tuna.data.shapes.vqa import make_vqa


@dataclass(frozen=True)
class WorldConfig:
    height: int = palette.DEFAULT_SIZE
    width: int = palette.DEFAULT_SIZE
    frames: int = palette.DEFAULT_FRAMES
    antialias: bool = True
    vqa_turns: int = 1  # questions per VQA image or video; the first is the balanced one the benchmark uses

    def __post_init__(self) -> None:
        palette.check_canvas(self.height, self.width)
        palette.check_frames(self.frames)
        if self.vqa_turns < 1:
            raise ValueError(f"vqa_turns must be at least 1, got {self.vqa_turns}")


def _caption(ctx: Ctx) -> CaptionSample:
    scene = random_scene(ctx)
    return CaptionSample(render(scene, ctx.antialias), text.caption(scene, ctx.rng), scene)


class ShapesWorld:
    """Sample `index` of (`seed`, `split`, task) is a pure function of those four values.

    >>> world = ShapesWorld(seed=0, split="train")
    >>> sample = next(world.samples("vqa"))
    """

    def __init__(self, seed: int = 0, split: str = "train", config: WorldConfig | None = None) -> None:
        palette.check_split(split)
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = seed
        self.split = split
        self.config = config or WorldConfig()

    def _ctx(self, task: str, index: int) -> Ctx:
        if index < 0:
            raise ValueError(f"sample index must be non-negative, got {index}")
        rng = np.random.default_rng(sample_seed(self.seed, self.split, task, index))
        c = self.config
        return Ctx(self.seed, self.split, task, index, c.height, c.width, c.frames, c.antialias, rng)

    def sample(self, task: str, index: int) -> Any:
        """Random access: the `index`-th sample of `task` ("caption", "t2i", "vqa", "edit", "video", "video_qa")."""
        ctx = self._ctx(task, index)
        if task == "caption":
            return _caption(ctx)
        if task == "t2i":
            return make_t2i(ctx)
        if task == "vqa":
            return make_vqa(ctx, self.config.vqa_turns)
        if task == "edit":
            return make_edit(ctx)
        if task == "video":
            return make_video(ctx)
        if task == "video_qa":
            return make_video_qa(ctx, self.config.vqa_turns)
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")  # unreachable: _ctx checks

    def samples(self, task: str, start: int = 0, step: int = 1, stop: int | None = None) -> Iterator[Any]:
        """Stream samples `start, start+step, ...` (endless unless `stop`); shard with start=rank, step=world."""
        if step < 1:
            raise ValueError(f"step must be positive, got {step}")
        index = start
        while stop is None or index < stop:
            yield self.sample(task, index)
            index += step
