"""What the worker thread runs: one job type per endpoint, each calling the pipeline.

Jobs carry their own deadline and cancel flag; chat checks both between tokens so a client that left
or timed out stops costing model time. Image, edit and video jobs check the cancel flag after every
denoising step (a batch stops once every job in it is cancelled); their deadline is checked when they
are picked up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tuna.sequence import Segment, build_batch


class JobTimeout(Exception):
    """The job's deadline passed while it waited or ran."""


class JobCancelled(Exception):
    """The client went away; nobody reads the result."""


@dataclass
class Job:
    deadline: float  # time.monotonic() seconds
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    cleanup: list[Path] = field(default_factory=list)  # temporary files to delete when done
    images: int = 1  # how much of a batch the job takes

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled
        if time.monotonic() > self.deadline:
            raise JobTimeout

    def batch_key(self) -> tuple | None:
        """Jobs with equal non-None keys may run in one batched call (`run_batch`)."""
        return None

    @classmethod
    def run_batch(cls, pipe, jobs: Sequence[Job]) -> list[Any]:
        """One result per job, from one batched call; only used for jobs with a batch key."""
        raise NotImplementedError(f"{cls.__name__} has no batched form")


# ------------------------------------------------------------------ chat


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class StopFilter:
    """Cuts the text at the first stop string, holding back a tail that could start one."""

    def __init__(self, stops: Sequence[str] | None):
        self.stops = list(stops or [])
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.pending += piece
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending, self.stopped = self.pending[: min(hits)], "", True
            return out
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:k]):
                    hold = k
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class ChatJob(Job):
    messages: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    video_frames: int | None = None
    stops: list[str] | None = None
    emit: Callable[[str], None] | None = None  # streaming: called with each text delta

    def prepare(self, pipe) -> tuple[list[Segment], int]:
        """The conversation as segments (media decoded once) and its token count; a ValueError on bad
        input or when prompt + max_tokens exceed the model's context."""
        frames = pipe.cfg.video_frames if self.video_frames is None else self.video_frames
        segments = pipe.message_segments(self.messages, frames)
        prompt_tokens = int(build_batch([segments], pipe.cfg.tokens, pipe.cfg.vae).input_ids.shape[1])
        context = pipe.cfg.decoder.max_position_embeddings
        if prompt_tokens + self.max_tokens > context:
            raise ValueError(
                f"the model's context is {context} tokens: the messages take {prompt_tokens}"
                f" and max_tokens asks for {self.max_tokens} more"
            )
        return segments, prompt_tokens

    def batch_key(self) -> tuple | None:
        # Greedy answers without streaming do not depend on their neighbours: those batch together,
        # whatever their token limits and media. Streaming and sampled answers decode alone
        # (token-by-token callbacks, per-request RNG).
        if self.emit is not None or self.temperature != 0.0:
            return None
        return ("chat",)

    @classmethod
    def run_batch(cls, pipe, jobs: Sequence[ChatJob]) -> list[ChatResult]:
        prepared = [job.prepare(pipe) for job in jobs]
        answers = pipe.answer_batch(
            [segments for segments, _ in prepared],
            [job.max_tokens for job in jobs],
            on_token=until_all_cancelled(jobs),
        )
        results = []
        for job, (_, tokens), raw in zip(jobs, prepared, answers):
            stop = StopFilter(job.stops)
            text = stop.feed(raw) + stop.flush()  # nothing is held back once a stop was found
            results.append(job.result(pipe, tokens, raw, text, stop.stopped))
        return results

    def result(self, pipe, prompt_tokens: int, raw: str, text: str, stopped: bool) -> ChatResult:
        # The pipeline yields text, not ids: re-encoding is the token count, exact for valid UTF-8. A
        # byte-level tokenizer re-encodes each U+FFFD (an invalid byte) as 3 tokens, so never report
        # more than the decode could have made.
        generated = min(len(pipe.encode(raw)), self.max_tokens)
        finish = "length" if not stopped and generated >= self.max_tokens else "stop"
        return ChatResult(text, prompt_tokens, min(len(pipe.encode(text)), generated), finish)

    def run(self, pipe) -> ChatResult:
        segments, prompt_tokens = self.prepare(pipe)
        stream = pipe.answer_stream(segments, self.max_tokens, self.temperature, self.top_p, self.seed)
        stop, raw, text = StopFilter(self.stops), "", ""
        for piece in stream:
            self.check()
            raw += piece
            out = stop.feed(piece)
            text += out
            if out and self.emit:
                self.emit(out)
            if stop.stopped:
                break
        tail = stop.flush()
        text += tail
        if tail and self.emit:
            self.emit(tail)
        return self.result(pipe, prompt_tokens, raw, text, stop.stopped)


