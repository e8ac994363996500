"""Every kind of text the shapes world says, for training tuna-shapes' small BPE tokenizer."""

from __future__ import annotations

from tuna.data.shapes.world import ShapesWorld, WorldConfig
from tuna.prompts import CAPTION_PROMPT, DEFAULT_SYSTEM


def shapes_corpus(per_task: int = 300, seed: int = 0) -> list[str]:
    """Captions, prompts, questions, answers, instructions and chat boilerplate from the train split.

    Small canvases and 5-frame videos: only the texts are kept, and they do not depend on image size.
    """
    world = ShapesWorld(seed, "train", WorldConfig(height=64, width=64, frames=5))
    texts = [DEFAULT_SYSTEM, CAPTION_PROMPT, "system\n", "user\n", "assistant\n"]
    for task in ("caption", "t2i", "vqa", "edit", "video", "video_qa"):
        for sample in world.samples(task, stop=per_task):
            for name in ("caption", "prompt", "instruction"):
                if hasattr(sample, name):
                    texts.append(getattr(sample, name))
            for pair in getattr(sample, "qa", ()):
                texts += [pair.question, pair.answer]
    return texts
