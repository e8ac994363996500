"""Adapter: today's `tuna.pipeline.TunaPipeline` (one item per call, chat by messages) → `TunaTasks`."""

from __future__ import annotations

from typing import Any

from PIL import Image

from tuna.bench.protocol import Media


class PipelineTasks:
    """Batches become loops; (media, question) becomes a one-turn chat with the image or video first."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def generate(self, prompts: list[str], height: int, width: int, seed: int) -> list[Image.Image]:
        return list(self.pipeline.generate(list(prompts), height=height, width=width, seed=seed))

    def chat(self, questions: list[tuple[Media, str]], max_new_tokens: int) -> list[str]:
        answers = []
        for media, question in questions:
            if isinstance(media, list):
                part, frames = {"type": "video", "video": media}, len(media)
            else:
                part, frames = {"type": "image", "image": media}, None
            messages = [{"role": "user", "content": [part, {"type": "text", "text": question}]}]
            answers.append(self.pipeline.chat(messages, max_new_tokens=max_new_tokens, video_frames=frames))
        return answers

    def edit(self, items: list[tuple[Image.Image, str]], seed: int) -> list[Image.Image]:
        return [self.pipeline.edit(image, instruction, seed=seed) for image, instruction in items]

    def generate_video(
        self, prompts: list[str], frames: int, height: int, width: int, seed: int
    ) -> list[list[Image.Image]]:
        return [self.pipeline.generate_video(p, frames, height, width, seed=seed) for p in prompts]