# ------------------------------------------------------------------ images


@dataclass
class GenerateJob(Job):
    prompt: str = ""
    seed: int = 0
    height: int = 0
    width: int = 0
    steps: int = 50
    guidance: float = 7.5
    shift: float | None = None
    sampler: str = "euler"
    negative_prompt: str = ""

    def batch_key(self) -> tuple:
        return (
            "generate",
            self.height,
            self.width,
            self.steps,
            self.guidance,
            self.shift,
            self.sampler,
            self.negative_prompt,
        )

    @classmethod
    def run_batch(cls, pipe, jobs: Sequence[GenerateJob]) -> list[list[Image.Image]]:
        """Every image of every job in one batched T2I call: image i of a job uses its seed + i."""
        first = jobs[0]
        images = pipe.generate(
            [job.prompt for job in jobs for _ in range(job.images)], first.height, first.width, first.steps,
            first.guidance, first.shift, first.sampler, negative_prompt=first.negative_prompt,
            seeds=per_image_seeds(jobs), on_step=until_all_cancelled(jobs),
        )  # fmt: skip
        return split_by_job(images, jobs)


def until_all_cancelled(jobs: Sequence[Job]) -> Callable[..., None]:
    """A step callback (denoising or decoding) that stops a batched call once no job in it wants its
    result."""

    def on_step(*_: int) -> None:
        if all(job.cancelled.is_set() for job in jobs):
            raise JobCancelled

    return on_step


def per_image_seeds(jobs: Sequence[GenerateJob | EditJob]) -> list[int]:
    return [job.seed + i for job in jobs for i in range(job.images)]


def split_by_job(rows: Sequence[Any], jobs: Sequence[Job]) -> list[list[Any]]:
    """A batched call's rows, back to the jobs they came from (`job.images` rows each, in order)."""
    out, start = [], 0
    for job in jobs:
        out.append(list(rows[start : start + job.images]))
        start += job.images
    return out


@dataclass
class EditJob(Job):
    image: Image.Image | None = None
    prompt: str = ""
    seed: int = 0
    steps: int = 50
    text_guidance: float = 5.0
    image_guidance: float = 1.5
    shift: float | None = None
    sampler: str = "euler"
    size: tuple[int, int] | None = None  # (width, height) to resize the output to
    work_size: tuple[int, int] = (0, 0)  # (width, height) the source is edited at: batches need one

    def batch_key(self) -> tuple:
        return ("edit", self.work_size, self.steps, self.text_guidance, self.image_guidance, self.shift,
                self.sampler)  # fmt: skip

    @classmethod
    def run_batch(cls, pipe, jobs: Sequence[EditJob]) -> list[list[Image.Image]]:
        """Every image of every job in one batched edit: image i of a job uses its seed + i."""
        first = jobs[0]
        edited = pipe.edit(
            [job.image for job in jobs for _ in range(job.images)],
            [job.prompt for job in jobs for _ in range(job.images)],
            steps=first.steps, text_cfg=first.text_guidance, image_cfg=first.image_guidance,
            shift=first.shift, sampler=first.sampler, seeds=per_image_seeds(jobs),
            on_step=until_all_cancelled(jobs),
        )  # fmt: skip
        return [[im.resize(job.size, Image.Resampling.BICUBIC) if job.size and im.size != job.size else im
                 for im in images] for job, images in zip(jobs, split_by_job(edited, jobs))]  # fmt: skip


# ------------------------------------------------------------------ videos


@dataclass
class VideoJob(GenerateJob):
    """Text-to-video: a generation job with a frame count, written to an MP4; it runs alone."""

    frames: int = 17
    fps: int = 8
    video_path: Path | None = None  # where the MP4 goes (kept after the job: it is the result)
    thumbnail_path: Path | None = None  # the first frame, as lossless WebP
    progress: int = 0  # percent: denoising steps done (up to 99), 100 once the MP4 is written

    def batch_key(self) -> None:
        return None

    def run(self, pipe) -> Path:
        from tuna.media import write_video

        frames = pipe.generate_video(
            self.prompt, self.frames, self.height, self.width, steps=self.steps, cfg_scale=self.guidance,
            shift=self.shift, sampler=self.sampler, seed=self.seed, negative_prompt=self.negative_prompt,
            on_step=self.step_done,
        )  # fmt: skip
        frames[0].save(self.thumbnail_path, format="WEBP", lossless=True)
        path = write_video(frames, self.video_path, fps=self.fps)
        self.progress = 100
        return path

    def step_done(self, done: int, total: int) -> None:
        if self.cancelled.is_set():  # deleted while generating: stop spending model time on it
            raise JobCancelled
        self.progress = 99 * done // total  # decoding and encoding the MP4 remain
