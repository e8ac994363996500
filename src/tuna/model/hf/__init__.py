"""Adapters from public checkpoints (Hugging Face / diffusers directories) to Tuna's modules.

Every adapter reads the component's own config file for its dimensions, and loads every tensor whose
shape fits, reporting what was loaded, what stayed freshly initialised and what did not fit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn


@dataclass
class LoadReport:
    """What loading a checkpoint into a module did, key by key (module-side names)."""

    loaded: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)  # in the module, not (usable) in the checkpoint
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list
    )  # key, ckpt, model
    unused: list[str] = field(default_factory=list)  # in the checkpoint, not in the module

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors, freshly initialised {len(self.initialised)}"]
        lines += [f"  initialised: {k}" for k in self.initialised]
        lines += [
            f"  shape mismatch: {k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched
        ]
        if self.unused:
            lines.append(f"  unused checkpoint tensors: {len(self.unused)}")
        return "\n".join(lines)


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a config file at {path}, found none")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def safetensors_files(directory: Path) -> list[Path]:
    """The weight files of a Hugging Face / diffusers directory (single file or sharded)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"expected a checkpoint directory at {directory}, found none")
    index = sorted(directory.glob("*.safetensors.index.json"))
    if index:
        shards = sorted(set(read_json(index[0])["weight_map"].values()))
        return [directory / s for s in shards]
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {directory} (pickled .bin files are not read)")
    return files


def read_state_dict(files: Iterable[Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    state[key] = f.get_tensor(key)
        except Exception as err:  # safetensors raises its own error types for truncated or corrupt files
            raise ValueError(f"cannot read safetensors file {path}: {err}") from err
    return state


def load_matching(module: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy every tensor of `state` (already renamed to module keys) whose shape fits into `module`."""
    report = LoadReport()
    own = module.state_dict()
    fitting = {}
    for key, tensor in state.items():
        if key not in own:
            report.unused.append(key)
        elif tuple(tensor.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(tensor.shape), tuple(own[key].shape)))
        else:
            fitting[key] = tensor.to(own[key].dtype)
            report.loaded.append(key)
    module.load_state_dict(fitting, strict=False, assign=False)
    report.initialised = [k for k in own if k not in fitting]
    return report
