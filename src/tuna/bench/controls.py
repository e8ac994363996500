"""Controls: stand-ins for a model, built from the world's own truth, that run through the same bench path.

ground-truth  renders exactly what was asked, answers with the true answer   → must score ≥ 0.99
blank         a uniform off-palette image; answers as if the image were empty → at or below chance
noise         per-pixel RGB noise; answers with a random answer-vocabulary word → at or below chance
shuffled      the truth for a *different* item (renders of another prompt, another question's answer)
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from tuna.bench.items import BenchItem, EditItem, QAItem, T2IItem, T2VItem
from tuna.bench.normalize import VOCABULARIES, answer_space
from tuna.bench.protocol import Media
from tuna.data.shapes.render import blank_image, noise_image, render
from tuna.data.shapes.samples import VideoScene
from tuna.data.shapes.scene import Scene
from tuna.data.shapes.video import render_video

CONTROLS: tuple[str, ...] = ("ground-truth", "blank", "noise", "shuffled")

# What an empty image would make a truthful model say, per question type.
BLANK_ANSWERS = {"existence": "no", "moving_yes_no": "no", "count": "0", "describe": "An empty image."}
BLANK_DEFAULT = "none"


def fingerprint(media: Media) -> str:
    frames = media if isinstance(media, list) else [media]
    digest = hashlib.blake2b(digest_size=16)
    for f in frames:
        digest.update(f"{f.mode}{f.size}".encode())
        digest.update(f.tobytes())
    return digest.hexdigest()


@dataclass
class AnswerKey:
    """Everything the bench will ask, mapped to its truth."""

    scenes: dict[str, Scene]  # generation prompt → scene
    videos: dict[str, VideoScene]  # video prompt → video
    answers: dict[tuple[str, str], tuple[str, str]]  # (media fingerprint, question) → (answer, type)
    targets: dict[tuple[str, str], Scene]  # (image fingerprint, instruction) → edited scene

    @classmethod
    def from_items(cls, items: Sequence[BenchItem]) -> AnswerKey:
        key = cls({}, {}, {}, {})
        for it in items:
            if isinstance(it, T2IItem):
                key.scenes.setdefault(it.prompt, it.scene)
            elif isinstance(it, T2VItem):
                key.videos.setdefault(it.prompt, it.video)
            elif isinstance(it, QAItem):
                key.answers.setdefault((fingerprint(it.media), it.question), (it.answer, it.kind))
            elif isinstance(it, EditItem):
                key.targets.setdefault((fingerprint(it.image), it.instruction), it.target)
        return key

    def shuffled(self, seed: int) -> AnswerKey:
        """The same questions, each mapped to the truth of another one (answers: of another of its type)."""
        rng = np.random.default_rng(seed)
        answers: dict[tuple[str, str], tuple[str, str]] = {}
        for kind in {k for _, k in self.answers.values()}:
            answers |= _derange({q: a for q, a in self.answers.items() if a[1] == kind}, rng)
        return AnswerKey(
            _derange(self.scenes, rng), _derange(self.videos, rng), answers, _derange(self.targets, rng)
        )


def _derange(mapping: dict, rng: np.random.Generator) -> dict:
    """Send each key to the value of the next key in a random cycle (no key keeps its own, if ≥ 2 keys)."""
    keys = list(mapping)
    order = rng.permutation(len(keys))
    return {keys[order[i]]: mapping[keys[order[(i + 1) % len(keys)]]] for i in range(len(keys))}


def _lookup(table: dict, key, what: str):
    if key not in table:
        raise KeyError(
            f"this control only knows the benchmark's own {what}; got an unknown one: {key!r:.120}"
        )
    return table[key]


def _sized(scene: Scene, height: int, width: int) -> Scene:
    return (
        scene
        if (scene.height, scene.width) == (height, width)
        else replace(scene, height=height, width=width)
    )


class TruthControl:
    """Answers from an `AnswerKey`: the true one ("ground-truth") or a deranged one ("shuffled")."""

    def __init__(self, key: AnswerKey, antialias: bool = True) -> None:
        self.key = key
        self.antialias = antialias

    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        return [
            render(_sized(_lookup(self.key.scenes, p, "prompts"), height, width), self.antialias)
            for p in prompts
        ]

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        return [_lookup(self.key.answers, (fingerprint(m), q), "questions")[0] for m, q in questions]

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        return [
            render(_lookup(self.key.targets, (fingerprint(im), ins), "edits"), self.antialias)
            for im, ins in items
        ]

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        out = []
        for p in prompts:
            video = _lookup(self.key.videos, p, "video prompts")
            scene = _sized(video.scene, height, width)
            # Same path in canvas fractions at any size: the pixel distance scales with the shorter side.
            distance = video.distance * min(height, width) / min(video.scene.height, video.scene.width)
            out.append(render_video(VideoScene(scene, video.directions, frames, distance), self.antialias))
        return out


class BlankControl:
    """Blank images; answers a truthful model would give about an empty image."""

    def __init__(self, key: AnswerKey) -> None:
        self.key = key

    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        return [blank_image(height, width) for _ in prompts]

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        kinds = [_lookup(self.key.answers, (fingerprint(m), q), "questions")[1] for m, q in questions]
        return [BLANK_ANSWERS.get(k, BLANK_DEFAULT) for k in kinds]

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        return [blank_image(im.height, im.width) for im, _ in items]

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        return [[blank_image(height, width) for _ in range(frames)] for _ in prompts]


def _vocabulary() -> tuple[str, ...]:
    words = {w for vocab in VOCABULARIES.values() for w in vocab.values()} | set(answer_space("count"))
    return tuple(sorted(words))


class NoiseControl:
    """Noise images; answers are random words from the union of all answer vocabularies."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.words = _vocabulary()

    def _rng(self, text: str, seed: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, seed, zlib.crc32(text.encode())])

    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        return [noise_image(self._rng(p, seed), height, width) for p in prompts]

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        return [
            self.words[int(self._rng(q + fingerprint(m), 0).integers(len(self.words)))] for m, q in questions
        ]

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        return [noise_image(self._rng(ins + fingerprint(im), seed), im.height, im.width) for im, ins in items]

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        out = []
        for p in prompts:
            rng = self._rng(p, seed)
            out.append([noise_image(rng, height, width) for _ in range(frames)])
        return out


def make_control(name: str, items: Sequence[BenchItem], seed: int = 0, antialias: bool = True):
    """A control that satisfies `TunaTasks`, knowing the truth of `items`."""
    key = AnswerKey.from_items(items)
    if name == "ground-truth":
        return TruthControl(key, antialias)
    if name == "shuffled":
        return TruthControl(key.shuffled(seed), antialias)
    if name == "blank":
        return BlankControl(key)
    if name == "noise":
        return NoiseControl(seed)
    raise ValueError(f"unknown control {name!r}; expected one of {CONTROLS}")
