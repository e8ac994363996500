"""The attention mask of Tuna's mixed text / visual sequences: one rule, a dense reference, fast paths.

The rule (query q may attend key k):

    sample_ids[q] == sample_ids[k]  and  (k <= q  or  block_ids[q] == block_ids[k] != 0)

Text is causal; each visual block (its timestep token included) is bidirectional within itself and
causal towards everything before it; nothing sees a later block; packed samples never see each other.
Padding (sample id -1) only sees padding, causally, so every query row keeps at least itself and
softmax never meets an all-masked row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

PAD_SAMPLE = -1  # sample id of padding tokens
TEXT_BLOCK = 0  # block id of text tokens


@dataclass
class TokenLayout:
    """Which packed sample and which visual block every token belongs to."""

    sample_ids: Tensor  # (B, L) long; PAD_SAMPLE for padding
    block_ids: Tensor  # (B, L) long; TEXT_BLOCK for text, k > 0 for every token of visual block k

    def __post_init__(self) -> None:
        if self.sample_ids.shape != self.block_ids.shape or self.sample_ids.dim() != 2:
            raise ValueError(
                f"sample_ids {tuple(self.sample_ids.shape)} and block_ids {tuple(self.block_ids.shape)} "
                "must both be (B, L)"
            )

    @classmethod
    def text(cls, batch: int, length: int, device: torch.device | str | None = None) -> TokenLayout:
        """One text-only sample per row, no padding."""
        zeros = torch.zeros(batch, length, dtype=torch.long, device=device)
        return cls(sample_ids=zeros, block_ids=zeros.clone())

    @property
    def length(self) -> int:
        return self.sample_ids.shape[1]


def may_attend(
    sample_q: Tensor, sample_k: Tensor, block_q: Tensor, block_k: Tensor, q: Tensor, k: Tensor
) -> Tensor:
    """The rule, elementwise over broadcastable ids and positions (also traced by flex's mask_mod)."""
    same_block = (block_q == block_k) & (block_q != TEXT_BLOCK)
    return (sample_q == sample_k) & ((k <= q) | same_block)


def dense_mask(layout: TokenLayout, q_start: int = 0) -> Tensor:
    """The reference mask, True = may attend: (B, L - q_start, L) bool (queries q_start.., all keys)."""
    length = layout.length
    q = torch.arange(q_start, length, device=layout.sample_ids.device)[:, None]  # (Lq, 1)
    k = torch.arange(length, device=layout.sample_ids.device)[None, :]  # (1, Lk)
    s, b = layout.sample_ids, layout.block_ids
    return may_attend(
        s[:, q_start:, None], s[:, None, :], b[:, q_start:, None], b[:, None, :], q, k
    )  # (B, Lq, Lk)


@dataclass(frozen=True)
class AttentionMask:
    """What the decoder's attention consumes: one of causal / dense boolean (SDPA) / flex BlockMask."""

    kind: str  # "causal" | "sdpa" | "flex"
    dense: Tensor | None = None  # (B, 1, Lq, Lk) bool, for kind "sdpa"
    block_mask: BlockMask | None = None  # for kind "flex"

    @classmethod
    def causal(cls) -> AttentionMask:
        """Pure text, no padding, no cache offset (Lq == Lk): SDPA's built-in causal mask."""
        return cls(kind="causal")


def build_attention_mask(
    layout: TokenLayout, backend: str = "sdpa", q_start: int = 0, *, block_size: int = 128
) -> AttentionMask:
    """The rule for `layout`, queries q_start.. against all keys, in the form `backend` runs on.

    block_size only matters for "flex" (the BlockMask tile; 128 is flex's default and the GPU kernel's).
    """
    if not 0 <= q_start < layout.length:
        raise ValueError(f"q_start {q_start} must be in [0, {layout.length})")
    if backend == "sdpa":
        return AttentionMask(kind="sdpa", dense=dense_mask(layout, q_start)[:, None])
    if backend == "flex":
        return AttentionMask(kind="flex", block_mask=_flex_block_mask(layout, q_start, block_size))
    raise ValueError(f"unknown attention backend {backend!r}; choose 'sdpa' or 'flex'")


def _flex_block_mask(layout: TokenLayout, q_start: int, block_size: int) -> BlockMask:
    s, b = layout.sample_ids, layout.block_ids

    def mask_mod(batch: Tensor, head: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        q = q_idx + q_start  # flex numbers queries from 0; the layout numbers them from q_start
        return may_attend(s[batch, q], s[batch, kv_idx], b[batch, q], b[batch, kv_idx], q, kv_idx)

    batch, length = s.shape
    return create_block_mask(
        mask_mod, batch, None, length - q_start, length, device=s.device, BLOCK_SIZE=block_size
    )


_compiled_flex: Any = None


def _flex(q: Tensor, k: Tensor, v: Tensor, block_mask: BlockMask) -> Tensor:
    # Eager flex materialises the full score matrix; only the compiled kernel is fast and memory-lean.
    # torch.compile is kept off CPU, where the eager path serves tests (forward only: no CPU backward).
    global _compiled_flex
    fn = flex_attention
    if q.is_cuda:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention)
        fn = _compiled_flex
    return fn(q, k, v, block_mask=block_mask, enable_gqa=k.shape[1] != q.shape[1])


def attention(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask) -> Tensor:
    """Masked softmax attention with grouped-query heads.

    q: (B, Hq, Lq, D); k, v: (B, Hkv, Lk, D), Hq a multiple of Hkv. Returns (B, Hq, Lq, D).
    """
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"query heads {q.shape[1]} must be a multiple of key/value heads {k.shape[1]}")
    gqa = k.shape[1] != q.shape[1]
    if mask.kind == "causal":
        if q.shape[2] != k.shape[2]:
            raise ValueError(
                f"AttentionMask.causal() needs as many queries as keys, got {q.shape[2]} vs {k.shape[2]}; "
                "use build_attention_mask(layout, q_start=...) with a cache"
            )
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    if mask.kind == "sdpa":
        # Repeat KV heads (head h reads KV head h // group, as Qwen2) rather than enable_gqa: the GPU
        # kernel that accepts a dense mask (memory-efficient) may not take enable_gqa and would fall
        # back to the math kernel, which materialises every score.
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, Hq, Lk, D)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense)
    if mask.kind == "flex":
        return _flex(q, k, v, mask.block_mask)
    raise ValueError(f"unknown AttentionMask kind {mask.kind!r}")
