"""TunaPipeline: chat, text-to-image, editing and text-to-video from one checkpoint.

The pipeline is a thin composition: messages/prompts → segments (`tuna.prompts`) → the shared
encode → denoise → decode steps (`tuna.sampling`). It alone handles device and dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from tuna import media, prompts
from tuna.model.tuna import TunaModel
from tuna.sampling.flow import StepCallback
from tuna.sampling.text import decode_batch, stream_text
from tuna.sampling.visual import sample_edit, sample_latents
from tuna.sequence import Segment, Visual, build_batch


def default_system_prompt(tokenizer) -> str | None:
    """The system prompt the tokenizer's own chat template adds when a chat has none (Qwen2.5: "You are
    Qwen, created by Alibaba Cloud. …"), so conversations match the model's template."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return prompts.DEFAULT_SYSTEM
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head = "<|im_start|>system\n"
    if not text.startswith(head):
        return None  # the template adds no system turn
    return text[len(head) : text.index("<|im_end|>")]


class TunaPipeline:
    def __init__(
        self, model: TunaModel, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ):
        if model.tokenizer is None:
            raise ValueError("the model has no tokenizer; save it with one (model.tokenizer = …) first")
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = model.tokenizer
        self.cfg = model.cfg
        self.device = torch.device(device)
        self.system = default_system_prompt(self.tokenizer)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
        return cls(TunaModel.from_pretrained(directory), device=device, dtype=dtype)

    # ------------------------------------------------------------------ inputs

    @property
    def stride(self) -> int:
        return self.cfg.vae.scale_factor_spatial

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def encode_content(self, text: str) -> list[int]:
        """User text: special-token strings in it stay plain text (no forged turns or vision blocks)."""
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def conversation(self, turns, system: str | None = None) -> list[Segment]:
        system = self.system if system is None else system
        return prompts.conversation(
            self.encode, turns, system, add_generation_prompt=True, encode_content=self.encode_content
        )

    def image_visual(self, image: Image.Image | str | Path) -> Visual:
        return Visual(pixels=media.image_to_pixels(media.load_image(image), self.cfg.image_size, self.stride))

    def video_visual(self, video: str | Path | Sequence[Image.Image], frames: int) -> Visual:
        if (frames - 1) % self.cfg.vae.scale_factor_temporal or frames < 1:
            raise ValueError(
                f"video frame count must be 1 + {self.cfg.vae.scale_factor_temporal}k, got {frames}"
            )
        if isinstance(video, (str, Path)):
            video = media.read_video(video, frames)
        elif len(video) != frames:
            video = [video[i] for i in torch.linspace(0, len(video) - 1, frames).round().long().tolist()]
        return Visual(pixels=media.frames_to_pixels(video, self.cfg.image_size, self.stride))

    def message_segments(self, messages: Sequence[dict[str, Any]], video_frames: int) -> list[Segment]:
        """Chat messages ({"role", "content": str | parts}) → segments ending in the assistant prompt."""
        if not messages:
            raise ValueError("chat needs at least one message")
        turns, system = [], None
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ValueError(f"message {i} must be a dict with 'role' and 'content', got {message!r:.80}")
            parts = self.content_parts(message["content"], video_frames)
            if message["role"] == "system" and i == 0:
                if not all(isinstance(p, str) for p in parts):
                    raise ValueError("a system message can only hold text")
                system = "".join(parts)
            else:
                turns.append((message["role"], parts))
        return self.conversation(turns, system)

    def content_parts(self, content: Any, video_frames: int) -> list[str | Visual]:
        if isinstance(content, str):
            return [content]
        if not isinstance(content, list):
            raise ValueError(
                f"message content must be a string or a list of parts, got {type(content).__name__}"
            )
        parts: list[str | Visual] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "image" and "image" in part:
                parts.append(self.image_visual(part["image"]))
            elif kind == "video" and "video" in part:
                parts.append(self.video_visual(part["video"], video_frames))
            else:
                raise ValueError(
                    "each content part must be {'type': 'text', 'text': str}, {'type': 'image', 'image': PIL.Image | path}"
                    f" or {{'type': 'video', 'video': path}}; got {part!r:.80}"
                )
        return parts

    # ------------------------------------------------------------------ understanding

    @torch.no_grad()
    def chat_stream(
        self,
        messages: Sequence[dict[str, Any]],
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        video_frames: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is decoded (KV-cached, one token per step)."""
        frames = self.cfg.video_frames if video_frames is None else video_frames
        yield from self.answer_stream(
            self.message_segments(messages, frames), max_new_tokens, temperature, top_p, seed
        )

    @torch.no_grad()
    def answer_stream(
        self,
        segments: Sequence[Segment],
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """`chat_stream` for a conversation already turned into segments (`message_segments`)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
        batch = build_batch([segments], self.cfg.tokens, self.cfg.vae).to(self.device)
        model = self.model
        embeds = model.embed_clean(batch)
        generator = torch.Generator(self.device).manual_seed(seed) if seed is not None else None
        stop = {self.cfg.tokens.im_end_id, self.cfg.tokens.pad_id}
        ids: list[int] = []
        text = emitted = ""
        for token in stream_text(
            model,
            embeds,
            batch.position_ids,
            batch.layout,
            max_new_tokens,
            stop,
            temperature,
            top_p,
            generator,
        ):
            if token in stop:
                break
            ids.append(token)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                yield text[len(emitted) :]
                emitted = text
        # An answer may end inside a character that never completes: show its "\ufffd" as `chat` does.
        if len(text) > len(emitted):
            yield text[len(emitted) :]

    def chat(self, messages: Sequence[dict[str, Any]], **kwargs) -> str:
        return "".join(self.chat_stream(messages, **kwargs))

    @torch.no_grad()
    def chat_batch(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        max_new_tokens: int = 256,
        video_frames: int | None = None,
    ) -> list[str]:
        """Greedy answers to several conversations in one batched, KV-cached decode."""
        frames = self.cfg.video_frames if video_frames is None else video_frames
        return self.answer_batch([self.message_segments(m, frames) for m in conversations], max_new_tokens)

    @torch.no_grad()
    def answer_batch(
        self,
        samples: Sequence[Sequence[Segment]],
        max_new_tokens: int | Sequence[int] = 256,
        on_token: Callable[[], None] | None = None,
    ) -> list[str]:
        """`chat_batch` for conversations already turned into segments (`message_segments`); the token
        limit is one for all or one per conversation; `on_token()` runs after each step (it may raise)."""
        if not samples:
            return []
        batch = build_batch(samples, self.cfg.tokens, self.cfg.vae).to(self.device)
        model = self.model
        embeds = model.embed_clean(batch)
        stop = {self.cfg.tokens.im_end_id, self.cfg.tokens.pad_id}
        ids = decode_batch(model, embeds, batch.position_ids, batch.layout, max_new_tokens, stop, on_token)
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in ids]

    # ------------------------------------------------------------------ generation

    def _size(self, height: int | None, width: int | None) -> tuple[int, int]:
        height = self.cfg.image_size if height is None else height
        width = self.cfg.image_size if width is None else width
        media.check_size(height, width, self.stride)
        return height, width

    def prompt_segments(self, text: str) -> list[Segment]:
        if not isinstance(text, str):
            raise ValueError(f"a prompt must be a string, got {type(text).__name__}")
        segments = self.conversation([("user", [text])])
        length = sum(len(getattr(segment, "ids", ())) for segment in segments)
        context = self.cfg.decoder.max_position_embeddings
        if length > context:
            raise ValueError(f"the prompt takes {length} tokens, over the model's context of {context}")
        return segments

    def _decode(self, latents: torch.Tensor) -> list[list[Image.Image]]:
        vae_dtype = next(self.model.vae.parameters()).dtype
        pixels = self.model.vae.decode(latents.to(vae_dtype))
        return [media.pixels_to_images(p) for p in pixels]

    @torch.no_grad()
    def generate(
        self,
        prompt: str | Sequence[str],
        height: int | None = None,
        width: int | None = None,
        steps: int = 50,
        cfg_scale: float = 7.5,
        shift: float | None = None,
        sampler: str = "euler",
        seed: int = 0,
        negative_prompt: str = "",
        frames: int = 1,
        progress: bool = False,
        seeds: Sequence[int] | None = None,
        on_step: StepCallback | None = None,
    ) -> Image.Image | list[Image.Image]:
        """Text-to-image; a list of prompts gives a list of images (prompt i uses seeds[i], or seed + i).

        `shift` None samples with the time shift the model was trained with (its config's `noise`).
        `on_step(done, total)` runs after each denoising step (progress, cancellation: it may raise).
        """
        single = isinstance(prompt, str)
        texts = [prompt] if single else list(prompt)
        if not texts:
            raise ValueError("generate needs at least one prompt")
        height, width = self._size(height, width)
        grid = self.model.vae.latent_shape(frames, height, width)
        conds = [self.prompt_segments(p) for p in texts]
        negatives = [self.prompt_segments(negative_prompt)] * len(texts)
        seeds = [seed + i for i in range(len(texts))] if seeds is None else list(seeds)
        if len(seeds) != len(texts):
            raise ValueError(f"got {len(texts)} prompts but {len(seeds)} seeds")
        latents = sample_latents(
            self.model, conds, negatives, grid, steps, cfg_scale, shift, seeds, sampler, progress,
            on_step=on_step,
        )  # fmt: skip
        videos = self._decode(latents)
        images = [v[0] for v in videos] if frames == 1 else videos
        return images[0] if single else images

    def generate_video(
        self,
        prompt: str,
        frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        **kwargs,
    ) -> list[Image.Image]:
        """Text-to-video: 1 + 4k frames."""
        frames = self.cfg.video_frames if frames is None else frames
        if frames < 1 or (frames - 1) % self.cfg.vae.scale_factor_temporal:
            raise ValueError(f"videos need 1 + {self.cfg.vae.scale_factor_temporal}k frames, got {frames}")
        return self.generate(prompt, height, width, frames=frames, **kwargs)

    @torch.no_grad()
    def edit(
        self,
        image: Image.Image | str | Path | Sequence[Image.Image | str | Path],
        instruction: str | Sequence[str],
        steps: int = 50,
        text_cfg: float = 5.0,
        image_cfg: float = 1.5,
        seed: int = 0,
        shift: float | None = None,
        sampler: str = "euler",
        progress: bool = False,
        seeds: Sequence[int] | None = None,
        on_step: StepCallback | None = None,
    ) -> Image.Image | list[Image.Image]:
        """Edit an image by an instruction; the output has the (size-policy) size of the input.

        Lists of images and instructions (pairs, or one image with several instructions) edit in one
        batched call: edit i uses seeds[i], or seed + i. The images must resize to one size.
        """
        single = not isinstance(image, (list, tuple)) and isinstance(instruction, str)
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        instructions = [instruction] if isinstance(instruction, str) else list(instruction)
        if len(images) == 1 and len(instructions) > 1:
            images = images * len(instructions)
        if len(images) != len(instructions) or not images:
            raise ValueError(f"got {len(images)} images for {len(instructions)} instructions")
        sources = [self.image_visual(i) for i in images]
        sizes = {tuple(s.pixels.shape[-2:]) for s in sources}
        if len(sizes) > 1:
            raise ValueError(f"a batch of edits needs images of one size after resizing, got {sorted(sizes)}")
        seeds = [seed + i for i in range(len(images))] if seeds is None else list(seeds)
        if len(seeds) != len(images):
            raise ValueError(f"got {len(images)} edits but {len(seeds)} seeds")
        height, width = sizes.pop()
        grid = self.model.vae.latent_shape(1, height, width)

        def conv(*parts):
            return self.conversation([("user", list(parts))])

        full = [conv(src, text) for src, text in zip(sources, instructions)]
        image_only = [conv(src, "") for src in sources]
        empty = [conv("") for _ in sources]
        latents = sample_edit(
            self.model,
            full,
            image_only,
            empty,
            grid,
            steps,
            text_cfg,
            image_cfg,
            shift,
            seeds,
            sampler,
            progress,
            on_step,
        )
        edited = [video[0] for video in self._decode(latents)]
        return edited[0] if single else edited
