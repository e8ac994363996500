"""Record sources with random access: a jsonl file, a directory of webdataset tar shards.

Random access by index (no iterator state) is what makes resume exact: the data position is just a
counter per source. Indexing reads only line offsets / tar headers, never the media.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from tuna.data.formats import BadRecord, Formatter, to_segments
from tuna.sequence import Segment


class JsonlSource:
    """One record per non-blank line; file names are relative to the jsonl file's directory."""

    def __init__(self, path: str | Path, kind: str):
        self.path, self.kind = Path(path), kind
        if not self.path.is_file():
            raise FileNotFoundError(f"no jsonl file at {self.path}")
        self.root = self.path.parent
        self.offsets: list[tuple[int, int]] = []  # (byte offset, 1-based line number)
        with self.path.open("rb") as f:
            offset = 0
            for number, line in enumerate(f, start=1):
                if line.strip():
                    self.offsets.append((offset, number))
                offset += len(line)
        if not self.offsets:
            raise ValueError(f"{self.path} has no records")

    def __len__(self) -> int:
        return len(self.offsets)

    def get(self, index: int, fmt: Formatter) -> list[Segment]:
        offset, number = self.offsets[index]
        where = f"{self.path}:{number}"
        with self.path.open("rb") as f:
            f.seek(offset)
            line = f.readline()
        try:
            return to_segments(
                self.kind, json.loads(line), lambda name: self.root / name, fmt, f"{self.path.name}:{number}"
            )
        except (ValueError, FileNotFoundError) as err:  # json.JSONDecodeError is a ValueError
            raise BadRecord(where, str(err)) from err


class TarShardSource:
    """A directory of webdataset shards (`*.tar`). A sample is the members sharing a key (the name up to
    its first dot); `KEY.json` holds the record in the jsonl format, and a file name in it is a member of
    the same sample, given in full (`KEY.jpg`) or by extension (`jpg`).
    """

    def __init__(self, directory: str | Path, kind: str):
        self.directory, self.kind = Path(directory), kind
        shards = sorted(self.directory.glob("*.tar"))
        if not shards:
            raise FileNotFoundError(f"no webdataset shards (*.tar) in {self.directory}")
        self.samples: list[tuple[Path, str, dict[str, tuple[int, int]]]] = []
        for shard in shards:
            groups: dict[str, dict[str, tuple[int, int]]] = {}
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    if member.isfile():
                        folder, _, base = member.name.rpartition("/")
                        stem, _, ext = base.partition(".")
                        key = f"{folder}/{stem}" if folder else stem
                        groups.setdefault(key, {})[ext] = (member.offset_data, member.size)
            self.samples += [(shard, key, files) for key, files in groups.items()]
        if not self.samples:
            raise ValueError(f"the shards in {self.directory} hold no samples")

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, index: int, fmt: Formatter) -> list[Segment]:
        shard, key, files = self.samples[index]
        where = f"{shard}:{key}"

        def read(ext: str) -> bytes:
            if ext not in files:
                raise FileNotFoundError(f"sample has no member {key}.{ext}")
            offset, size = files[ext]
            with shard.open("rb") as f:
                f.seek(offset)
                return f.read(size)

        def open_file(name: str) -> bytes:
            base, stem = Path(name).name, Path(key).name
            return read(base.partition(".")[2] if base.startswith(f"{stem}.") else base)

        try:
            record: Any = json.loads(read("json"))
            return to_segments(self.kind, record, open_file, fmt, f"{shard.name}:{key}")
        except (ValueError, FileNotFoundError) as err:
            raise BadRecord(where, str(err)) from err


def open_source(path: str | Path, kind: str) -> JsonlSource | TarShardSource:
    """A jsonl file, or a directory of webdataset shards, wherever a path is accepted."""
    path = Path(path)
    if path.is_dir():
        return TarShardSource(path, kind)
    return JsonlSource(path, kind)
