"""Parallelism applied from outside the model (torchtitan style): process group, activation
checkpointing, then FSDP2 `fully_shard` per block and at the root.

Model code stays single-device. Which modules are "blocks" is read from the model's structure:
encoder layers, decoder layers, and — because the flow head computes every block's AdaLN modulation
table before running the blocks — the attention and MLP of each flow-head block (the small modulation
layers stay with the flow head's root group). Methods called outside `forward` (`decoder.embed`,
`decoder.logits`, the VAE's `encode`) keep their parameters in the root group, which FSDP gathers
around the root's forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointImpl, checkpoint_wrapper
from torch.distributed.fsdp import fully_shard


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Read torchrun's environment; start NCCL on CUDA, gloo on CPU. A plain `python` run is world 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def barrier(dist_info: Dist) -> None:
    """Wait for every process (nothing to wait for in a single-process run)."""
    if dist_info.world > 1:
        dist.barrier()


def finish_distributed(dist_info: Dist) -> None:
    """Wait until every process is done (the main one writes the result last), then close the process
    group. A process that exits with its group still open aborts ("terminate called without an active
    exception" from gloo's threads) and takes the run down with it, its work finished or not."""
    if dist_info.world > 1 and dist.is_initialized():
        barrier(dist_info)
        dist.destroy_process_group()


def blocks_of(model: nn.Module) -> list[tuple[nn.ModuleList, int]]:
    """(list, index) of each repeated block whose forward is called on its own: AC/FSDP units."""
    found = []
    for path in ("encoder.layers", "decoder.layers", "flow_head.blocks"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            found += [(module, i) for i in range(len(module))]
    return found


def parallelize(model: nn.Module, dist_info: Dist, activation_checkpointing: bool = False) -> nn.Module:
    """Wrap blocks for activation checkpointing, then (world > 1) shard blocks and root with FSDP2."""
    blocks = blocks_of(model)
    if activation_checkpointing:
        for module_list, i in blocks:
            module_list[i] = checkpoint_wrapper(module_list[i], checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    if dist_info.world == 1:
        return model
    mesh = torch.distributed.device_mesh.init_device_mesh(dist_info.device.type, (dist_info.world,))
    # The encoder runs once per visual shape in a micro-batch (an image group, a video group, …), so two
    # ranks can call it a different number of times; per-block FSDP units there would issue mismatched
    # all-gathers. Its blocks stay in the root unit, gathered once per forward; only the decoder and flow
    # head (called once per micro-batch) are sharded block by block.
    encoder_layers = getattr(getattr(model, "encoder", None), "layers", None)
    for module_list, i in blocks:
        if module_list is not encoder_layers:
            fully_shard(module_list[i], mesh=mesh)
    # A frozen VAE is used only under no_grad through `encode`, never through a forward FSDP could hook:
    # keep it replicated (it is small next to the decoder and flow head).
    vae = getattr(model, "vae", None)
    frozen = {p for p in vae.parameters() if not p.requires_grad} if vae is not None else set()
    fully_shard(model, mesh=mesh, ignored_params=frozen or None)
    return model


def all_reduce_sum(values: list[float], dist_info: Dist) -> list[float]:
    """Sum floats over processes (identity when alone)."""
    if dist_info.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=dist_info.device)
    dist.all_reduce(t)
    return t.tolist()
