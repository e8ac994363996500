"""Training checkpoints that survive kill -9 at any moment.

One file per save, `DIR/checkpoints/step_00000500.pt`, holding the model, optimiser, scheduler, EMA,
data position and every process's RNG states. It is written to `*.tmp`, flushed to disk, then renamed:
a rename is atomic, so a crash leaves either the previous checkpoints or the new one, never half a file.
Model and optimiser states are full (unsharded, keyed by parameter name), so a run may resume on a
different number of processes. Only the last `keep_last` files are kept.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, distribute_tensor

from tuna.train.optim import EMA
from tuna.train.parallelize import Dist

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
NAME = re.compile(r"step_(\d{8})\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:08d}.pt"


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(p for p in directory.glob("step_*.pt") if NAME.search(p.name))
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": np_state["state"]["pos"],
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(("MT19937", state["numpy"]["key"].numpy().astype(np.uint32), state["numpy"]["pos"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _full(t: torch.Tensor) -> torch.Tensor:
    return (t.full_tensor() if isinstance(t, DTensor) else t).detach().cpu()


def save_checkpoint(
    directory: Path, step: int, model: nn.Module, optimizer, scheduler, ema: EMA | None,
    data_state: dict[str, Any], dist_info: Dist, keep_last: int,
) -> Path | None:  # fmt: skip
    """Collective: every process calls it; the main process writes."""
    state = {
        "step": step,
        "model": get_model_state_dict(model, options=FULL),
        "optimizer": get_optimizer_state_dict(model, optimizer, options=FULL),
        "scheduler": scheduler.state_dict(),
        "ema": None if ema is None else {n: _full(t) for n, t in ema.shadow.items()},
        "data": data_state,
        "world": dist_info.world,
    }
    rngs = [None] * dist_info.world
    if dist_info.world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    state["rng"] = rngs
    if not dist_info.is_main:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, step)
    tmp = path.with_suffix(".pt.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in sorted(directory.glob("step_*.pt"))[:-keep_last]:
        old.unlink()
    return path


def load_checkpoint(
    path: Path, model: nn.Module, optimizer, scheduler, ema: EMA | None, dist_info: Dist
) -> tuple[int, dict[str, Any]]:
    """Restore everything `save_checkpoint` wrote; returns (step, data state)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    set_model_state_dict(model, state["model"], options=FULL)
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=FULL)
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None:
        if state["ema"] is None:
            raise ValueError(f"{path} has no EMA weights but this run keeps an EMA (ema_decay > 0)")
        with torch.no_grad():
            for name, shadow in ema.shadow.items():
                full = state["ema"][name].to(shadow.device)
                if isinstance(shadow, DTensor):
                    full = distribute_tensor(full, shadow.device_mesh, shadow.placements)
                shadow.copy_(full)
    if state["world"] == dist_info.world:
        set_rng_state(state["rng"][dist_info.rank])
    return state["step"], state["data"]


def clean_partial(directory: Path) -> None:
    """Remove `*.tmp` files a killed save left behind."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
