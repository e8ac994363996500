"""Training checkpoints that survive kill -9 at any moment, in two formats.

"full": one file per save, `DIR/checkpoints/step_00000500.pt`, holding the model, optimiser, scheduler,
EMA, data position and every process's RNG states, with full (unsharded) tensors keyed by parameter
name. The main process gathers and writes everything, which stops scaling somewhere past 1B parameters
(a 7B model's AdamW state is ~84 GB in fp32).

"sharded": one directory per save, `DIR/checkpoints/step_00000500/`, written with
torch.distributed.checkpoint: every process writes its own shards of the model, optimiser and EMA (on a
filesystem all processes share), and the main process adds `meta.pt` (step, scheduler, data position,
RNG states). DCP re-shards on load, so this too resumes on a different number of processes.

Either is written under a `*.tmp` name, flushed, then renamed: a rename is atomic, so a crash leaves the
previous checkpoints or the new one, never half of one. Only the last `keep_last` saves are kept.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
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
from tuna.train.parallelize import Dist, barrier

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
FORMATS = ("full", "sharded")
NAME = re.compile(r"^step_(\d{8})(\.pt)?$")  # a full checkpoint's file, or a sharded one's directory
META = "meta.pt"  # a sharded checkpoint's non-tensor state, written last


def checkpoint_path(directory: Path, step: int, sharded: bool = False) -> Path:
    return directory / (f"step_{step:08d}" if sharded else f"step_{step:08d}.pt")


def _saves(directory: Path) -> list[Path]:
    """Finished saves, oldest first (a sharded directory counts once its meta.pt is there)."""
    found = [
        p for p in directory.glob("step_*") if NAME.match(p.name) and (p.is_file() or (p / META).is_file())
    ]
    return sorted(found, key=lambda p: int(NAME.match(p.name)[1]))


def latest_checkpoint(directory: Path) -> Path | None:
    found = _saves(directory)
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
    data_state: dict[str, Any], dist_info: Dist, keep_last: int, sharded: bool = False,
) -> Path | None:  # fmt: skip
    """Collective: every process calls it; the main process writes (all of it, or meta and its shards)."""
    rngs = [None] * dist_info.world
    if dist_info.world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    meta = {"step": step, "scheduler": scheduler.state_dict(), "data": data_state, "world": dist_info.world,
            "rng": rngs}  # fmt: skip
    path = checkpoint_path(directory, step, sharded)
    tmp = path.with_name(path.name + ".tmp")
    if sharded:
        if dist_info.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier(dist_info)
        dcp.save(
            _sharded_state(model, optimizer, ema), checkpoint_id=tmp
        )  # returns once all shards are written
        if not dist_info.is_main:
            return None
        _write_synced(meta, tmp / META)
    else:
        state = {
            **meta,
            "model": get_model_state_dict(model, options=FULL),
            "optimizer": get_optimizer_state_dict(model, optimizer, options=FULL),
            "ema": None if ema is None else {n: _full(t) for n, t in ema.shadow.items()},
        }
        if not dist_info.is_main:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        _write_synced(state, tmp)
    os.replace(tmp, path)
    for old in _saves(directory)[:-keep_last]:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    return path


def _write_synced(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _sharded_state(model: nn.Module, optimizer, ema: EMA | None) -> dict[str, Any]:
    """This process's shards (DTensors under FSDP), which DCP saves, or loads into in place."""
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    if ema is not None:
        state["ema"] = dict(ema.shadow)
    return state


def load_checkpoint(
    path: Path, model: nn.Module, optimizer, scheduler, ema: EMA | None, dist_info: Dist
) -> tuple[int, dict[str, Any]]:
    """Restore everything `save_checkpoint` wrote (either format); returns (step, data state)."""
    if path.is_dir():
        state = torch.load(path / META, map_location="cpu", weights_only=True)
        saved = dcp.FileSystemReader(path).read_metadata().state_dict_metadata
        if ema is not None and not any(key.startswith("ema.") for key in saved):
            raise ValueError(f"{path} has no EMA weights but this run keeps an EMA (ema_decay > 0)")
        shards = _sharded_state(model, optimizer, ema)
        dcp.load(shards, checkpoint_id=path, no_dist=dist_info.world == 1)
        set_model_state_dict(model, shards["model"])
        set_optimizer_state_dict(model, optimizer, shards["optimizer"])
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        set_model_state_dict(model, state["model"], options=FULL)
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=FULL)
        if ema is not None:
            if state["ema"] is None:
                raise ValueError(f"{path} has no EMA weights but this run keeps an EMA (ema_decay > 0)")
            with torch.no_grad():
                for name, shadow in ema.shadow.items():
                    full = state["ema"][name].to(shadow.device)
                    if isinstance(shadow, DTensor):
                        full = distribute_tensor(full, shadow.device_mesh, shadow.placements)
                    shadow.copy_(full)
    scheduler.load_state_dict(state["scheduler"])
    if state["world"] == dist_info.world:
        set_rng_state(state["rng"][dist_info.rank])
    return state["step"], state["data"]


def clean_partial(directory: Path) -> None:
    """Remove the `*.tmp` files and directories a killed save left behind."""
    for tmp in directory.glob("*.tmp"):
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
