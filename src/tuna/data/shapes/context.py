"""Per-sample generation context: the sample's own RNG plus the deterministic, balanced choices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tuna.data.shapes import palette

T = TypeVar("T")

TASKS: tuple[str, ...] = ("caption", "t2i", "vqa", "edit", "video", "video_qa")
# Seeds of the balanced-choice permutations carry this key first; sample indices never reach it.
BALANCE_KEY = 2**32 - 1


def sample_seed(seed: int, split: str, task: str, *keys: int) -> np.random.SeedSequence:
    """Every sample owns a seed derived from (world seed, split, task, index): random access, no shared state."""
    palette.check_split(split)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return np.random.SeedSequence([seed, palette.SPLITS.index(split), TASKS.index(task), *keys])


@dataclass(frozen=True)
class Ctx:
    seed: int
    split: str
    task: str
    index: int
    height: int
    width: int
    frames: int
    antialias: bool
    rng: np.random.Generator

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]

    def balanced(self, options: Sequence[T], stride: int = 1, salt: int = 0) -> T:
        """Cycle through `options` in a fresh random order every len(options) steps of `index // stride`.

        Over any complete cycle every option appears equally often, so a constant guess scores exactly
        chance; within a cycle the order is random, so position in the stream does not give answers away.
        """
        k = self.index // stride
        block, pos = divmod(k, len(options))
        perm = np.random.default_rng(
            sample_seed(self.seed, self.split, self.task, BALANCE_KEY, salt, block)
        ).permutation(len(options))
        return options[int(perm[pos])]

    def combo(
        self, exclude: Sequence[tuple[str, str]] = (), shape: str | None = None, color: str | None = None
    ):
        """A random allowed (colour, shape), optionally with a fixed shape/colour and avoiding `exclude`."""
        pool = [
            c
            for c in palette.allowed_combos(self.split)
            if c not in exclude and shape in (None, c[1]) and color in (None, c[0])
        ]
        if not pool:
            raise ValueError(f"no allowed colour-shape combination with shape={shape} colour={color}")
        return self.choice(pool)

    def size(self) -> str:
        return self.choice(tuple(palette.SIZES))

    def background(self, exclude: str | None = None) -> str:
        return self.choice([b for b in palette.BACKGROUNDS if b != exclude])
