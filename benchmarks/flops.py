"""Useful FLOPs of a Tuna step, counted on the actual batch (the MFU numerator).

    matmuls    2 · in · out per token for every nn.Linear that runs (decoder, encoder, connector,
               timestep MLPs, flow head; the LM head only on supervised positions), counted by hooks
    attention  4 · head_dim · heads per (query, key) pair the mask allows, per attention layer
               (QKᵀ and AV); masked-out pairs are not counted, so this is useful work only
    training   3 × forward (backward ≈ 2 × forward)

MFU = counted FLOPs / (step seconds × measured dense bf16 matmul peak of the same GPU).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from tuna.model.flow_tokens import flow_rows
from tuna.model.masks import dense_mask


@contextmanager
def count_linear_flops():
    """Count 2·in·out per row of every nn.Linear call inside the block; yields a one-item list."""
    total = [0]

    def hook(module: nn.Linear, inputs, output):
        rows = inputs[0].numel() // module.in_features
        total[0] += 2 * rows * module.in_features * module.out_features

    handle = nn.modules.module.register_module_forward_hook(
        lambda m, i, o: hook(m, i, o) if isinstance(m, nn.Linear) else None
    )
    try:
        yield total
    finally:
        handle.remove()


def attention_flops(model, batch) -> int:
    """Forward attention FLOPs of decoder + flow head (mask-aware) + encoder (full per frame). The flow
    head runs on the rows `flow_rows` gathers (the samples with a noisy block), so its pairs are theirs."""
    pairs = int(dense_mask(batch.layout).sum())
    cfg = model.cfg
    flops = 4 * pairs * cfg.decoder.hidden_size * cfg.decoder.num_layers
    if any(b.noisy for b in batch.blocks):
        head_pairs = int(dense_mask(flow_rows(batch.layout, batch.position_ids, batch.blocks).layout).sum())
        flops += 4 * head_pairs * cfg.flow_head.hidden_size * cfg.flow_head.num_layers
    for block in batch.blocks:
        f, h, w = block.grid
        flops += 4 * f * (h * w) ** 2 * cfg.encoder.hidden_size * cfg.encoder.feature_depth
    return flops


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 8192, iters: int = 20) -> float:
    """Dense matmul FLOP/s of this device and dtype (the MFU denominator)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    from benchmarks.timing import timed

    seconds = timed(lambda: a @ b, device, iters)
    return 2 * n**3 / seconds
