"""Shared by the training tests: run `python -m tuna.train` (optionally under torchrun) and read metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TERMS = ("loss", "text", "flow", "grad_norm", "lr")


def train_command(args: list[str], nproc: int = 1) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "tuna.train", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "tuna.train", *args]  # fmt: skip


def train_env(threads: int = 1) -> dict[str, str]:
    # Fixed thread counts: float reductions then run in the same order in every run being compared.
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


def run_train(
    args: list[str], nproc: int = 1, threads: int = 1, timeout: float = 300
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        train_command(args, nproc), env=train_env(threads), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
