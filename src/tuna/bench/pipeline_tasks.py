"""Adapter: today's `tuna.pipeline.TunaPipeline` (one item per call, chat by messages) → `TunaTasks`."""

from __future__ import annotations

from typing import Any

from PIL import Image

from tuna.bench.protocol import Media


class PipelineTasks:
    """(media, question) becomes a one-turn chat with the image or video first; questions about media of
    one kind are answered in one batched decode; generation batches prompts (seed + i per prompt)."""

    def __init__(self, pipeline: Any, sampling: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        # steps / cfg_scale / shift / sampler for generation; text_cfg / image_cfg for editing
        self.sampling = dict(sampling or {})

    def _gen_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.sampling.items() if k in ("steps", "cfg_scale", "shift", "sampler")}

    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        return list(
            self.pipeline.generate(list(prompts), height=height, width=width, seed=seed, **self._gen_kwargs())
        )

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        images = [(i, m, q) for i, (m, q) in enumerate(questions) if not isinstance(m, list)]
        videos = [(i, m, q) for i, (m, q) in enumerate(questions) if isinstance(m, list)]
        answers: list[str] = [""] * len(questions)
        for group, kind in ((images, "image"), (videos, "video")):
            if not group:
                continue
            frames = len(group[0][1]) if kind == "video" else None
            conversations = [
                [{"role": "user", "content": [{"type": kind, kind: m}, {"type": "text", "text": q}]}]
                for _, m, q in group
            ]
            for (i, _, _), answer in zip(
                group, self.pipeline.chat_batch(conversations, max_new_tokens, frames)
            ):
                answers[i] = answer
        return answers

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        kw = {
            k: v
            for k, v in self.sampling.items()
            if k in ("steps", "text_cfg", "image_cfg", "shift", "sampler")
        }
        if not items:
            return []
        images, instructions = zip(*items)  # one batched call; every edit from the same seed, as before
        return self.pipeline.edit(list(images), list(instructions), seeds=[seed] * len(items), **kw)

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        return [
            self.pipeline.generate_video(p, frames, height, width, seed=seed, **self._gen_kwargs())
            for p in prompts
        ]
