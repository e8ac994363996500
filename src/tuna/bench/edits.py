"""Edit a jsonl of (image, instruction) requests into the files an editing benchmark's scorer reads.

Editing benchmarks (GEdit-Bench, ImgEdit, …) each expect their own folder layout; rather than hard-code
each, a request names where its result goes: one JSON object per line,
`{"raw_image": "in/0001.png", "instruction": "make the sky red", "output": "fullset/color/en/0001.png"}`
(`raw_image` and `instruction` as in the `edit` training format; `image` and `prompt` are accepted too;
`output`, relative to `--out`, defaults to `00000.png`, `00001.png`, … by line). Input paths are relative
to the jsonl file. Request i is edited with seed `seed + i`; requests whose sources have one size share a
batched call. Results are written under a temporary name and renamed, so a stopped run continues with
the results it lacks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm.auto import tqdm

from tuna.bench.external import check_counts, save_png
from tuna.bench.lines import json_record, parse_lines
from tuna.data.formats import open_image

EditFn = Callable[[list[Image.Image], list[str], list[int]], list[Image.Image]]  # (images, texts, seeds)


@dataclass(frozen=True)
class EditRequest:
    index: int
    line: int
    image: Path
    instruction: str
    output: str  # relative to the output directory


def read_edit_requests(path: Path) -> list[EditRequest]:
    root = Path(path).parent
    requests = parse_lines(
        path,
        "edit requests file",
        "edit requests",
        lambda line, number, i: _request(json_record(line), root, i, number),
    )
    first: dict[str, int] = {}
    for request in requests:
        if request.output in first:
            raise ValueError(
                f"{path}:{request.line}: output {request.output!r} is also line {first[request.output]}'s"
            )
        first[request.output] = request.line
    return requests


def _request(record, root: Path, index: int, number: int) -> EditRequest:
    if not isinstance(record, dict):
        raise ValueError(f"a request must be a JSON object, got {type(record).__name__}")
    image = record.get("raw_image", record.get("image"))
    instruction = record.get("instruction", record.get("prompt"))
    if not isinstance(image, str) or not image:
        raise ValueError('expected "raw_image" (or "image"): the file to edit')
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError('expected a non-empty "instruction" (or "prompt")')
    if not (root / image).is_file():
        raise FileNotFoundError(f"no image file at {root / image}")
    output = record.get("output", f"{index:05d}.png")
    pure = PurePosixPath(output) if isinstance(output, str) else None
    if pure is None or pure.is_absolute() or ".." in pure.parts or pure.suffix.lower() != ".png":
        raise ValueError(f'"output" must be a relative .png path inside the output directory, got {output!r}')
    return EditRequest(index, number, root / image, instruction.strip(), str(pure))


def write_edits(
    edit: EditFn,
    requests: list[EditRequest],
    out: Path,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[int, int]:
    """Each request's result at `out / output`; returns (edited now, already there)."""
    check_counts(1, batch_size)
    out = Path(out)
    todo = [r for r in requests if not (out / r.output).is_file()]
    by_size: dict[tuple[int, int], list[EditRequest]] = defaultdict(list)
    for request in todo:  # sizes from the headers; pixels are read batch by batch
        by_size[_size(request)].append(request)
    chunks = [
        group[i : i + batch_size] for group in by_size.values() for i in range(0, len(group), batch_size)
    ]
    for chunk in tqdm(chunks, desc="edits", unit="batch", disable=not progress):
        images = [_open(r) for r in chunk]
        results = edit(images, [r.instruction for r in chunk], [seed + r.index for r in chunk])
        for request, result in zip(chunk, results):
            target = out / request.output
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png(result, target)
    return len(todo), len(requests) - len(todo)


def _size(request: EditRequest) -> tuple[int, int]:
    try:
        with Image.open(request.image) as image:
            return image.size
    except OSError as err:
        raise ValueError(f"request at line {request.line}: unreadable image {request.image}: {err}") from None


def _open(request: EditRequest) -> Image.Image:
    try:
        return open_image(request.image)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"request at line {request.line}: {err}") from None
