"""Videos for VBench (github.com/Vchitect/VBench), named as its evaluation reads them.

VBench's prompt lists (`prompts/all_dimension.txt`, `prompts/prompts_per_dimension/*.txt`) hold one
prompt per line; it expects n videos per prompt (5) in one folder, named `PROMPT-K.mp4`, K = 0 … n − 1,
at 8 frames per second. Video k of prompt i is drawn with seed `seed + i·n + k` (recorded by construction,
as VBench asks: reproducible, not cherry-picked). Files are written under a temporary name and renamed,
so a stopped run continues with the videos it lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tuna.bench.external import Prompt, write_prompts, written_atomically
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
    out = Path(out)

    def save(prompt: Prompt, videos: list[list[Image.Image]]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for k, frames in enumerate(videos):
            with written_atomically(out / video_name(prompt, k)) as partial:
                write_video(frames, partial, fps=fps)

    complete = lambda prompt: all((out / video_name(prompt, k)).is_file() for k in range(n))  # noqa: E731
    return write_prompts(generate, prompts, n, seed, batch_size, progress, complete, save)
