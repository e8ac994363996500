"""Images for public text-to-image benchmarks, written in the layout their own scorers read.

- **GenEval** (github.com/djghosh13/geneval): one folder per line of `evaluation_metadata.jsonl`,
  `OUT/00000/metadata.jsonl` (that line, verbatim), `OUT/00000/samples/0000.png …` and a `grid.png`;
  scored by its `evaluation/evaluate_images.py` (mmdet's Mask2Former) and `summary_scores.py`.
- **DPG-Bench** (ELLA's `dpg_bench`): for each prompt file `ID.txt`, one `OUT/ID.png` holding the samples
  in a 2 × 2 grid of `size`-pixel tiles (top left, top right, bottom left, bottom right; one sample: the
  image alone); scored by its `compute_dpg_bench.py --resolution SIZE --pic-num N` (an mPLUG VQA model).

Neither scorer runs here (their detector and VQA models are downloads); these functions write what they
read. Image k of prompt i is drawn with seed `seed + i·n + k`, so any subset can be regenerated alone and
a run that was stopped continues: finished prompts are skipped, and every file is written under a
temporary name and renamed, so a file that exists is complete.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from tuna.bench.lines import json_record, parse_lines

Generate = Callable[[list[str], list[int]], list[Image.Image]]  # (prompts, seeds) → images


@dataclass(frozen=True)
class Prompt:
    key: str  # GenEval: the folder ("00042"); DPG-Bench: the prompt file's stem
    text: str
    metadata: str | None = None  # GenEval: the metadata line, verbatim


def read_geneval_metadata(path: Path) -> list[Prompt]:
    """The prompts of a GenEval `evaluation_metadata.jsonl` (one JSON object with a "prompt" per line)."""

    def parse(line: str, number: int, index: int) -> Prompt:
        record = json_record(line)
        text = record.get("prompt") if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError('expected a JSON object with a non-empty "prompt" string')
        return Prompt(f"{index:05d}", text, line)

    return parse_lines(path, "GenEval metadata file", "prompts", parse)


def read_dpg_prompts(directory: Path) -> list[Prompt]:
    """DPG-Bench's `prompts/ID.txt` files, in the order of their ids (numerically where they are numbers)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no DPG-Bench prompt directory at {directory}")
    files = sorted(directory.glob("*.txt"), key=_id_order)
    if not files:
        raise ValueError(f"{directory} holds no prompt files (ID.txt)")
    prompts = []
    for file in files:
        text = file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{file} is empty: expected the prompt's text")
        prompts.append(Prompt(file.stem, text))
    return prompts


def _id_order(path: Path) -> tuple[bool, int, str]:
    """Numeric ids in numeric order, then any others by name."""
    number = path.stem.isdigit()
    return (not number, int(path.stem) if number else 0, path.stem)


def image_seed(seed: int, index: int, k: int, n: int) -> int:
    """The seed of image k of prompt `index` when every prompt gets n images."""
    return seed + index * n + k


def grid(images: Sequence[Image.Image], columns: int = 2) -> Image.Image:
    """Images of one size tiled row by row, `columns` to a row; unused tiles stay black."""
    width, height = images[0].size
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (width * min(columns, len(images)), height * rows))
    for k, image in enumerate(images):
        canvas.paste(image, ((k % columns) * width, (k // columns) * height))
    return canvas


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, with its suffix, to write the file to; renamed to `path` when the
    block ends without an error, so a file that exists is complete. The temporary name is short and
    unique: a name near the file system's limit (VBench names videos by their prompt) still fits."""
    partial = path.with_name(f".partial-{uuid.uuid4().hex[:12]}{path.suffix}")
    yield partial
    os.replace(partial, path)


def save_png(image: Image.Image, path: Path) -> None:
    with written_atomically(path) as partial:
        image.save(partial, format="PNG")


def _in_batches(
    generate: Callable[[list[str], list[int]], list[Any]],
    todo: list[tuple[int, Prompt]],
    n: int,
    seed: int,
    batch_size: int,
    progress: bool,
) -> Iterator[tuple[Prompt, list[Any]]]:
    """Every output of the prompts `todo`, generated `batch_size` at a time; yields a prompt once complete."""
    jobs = [(i, prompt, k) for i, prompt in todo for k in range(n)]
    done: dict[int, list[Any]] = {}
    starts = range(0, len(jobs), batch_size)
    for start in tqdm(starts, desc="batches", unit="batch", disable=not progress):
        chunk = jobs[start : start + batch_size]
        outputs = generate([p.text for _, p, _ in chunk], [image_seed(seed, i, k, n) for i, _, k in chunk])
        for (i, prompt, _), output in zip(chunk, outputs):  # a prompt's outputs come in k order
            done.setdefault(i, []).append(output)
            if len(done[i]) == n:
                yield prompt, done.pop(i)


def write_prompts(
    generate: Callable[[list[str], list[int]], list[Any]],
    prompts: list[Prompt],
    n: int,
    seed: int,
    batch_size: int,
    progress: bool,
    complete: Callable[[Prompt], bool],
    save: Callable[[Prompt, list[Any]], None],
) -> tuple[int, int]:
    """n outputs (images, videos) for every prompt not yet `complete`, drawn `batch_size` at a time across
    prompts and handed to `save(prompt, outputs)` once a prompt has all n; returns (prompts written now,
    prompts already complete)."""
    check_counts(n, batch_size)
    todo = [(i, p) for i, p in enumerate(prompts) if not complete(p)]
    for prompt, outputs in _in_batches(generate, todo, n, seed, batch_size, progress):
        save(prompt, outputs)
    return len(todo), len(prompts) - len(todo)


def write_geneval(
    generate: Generate,
    prompts: list[Prompt],
    out: Path,
    n: int = 4,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[int, int]:
    """GenEval's folders for `prompts`; returns (prompts written now, prompts already complete)."""
    out = Path(out)

    def complete(prompt: Prompt) -> bool:
        folder = out / prompt.key
        return (folder / "metadata.jsonl").is_file() and all(
            (folder / "samples" / f"{k:04d}.png").is_file() for k in range(n)
        )

    def save(prompt: Prompt, images: list[Image.Image]) -> None:
        folder = out / prompt.key
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        for k, image in enumerate(images):
            save_png(image, folder / "samples" / f"{k:04d}.png")
        save_png(grid(images), folder / "grid.png")
        with written_atomically(folder / "metadata.jsonl") as partial:  # last: marks the folder complete
            partial.write_text(prompt.metadata + "\n", encoding="utf-8")

    return write_prompts(generate, prompts, n, seed, batch_size, progress, complete, save)


def write_dpg(
    generate: Generate,
    prompts: list[Prompt],
    out: Path,
    n: int = 4,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[int, int]:
    """DPG-Bench's `ID.png` grids for `prompts`; returns (prompts written now, prompts already complete)."""
    if n > 4:
        raise ValueError(f"DPG-Bench reads at most 4 samples per prompt (a 2 × 2 grid), got n = {n}")
    out = Path(out)

    def save(prompt: Prompt, images: list[Image.Image]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_png(grid(images) if n > 1 else images[0], out / f"{prompt.key}.png")

    complete = lambda prompt: (out / f"{prompt.key}.png").is_file()  # noqa: E731
    return write_prompts(generate, prompts, n, seed, batch_size, progress, complete, save)


def check_counts(n: int, batch_size: int) -> None:
    if n < 1:
        raise ValueError(f"n (images per prompt) must be positive, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch size must be positive, got {batch_size}")
