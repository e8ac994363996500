"""The flow-matching head: decoder-architecture blocks with AdaLN-Zero timestep conditioning.

It reads the decoder's last hidden states over the whole sequence (same mask, same 3D-RoPE positions)
and predicts the velocity v = x1 − x0 for every noisy visual token. Conditioning is per token: tokens of
a visual block are modulated by that block's timestep embedding; text tokens get the identity
modulation (shift 0, scale 0, gate 1), as in Show-o2. All modulations and the output projection start
at zero (DiT's adaLN-Zero), so every block starts as the identity and the head predicts v = 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from tuna.config import DecoderConfig, FlowHeadConfig
from tuna.model.decoder import Attention, KVCache, RMSNorm, SwiGLU
from tuna.model.masks import AttentionMask
from tuna.model.rope import rope_cos_sin
from tuna.model.timestep import TimestepEmbedder


class ModulationOut(NamedTuple):
    shift: torch.Tensor
    scale: torch.Tensor
    gate: torch.Tensor


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def scale_mrope_section(section: tuple[int, int, int], half_dim: int) -> tuple[int, int, int]:
    """Rescale the decoder's t/h/w rotary split to a head of another head_dim (keeps proportions)."""
    total = sum(section)
    t = round(section[0] * half_dim / total)
    h = round(section[1] * half_dim / total)
    return (t, h, half_dim - t - h)


def modulation_table(linear: nn.Linear, cond: torch.Tensor, chunks: int) -> torch.Tensor:
    """(K, D) block conditions → (K + 1, chunks·D) table whose row 0 is the identity (for text tokens).

    Chunks are ordered (shift, scale, gate, …); the identity has shift 0, scale 0 and gate 1.
    """
    table = linear(nn.functional.silu(cond))  # (K, chunks·D)
    dim = table.shape[-1] // chunks
    identity = torch.zeros(1, chunks, dim, dtype=table.dtype, device=table.device)
    if chunks >= 3:
        identity[:, 2::3] = 1  # every gate
    return torch.cat([identity.reshape(1, -1), table], dim=0)


class FlowHeadBlock(nn.Module):
    def __init__(self, cfg: FlowHeadConfig, eps: float):
        super().__init__()
        d = cfg.hidden_size
        self.input_layernorm = RMSNorm(d, eps)
        self.self_attn = Attention(d, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, qkv_bias=True)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.mlp = SwiGLU(d, cfg.intermediate_size)
        self.adaLN_modulation = nn.Linear(d, 6 * d)

    def forward(
        self, x, cond: torch.Tensor, cond_index: torch.Tensor, cos, sin, mask: AttentionMask, cache=None
    ) -> torch.Tensor:
        # x (B, L, D); cond (K, D) block conditions; cond_index (B, L) row of the table per token (0: none).
        # The modulation is computed here, inside the block, so FSDP shards it with the block.
        mods = modulation_table(self.adaLN_modulation, cond, 6)[cond_index]  # (B, L, 6D)
        attn, mlp = (ModulationOut(*m.chunk(3, dim=-1)) for m in mods.chunk(2, dim=-1))
        x = x + attn.gate * self.self_attn(
            modulate(self.input_layernorm(x), attn.shift, attn.scale), cos, sin, mask, cache
        )
        x = x + mlp.gate * self.mlp(modulate(self.post_attention_layernorm(x), mlp.shift, mlp.scale))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Linear(hidden_size, 2 * hidden_size)
        self.linear = nn.Linear(hidden_size, out_channels)

    def forward(self, x: torch.Tensor, mods: torch.Tensor) -> torch.Tensor:
        shift, scale = mods.chunk(2, dim=-1)  # (M, D) each
        return self.linear(modulate(self.norm(x), shift, scale))


class FlowHead(nn.Module):
    def __init__(self, cfg: FlowHeadConfig, decoder_cfg: DecoderConfig, latent_channels: int):
        super().__init__()
        self.cfg = cfg
        d, d_llm = cfg.hidden_size, decoder_cfg.hidden_size
        # When the head is narrower/wider than the LLM, a 2-layer MLP maps the LLM states into it.
        self.input_proj = (
            nn.Identity() if d == d_llm else nn.Sequential(nn.Linear(d_llm, d), nn.GELU(), nn.Linear(d, d))
        )
        self.time_embedder = TimestepEmbedder(d, cfg.timestep_freq_dim)
        self.blocks = nn.ModuleList(
            FlowHeadBlock(cfg, decoder_cfg.rms_norm_eps) for _ in range(cfg.num_layers)
        )
        self.final_layer = FinalLayer(d, latent_channels)
        self.rope_theta = decoder_cfg.rope_theta
        self.mrope_section = scale_mrope_section(decoder_cfg.mrope_section, cfg.head_dim // 2)

    def forward(
        self,
        hidden: torch.Tensor,
        position_ids: torch.Tensor,
        mask: AttentionMask,
        cond_index: torch.Tensor,
        t: torch.Tensor,
        out_rows: torch.Tensor,
        out_cols: torch.Tensor,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Velocity for the tokens at (out_rows, out_cols).

        hidden (B, L, D_llm): decoder states; position_ids (3, B, L); cond_index (B, L): 0 for tokens
        without timestep conditioning (text), k ≥ 1 for tokens conditioned on t[k − 1]; t (K,);
        out_rows/out_cols (M,): where to predict. Returns (M, latent_channels).
        """
        x = self.input_proj(hidden)
        cond = self.time_embedder(t)  # (K, D)
        cos, sin = rope_cos_sin(position_ids, self.cfg.head_dim, self.rope_theta, self.mrope_section)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, cond, cond_index, cos, sin, mask, cache.layer(i) if cache is not None else None)
        out = x[out_rows, out_cols]  # (M, D)
        final_mods = modulation_table(self.final_layer.adaLN_modulation, cond, 2)[
            cond_index[out_rows, out_cols]
        ]
        return self.final_layer(out, final_mods)

    def init_weights(self, std: float = 0.02) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        self.time_embedder.init_weights(std)
        # adaLN-Zero: every block starts as the identity, and the head's output starts at v = 0.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation.weight)
            nn.init.zeros_(block.adaLN_modulation.bias)
        for layer in (self.final_layer.adaLN_modulation, self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
