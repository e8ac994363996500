"""The plain records the datasets yield: PIL images (or frame lists), texts, and the structured truth.

Training code turns these into model inputs; `conversation()` gives the chat-style form understanding
training uses (Hugging Face "messages" with an image/video placeholder in the first user turn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tuna.data.shapes.scene import Scene, SceneObject
from tuna.data.shapes.spec import GenSpec


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    kind: str  # question type, e.g. "count"; the scorer groups by it
    # What is asked about, whatever the wording ("red" for "What shape is the red object?"): two turns of
    # one conversation with the same kind and topic are the same question.
    topic: str = field(default="", compare=False)


def with_extra_turns(first: QAPair, turns: int, draw: Callable[[], QAPair | None]) -> tuple[QAPair, ...]:
    """`first`, then up to turns − 1 questions from `draw()` (None: nothing true to ask), skipping any
    already asked in any wording (same kind and topic), which would be answered by copying."""
    if turns < 1:
        raise ValueError(f"turns must be at least 1, got {turns}")
    asked = [first]
    for _ in range(turns - 1):
        extra = draw()
        if extra is not None and (extra.kind, extra.topic) not in {(pair.kind, pair.topic) for pair in asked}:
            asked.append(extra)
    return tuple(asked)


@dataclass(frozen=True)
class VideoScene:
    """Objects start where `scene` puts them and travel straight in `directions[i]` over `frames` frames."""

    scene: Scene
    directions: tuple[str, ...]
    frames: int
    distance: float  # pixels travelled from the first to the last frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene.to_dict(),
            "directions": list(self.directions),
            "frames": self.frames,
            "distance": self.distance,
        }


@dataclass(frozen=True)
class EditOp:
    """What an edit does. `obj` is the object acted on as it is in the source; `new` as it is in the target."""

    kind: str  # add | remove | recolor | replace | move | background
    obj: SceneObject | None = None
    new: SceneObject | None = None
    direction: str | None = None  # move edits
    background: str | None = None  # background edits: the new background


def _conversation(media: str, qa: tuple[QAPair, ...]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i, pair in enumerate(qa):
        content: list[dict[str, str]] = [{"type": media}] if i == 0 else []
        content.append({"type": "text", "text": pair.question})
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": pair.answer}]})
    return messages


@dataclass(frozen=True, eq=False)
class CaptionSample:
    image: Image.Image
    caption: str
    scene: Scene

    def conversation(self) -> list[dict[str, Any]]:
        return _conversation("image", (QAPair("Describe the image.", self.caption, "describe"),))


@dataclass(frozen=True, eq=False)
class T2ISample:
    prompt: str
    spec: GenSpec
    image: Image.Image
    scene: Scene


@dataclass(frozen=True, eq=False)
class VQASample:
    """One image and one or more questions about it; `qa[0]` is the type- and answer-balanced one."""

    image: Image.Image
    scene: Scene
    qa: tuple[QAPair, ...]

    def conversation(self) -> list[dict[str, Any]]:
        return _conversation("image", self.qa)


@dataclass(frozen=True, eq=False)
class EditSample:
    source_image: Image.Image
    instruction: str
    target_image: Image.Image
    source: Scene
    target: Scene
    op: EditOp


@dataclass(frozen=True, eq=False)
class VideoSample:
    frames: list[Image.Image]
    caption: str
    video: VideoScene


@dataclass(frozen=True, eq=False)
class VideoQASample:
    frames: list[Image.Image]
    video: VideoScene
    qa: tuple[QAPair, ...]

    def conversation(self) -> list[dict[str, Any]]:
        return _conversation("video", self.qa)
