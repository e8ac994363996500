"""Line-oriented input files (jsonl, prompt lists) whose errors name the file and line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def parse_lines(path: Path, what: str, items: str, parse: Callable[[str, int, int], T]) -> list[T]:
    """`parse(text, line number, index)` of every non-blank line (stripped) of the file; `what` names the
    file in a missing-file error, `items` what an empty one lacks. An error raised for a line comes back
    as a ValueError that starts with `path:line:`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    out: list[T] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(parse(line.strip(), number, len(out)))
            except (ValueError, FileNotFoundError) as err:
                raise ValueError(f"{path}:{number}: {err}") from None
    if not out:
        raise ValueError(f"{path} holds no {items}")
    return out


def json_record(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg})") from None
