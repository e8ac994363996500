"""Multimodal 3D rotary position embedding (Qwen2-VL's M-RoPE) as pure functions.

Every token carries three position ids (temporal, height, width). The head_dim/2 rotary frequencies
are split into three contiguous bands by `mrope_section`: band 0 rotates by the temporal id, band 1
by the height id, band 2 by the width id. Text tokens carry t = h = w, so on text this is exactly
Qwen2.5's 1D RoPE, whatever the split. Layout is "rotate half" (Qwen2 / Llama): the head vector's
first and second halves form the (real, imaginary) pairs, so cos/sin are the frequencies twice over.
"""

from __future__ import annotations

import torch
from torch import Tensor


def inverse_frequencies(head_dim: int, theta: float) -> Tensor:
    """theta^(-2i/head_dim) for i < head_dim/2, in fp32. # (head_dim/2,)"""
    # Same expression and dtype path as Qwen2's rotary embedding, so text positions match bit for bit.
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    return 1.0 / (theta**exponents)


def rope_cos_sin(
    position_ids: Tensor, head_dim: int, theta: float, mrope_section: tuple[int, int, int]
) -> tuple[Tensor, Tensor]:
    """cos/sin tables for `apply_rope`.

    position_ids: (3, B, L) long (temporal, height, width). Returns cos, sin: (B, L, head_dim) fp32.
    """
    if position_ids.dim() != 3 or position_ids.shape[0] != 3:
        raise ValueError(f"position_ids must be (3, B, L), got {tuple(position_ids.shape)}")
    if sum(mrope_section) != head_dim // 2:
        raise ValueError(f"mrope_section {tuple(mrope_section)} must sum to head_dim/2 = {head_dim // 2}")
    device = position_ids.device
    inv_freq = inverse_frequencies(head_dim, theta).to(device)  # (D/2,)
    # Which of the three id axes each frequency reads: [0]*s0 + [1]*s1 + [2]*s2.
    axis = torch.repeat_interleave(torch.arange(3, device=device), torch.tensor(mrope_section, device=device))
    positions = position_ids[axis].permute(1, 2, 0).to(torch.float32)  # (B, L, D/2)
    freqs = positions * inv_freq  # (B, L, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (B, L, D)
    return emb.cos(), emb.sin()


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) over the last dimension's two halves."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, L, head_dim) by cos/sin (B, L, head_dim); computed in x's dtype like Qwen2."""
    cos = cos.to(x.dtype).unsqueeze(1)  # (B, 1, L, D)
    sin = sin.to(x.dtype).unsqueeze(1)
    return x * cos + rotate_half(x) * sin


# --------------------------------------------------------------------------------------------------
# Position-id builders (one sample at a time; the sequence builder concatenates and batches them)
# --------------------------------------------------------------------------------------------------


def text_positions(start: int, n: int) -> Tensor:
    """(3, n) long: t = h = w = start .. start + n - 1."""
    return torch.arange(start, start + n, dtype=torch.long).expand(3, n).clone()


def visual_block_positions(start: int, frames: int, height: int, width: int) -> tuple[Tensor, int]:
    """Ids of one visual block: a timestep token, then frames*height*width tokens in (f, h, w) order.

    The timestep token gets (start, start, start); visual token (f, i, j) gets
    (start + 1 + f, start + 1 + i, start + 1 + j). Returns ((3, 1 + F*H*W) long, next_start) where
    next_start = start + 1 + max(F, H, W) is the first id after the block (Qwen2-VL style: the next
    text continues after the block's largest extent, not after its token count).
    """
    if min(frames, height, width) < 1:
        raise ValueError(f"a visual block needs frames, height, width >= 1, got {(frames, height, width)}")
    f, i, j = torch.meshgrid(
        torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij"
    )  # each (F, H, W)
    grid = torch.stack([f.reshape(-1), i.reshape(-1), j.reshape(-1)]) + (start + 1)  # (3, F*H*W)
    timestep = torch.full((3, 1), start, dtype=torch.long)
    next_start = start + 1 + max(frames, height, width)
    return torch.cat([timestep, grid], dim=1), next_start
