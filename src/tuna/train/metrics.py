"""Observability: a tqdm bar (loss, tokens/s, ETA), `DIR/metrics.jsonl` (one JSON object per step) and
TensorBoard scalars when tensorboard is installed. Only the main process writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the rows of steps ≤ last_step (a resumed run rewrites what came after its checkpoint)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if row.get("step", 0) <= last_step:
            keep.append(line)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(f"{line}\n" for line in keep))
    os.replace(tmp, path)


class MetricsLogger:
    def __init__(self, out: Path, enabled: bool, start: int, total: int, refresh_every: int = 1):
        self.enabled, self.refresh_every = enabled, max(1, refresh_every)
        self.file = self.bar = self.tb = None
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        truncate_metrics(out / "metrics.jsonl", start)
        self.file = (out / "metrics.jsonl").open("a")
        self.bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True, unit="step")
        try:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run logged after its last checkpoint.
            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1)
        except ImportError:  # tensorboard is optional at run time
            self.tb = None

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()  # a kill -9 loses at most the current line, which resume drops
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tb.add_scalar(f"train/{key}", value, row["step"])
        self.bar.update(1)
        if row["step"] % self.refresh_every == 0:
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}", refresh=False)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.bar.close()
            if self.tb is not None:
                self.tb.close()
