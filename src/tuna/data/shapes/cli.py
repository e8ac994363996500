"""`tuna data preview ...`: register with the lead's argparse main via `register(subparsers)`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tuna.data.shapes import palette
from tuna.data.shapes.preview import PREVIEW_TASKS, write_preview


def register(subparsers: Any) -> argparse.ArgumentParser:
    data = subparsers.add_parser("data", help="built-in datasets")
    actions = data.add_subparsers(dest="data", required=True)
    p = actions.add_parser(
        "preview", help="write an image grid (GIFs for video) and the texts of a shapes-world task"
    )
    p.add_argument("--task", choices=PREVIEW_TASKS, required=True)
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=palette.SPLITS, default="train")
    p.set_defaults(func=run_preview)
    return p


def run_preview(args: argparse.Namespace) -> int:
    for path in write_preview(args.task, args.n, args.out, args.seed, args.split):
        print(path)
    return 0
