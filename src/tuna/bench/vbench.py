"""Videos for VBench (github.com/Vchitect/VBench), named as its evaluation reads them.

VBench's prompt lists (`prompts/all_dimension.txt`, `prompts/prompts_per_dimension/*.txt`) hold one
prompt per line; it expects n videos per prompt (5) in one folder, named `PROMPT-K.mp4`, K = 0 … n − 1,
at 8 frames per second. Video k of prompt i is drawn with seed `seed + i·n + k` (recorded by construction,
as VBench asks: reproducible, not cherry-picked). Files are written under a temporary name and renamed,
so a stopped run continues with the videos it lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tuna.bench.external import Prompt, check_counts, in_batches
from tuna.bench.lines import parse_lines
from tuna.media import write_video

GenerateVideos = Callable[[list[str], list[int]], list[list[Image.Image]]]  # (prompts, seeds) → frames
MAX_NAME_BYTES = 255  # a file name's limit on common file systems


def read_vbench_prompts(path: Path) -> list[Prompt]:
    """One prompt per non-blank line; each must be usable as a file name, as VBench names videos by it."""

    def parse(text: str, number: int, index: int) -> Prompt:
        if "/" in text or "\0" in text:
            raise ValueError("a prompt with '/' cannot name a video file, as VBench needs")
        if len(f"{text}-0.mp4".encode()) > MAX_NAME_BYTES:
            raise ValueError(f"the prompt is too long to name a video file ({MAX_NAME_BYTES} bytes)")
        return Prompt(text, text)

    return parse_lines(path, "VBench prompt list", "prompts", parse)


def video_name(prompt: Prompt, k: int) -> str:
    return f"{prompt.text}-{k}.mp4"


def write_vbench(
    generate: GenerateVideos,
    prompts: list[Prompt],
    out: Path,
    n: int = 5,
    seed: int = 0,
    batch_size: int = 1,
    fps: int = 8,
    progress: bool = False,
) -> tuple[int, int]:
    """n videos per prompt in `out`; returns (prompts written now, prompts already complete)."""
    check_counts(n, batch_size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [
        (i, p) for i, p in enumerate(prompts) if not all((out / video_name(p, k)).is_file() for k in range(n))
    ]
    for _, prompt, videos in in_batches(generate, todo, n, seed, batch_size, progress):
        for k, frames in enumerate(videos):
            path = out / video_name(prompt, k)
            partial = write_video(frames, path.with_name(f".{k}.partial.mp4"), fps=fps)
            os.replace(partial, path)
    return len(todo), len(prompts) - len(todo)
