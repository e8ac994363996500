"""The built-in shapes world as a data source of every kind (`tuna.data.shapes` is used, not changed)."""

from __future__ import annotations

from tuna import prompts
from tuna.data.formats import Formatter
from tuna.data.shapes.world import ShapesWorld, WorldConfig
from tuna.sequence import Segment, Text, Visual

# Understanding data, one entry per record in turn: image questions are the bulk, captions keep the
# model describing whole scenes, and video questions teach motion, which no other kind asks about.
UND_CYCLE = ("vqa", "caption", "video_qa", "vqa")


def und_task(index: int) -> tuple[str, int]:
    """Record `index` of kind und → (world task, that task's sample index); every sample used once."""
    slot, cycle = index % len(UND_CYCLE), index // len(UND_CYCLE)
    task = UND_CYCLE[slot]
    per_cycle = UND_CYCLE.count(task)
    return task, cycle * per_cycle + UND_CYCLE[:slot].count(task)


class ShapesSource:
    """Endless: record `index` of a kind is the world's sample `index` of the matching task.

    und cycles through `UND_CYCLE` (image VQA twice, a caption, a video question) so understanding data
    includes descriptions and video; text is the caption alone, as plain language-model text.
    """

    def __init__(self, kind: str, seed: int, size: int, frames: int, vqa_turns: int = 1):
        if kind not in ("t2i", "caption", "und", "edit", "video", "text"):
            raise ValueError(f"the shapes world has no data kind {kind!r}")
        self.kind = kind
        self.world = ShapesWorld(
            seed=seed,
            split="train",
            config=WorldConfig(height=size, width=size, frames=frames, vqa_turns=vqa_turns),
        )

    def __len__(self) -> int:
        return 2**62  # endless; index with no epoch wrap-around

    def get(self, index: int, fmt: Formatter) -> list[Segment]:
        encode, world = fmt.encode, self.world
        if self.kind == "t2i":
            s = world.sample("t2i", index)
            prompt = "" if fmt.drop_prompt(f"shapes-t2i:{index}") else s.prompt
            return prompts.text_to_visual(encode, prompt, Visual(pixels=fmt.pixels(s.image), noisy=True))
        if self.kind in ("caption", "und"):
            task, task_index = und_task(index) if self.kind == "und" else ("caption", index)
            s = world.sample(task, task_index)
            if task == "caption":
                return prompts.captioning(encode, Visual(pixels=fmt.pixels(s.image)), s.caption)
            media = Visual(pixels=fmt.video_pixels(s.frames) if task == "video_qa" else fmt.pixels(s.image))
            turns: list = []
            for i, qa in enumerate(s.qa):
                question = [media, qa.question] if i == 0 else [qa.question]
                turns += [("user", question), ("assistant", [qa.answer])]
            return prompts.conversation(encode, turns)
        if self.kind == "edit":
            s = world.sample("edit", index)
            source, target = fmt.pixels(s.source_image), fmt.pixels(s.target_image)
            drop_text, drop_image = fmt.edit_drops(f"shapes-edit:{index}")
            return prompts.editing(
                encode,
                Visual(pixels=source),
                s.instruction,
                Visual(pixels=target, noisy=True),
                drop_text,
                drop_image,
            )
        if self.kind == "video":
            s = world.sample("video", index)
            caption = "" if fmt.drop_prompt(f"shapes-video:{index}") else s.caption
            return prompts.text_to_visual(
                encode, caption, Visual(pixels=fmt.video_pixels(s.frames), noisy=True)
            )
        return [Text(encode(world.sample("caption", index).caption), supervised=True)]
