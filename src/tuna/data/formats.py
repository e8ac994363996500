"""Records → model samples: the official tuna-2 jsonl formats, unchanged, and a `BadRecord` error.

    t2i      {"image", "caption"}                                   text-to-image (noisy target)
    caption  {"image", "caption"}                                   captioning (clean image, caption answer)
    und      {"image" | "video", "conversations": [{"from", "value"}, …]}   understanding (LLaVA style)
    edit     {"raw_image", "out_image", "instruction"}              editing (clean source, noisy target)
    video    {"video", "caption"}                                   text-to-video (decoded with PyAV)
    text     {"text"}                                               text only (every token supervised)

File names inside a record are resolved by the source (relative to the jsonl file, or members of the
same webdataset sample); `open_file(name)` returns a path or the file's bytes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from tuna import prompts
from tuna.data.buckets import fit_to_bucket, nearest_bucket
from tuna.sequence import Segment, Text, Visual

Opener = Callable[[str], "Path | bytes"]
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
IMAGE_PLACEHOLDER = "<image>"


class BadRecord(ValueError):
    """A record that cannot become a sample; `where` names the file and line (or shard and key)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


@dataclass(frozen=True)
class Formatter:
    """How raw media and text become model inputs: tokenizer, bucket area, VAE stride, video frames."""

    encode: Callable[[str], list[int]]
    image_size: int
    multiple: int  # the VAE's spatial stride: bucket sides are multiples of it
    frames: int  # frames per video (1 + 4k)
    # Classifier-free guidance needs the model to know unconditional inputs: this share of generation
    # samples loses its prompt (T2I/T2V); editing samples lose the instruction, the source, or both
    # (each a third of it), matching the rows `TunaPipeline.edit` guides with.
    cond_dropout: float = 0.0
    # Which pass over a finite source this record is read in: the dropout draw hashes it with the
    # record, so each epoch drops a different share of the records instead of the same ones forever.
    epoch: int = 0

    def _draw(self, key: str) -> float:
        # Hash of the sample's identity and epoch, not a running RNG: the same sample in the same epoch
        # always gets the same fate, so resumed and multi-process runs see identical data.
        # Epoch 0 keeps the plain record hash, so runs that never wrap a source draw as they always did.
        identity = zlib.crc32(key.encode())
        return float(np.random.default_rng(identity if self.epoch == 0 else [identity, self.epoch]).random())

    def drop_prompt(self, key: str) -> bool:
        return self._draw(key) < self.cond_dropout

    def edit_drops(self, key: str) -> tuple[bool, bool]:
        """(drop the instruction, drop the source image) for an editing sample."""
        u, p = self._draw(key) / max(self.cond_dropout, 1e-12), 1 / 3
        if u >= 1:
            return False, False
        return u < p or u >= 2 * p, p <= u  # text only, image only, both

    def pixels(self, image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
        """PIL → (3, 1, H, W) in [-1, 1] at `size` or at the bucket nearest its aspect ratio."""
        size = size or nearest_bucket(*image.size, self.image_size, self.multiple)
        return _unit_channels_first(np.array(fit_to_bucket(image.convert("RGB"), size))[None])

    def video_pixels(self, frames: list[Image.Image]) -> torch.Tensor:
        """Frames → (3, F, H, W), all at the first frame's bucket."""
        size = nearest_bucket(*frames[0].size, self.image_size, self.multiple)
        return _unit_channels_first(
            np.stack([np.asarray(fit_to_bucket(f.convert("RGB"), size)) for f in frames])
        )


def _unit_channels_first(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 → (3, F, H, W) float32 in [-1, 1]. The layout is changed on the bytes, before
    the 4×-larger floats exist, and the scaling is done in place: both are memory traffic, which is
    what converting a 17-frame 256² video costs."""
    channels_first = torch.from_numpy(frames).permute(3, 0, 1, 2).contiguous()  # (3, F, H, W) uint8
    return channels_first.float().div_(127.5).sub_(1)


def open_image(source: Path | bytes) -> Image.Image:
    if isinstance(source, Path) and not source.is_file():
        raise FileNotFoundError(f"missing image file {source}")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            return img.convert("RGB")
    except OSError as err:  # PIL's UnidentifiedImageError and truncated files are OSErrors
        raise ValueError(f"unreadable image: {err}") from err


def open_video(source: Path | bytes, frames: int) -> list[Image.Image]:
    """`frames` frames evenly spaced over the video; fewer decodable frames than that is an error."""
    import av

    if isinstance(source, Path) and not source.is_file():
        raise FileNotFoundError(f"missing video file {source}")
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
            decoded = [f.to_image() for f in container.decode(video=0)]
    except (av.FFmpegError, IndexError, ValueError) as err:
        raise ValueError(f"unreadable video: {err}") from err
    if len(decoded) < frames:
        raise ValueError(f"video has {len(decoded)} frames, fewer than the {frames} needed")
    picks = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    return [decoded[i].convert("RGB") for i in picks]


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"empty or missing {key!r}")
    return value.strip()


def _name(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"missing file name {key!r}")
    return value


def to_segments(kind: str, record: Any, open_file: Opener, fmt: Formatter, key: str = "") -> list[Segment]:
    """One record of `kind` → the sample's segments. Any problem raises ValueError / FileNotFoundError.

    `key` names the record (file and line) for condition dropout.
    """
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    image = lambda key: fmt.pixels(open_image(open_file(_name(record, key))))  # noqa: E731
    if kind == "t2i":
        caption = _text(record, "caption")
        prompt = "" if fmt.drop_prompt(key) else caption
        return prompts.text_to_visual(fmt.encode, prompt, Visual(pixels=image("image"), noisy=True))
    if kind == "caption":
        caption = _text(record, "caption")
        return prompts.captioning(fmt.encode, Visual(pixels=image("image")), caption)
    if kind == "video":
        caption = _text(record, "caption")
        frames = open_video(open_file(_name(record, "video")), fmt.frames)
        prompt = "" if fmt.drop_prompt(key) else caption
        return prompts.text_to_visual(fmt.encode, prompt, Visual(pixels=fmt.video_pixels(frames), noisy=True))
    if kind == "edit":
        instruction = _text(record, "instruction")
        source = fmt.pixels(open_image(open_file(_name(record, "raw_image"))))
        target_image = open_image(open_file(_name(record, "out_image")))
        target = fmt.pixels(target_image, size=(source.shape[-1], source.shape[-2]))  # same bucket as source
        drop_text, drop_image = fmt.edit_drops(key)
        return prompts.editing(
            fmt.encode,
            Visual(pixels=source),
            instruction,
            Visual(pixels=target, noisy=True),
            drop_text,
            drop_image,
        )
    if kind == "text":
        return [Text(fmt.encode(_text(record, "text")), supervised=True)]
    if kind == "und":
        if "video" in record:
            visual = Visual(
                pixels=fmt.video_pixels(open_video(open_file(_name(record, "video")), fmt.frames))
            )
        else:
            visual = Visual(pixels=image("image"))
        return prompts.conversation(fmt.encode, _turns(record, visual))
    raise ValueError(f"unknown data kind {kind!r}")


def _turns(record: dict[str, Any], visual: Visual) -> list[tuple[str, list]]:
    """LLaVA conversations → (role, parts); the visual goes where "<image>" is, else first in the first turn."""
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise ValueError("empty or missing 'conversations'")
    turns, placed = [], False
    for turn in conversations:
        role = ROLES.get(turn.get("from")) if isinstance(turn, dict) else None
        value = turn.get("value") if isinstance(turn, dict) else None
        if role is None or not isinstance(value, str) or not value.strip():
            raise ValueError(f"bad conversation turn {turn!r}")
        parts: list = []
        if IMAGE_PLACEHOLDER in value and not placed:
            before, _, after = value.partition(IMAGE_PLACEHOLDER)
            parts = [
                p for p in (before.strip(), visual, after.replace(IMAGE_PLACEHOLDER, "").strip()) if p != ""
            ]
            placed = True
        else:
            parts = [value.replace(IMAGE_PLACEHOLDER, "").strip()]
        turns.append((role, parts))
    if not placed:
        role, parts = turns[0]
        turns[0] = (role, [visual, *parts])
    if not any(role == "assistant" for role, _ in turns):
        raise ValueError("conversation has no answer ('gpt' turn) to learn from")
    return turns
