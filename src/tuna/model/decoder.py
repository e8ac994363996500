"""The Qwen2.5 decoder, with 3D-RoPE and Tuna's layout mask.

Parameter names are transformers' `Qwen2ForCausalLM` names without the `model.` prefix, so a Qwen2.5
checkpoint maps 1:1 (see tuna.model.hf.qwen2). RMSNorm, Attention and SwiGLU are also the flow
head's building blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tuna.config import DecoderConfig
from tuna.model.masks import AttentionMask, attention
from tuna.model.rope import apply_rope, rope_cos_sin


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        # Normalise in fp32 and cast back before the gain, exactly as Qwen2 does (bf16 parity).
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class SwiGLU(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LayerKVCache:
    """One layer's view of a `KVCache`."""

    def __init__(self, cache: KVCache, index: int):
        self.cache, self.index = cache, index

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append k, v (B, Hkv, L, D); return all keys/values (B, Hkv, S + L, D).

        A frozen cache returns the same concatenation but keeps only what it already had.
        """
        old_k, old_v = self.cache.keys[self.index], self.cache.values[self.index]
        if old_k is not None:
            k, v = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)
        if not self.cache.frozen:
            self.cache.keys[self.index], self.cache.values[self.index] = k, v
        return k, v


class KVCache:
    """Per-layer keys/values (B, Hkv, S, D) of everything already run through the decoder.

    `frozen = True` lets a constant prefix (the prompt) serve many forwards (denoising steps) without
    growing. `crop` mutates in place; `repeat_rows` / `select_rows` return new caches and leave this
    one reusable.
    """

    def __init__(self, num_layers: int, frozen: bool = False):
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers
        self.frozen = frozen

    def layer(self, index: int) -> LayerKVCache:
        return LayerKVCache(self, index)

    @property
    def length(self) -> int:
        """Cached positions S (read between forwards: mid-forward, early layers are already longer)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def crop(self, n: int) -> None:
        """Keep the first n positions."""
        self.keys = [None if k is None else k[:, :, :n] for k in self.keys]
        self.values = [None if v is None else v[:, :, :n] for v in self.values]

    def _map(self, fn) -> KVCache:
        out = KVCache(len(self.keys), frozen=self.frozen)
        out.keys = [None if k is None else fn(k) for k in self.keys]
        out.values = [None if v is None else fn(v) for v in self.values]
        return out

    def repeat_rows(self, n: int) -> KVCache:
        """Tile the batch n times: row r of the result is row r % B (e.g. [cond; uncond] for CFG)."""
        return self._map(lambda t: t.repeat(n, 1, 1, 1))

    def select_rows(self, idx: Tensor | list[int]) -> KVCache:
        """Keep the batch rows idx, in that order."""
        return self._map(lambda t: t[torch.as_tensor(idx, device=t.device)])


class Attention(nn.Module):
    def __init__(
        self, hidden_size: int, num_heads: int, num_kv_heads: int, head_dim: int, qkv_bias: bool = True
    ):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=False)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: LayerKVCache | None = None
    ) -> Tensor:
        """x (B, L, D), cos/sin (B, L, head_dim) of these L tokens -> (B, L, D)."""
        batch, length, _ = x.shape
        q = (
            self.q_proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        )  # (B, Hq, L, Dh)
        k = (
            self.k_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        )  # (B, Hkv, L, Dh)
        v = self.v_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, Hkv, S + L, Dh)
        out = attention(q, k, v, mask)  # (B, Hq, L, Dh)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: AttentionMask, cache: LayerKVCache | None = None
    ) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class QwenDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        # Tied checkpoints have no lm_head tensor at all: logits reuse the embedding matrix.
        self.lm_head = (
            None if cfg.tie_word_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        )

    def embed(self, input_ids: Tensor) -> Tensor:
        """(B, L) long -> (B, L, D)."""
        return self.embed_tokens(input_ids)

    def new_cache(self, frozen: bool = False) -> KVCache:
        return KVCache(self.cfg.num_layers, frozen=frozen)

    def forward(
        self, inputs_embeds: Tensor, position_ids: Tensor, mask: AttentionMask, cache: KVCache | None = None
    ) -> Tensor:
        """inputs_embeds (B, L, D), position_ids (3, B, L) of these L tokens -> final-normed hidden (B, L, D).

        With a cache, the L tokens follow the cached ones and `mask` covers queries = these L tokens,
        keys = cached + these (build_attention_mask(layout, q_start=cache.length)).
        """
        if position_ids.dim() == 2:  # (B, L) text ids: t = h = w
            position_ids = position_ids.expand(3, -1, -1)
        cos, sin = rope_cos_sin(position_ids, self.cfg.head_dim, self.cfg.rope_theta, self.cfg.mrope_section)
        h = inputs_embeds
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, mask, None if cache is None else cache.layer(i))
        return self.norm(h)

    def logits(self, hidden: Tensor) -> Tensor:
        """(B, L, D) -> (B, L, V)."""
        weight = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(hidden, weight)

    @torch.no_grad()
    def init_weights(self, std: float = 0.02) -> None:
        """Fresh initialisation: N(0, std) for Linear/Embedding weights, zero biases, unit norm gains."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
