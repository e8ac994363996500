"""The representation encoder Φ′: a SigLIP 2 vision trunk that reads VAE latents instead of pixels.

SigLIP's 16×16 pixel patch embedding is replaced by a fresh 1×1 projection over the latent channels
(the VAE has already compressed 16×16 pixels into one latent position), so one latent position is one
token. The transformer layers keep SigLIP's architecture and parameter names, so a SigLIP / SigLIP 2
checkpoint loads into them directly (see `tuna.model.hf.siglip`). Only the layers up to the feature
layer are built, and there is no post-LayerNorm or pooling head: their outputs are never used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tuna.config import EncoderConfig

# transformers' names for the activations SigLIP checkpoints use.
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),  # the constant is part of the definition
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def interpolate_positions(table: torch.Tensor, grid: int, height: int, width: int) -> torch.Tensor:
    """Resize a square table of learnt positions to a (height, width) grid.

    table (G*G, D), row-major over a (G, G) grid → (height*width, D), row-major over (height, width).
    Bilinear with anti-aliasing (align_corners=False), the resize SigLIP 2 itself applies to its
    position embeddings for other aspect ratios; the native grid is returned untouched.
    """
    if (height, width) == (grid, grid):
        return table
    dtype = table.dtype
    image = rearrange(table, "(gh gw) d -> 1 d gh gw", gh=grid, gw=grid).float()  # (1, D, G, G)
    # antialias only matters when shrinking; it smooths the grid the way SigLIP 2 was trained with.
    resized = F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return rearrange(resized, "1 d h w -> (h w) d").to(dtype)  # (h*w, D)


class SelfAttention(nn.Module):
    """Multi-head self-attention with biases (SigLIP's), computed with SDPA."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, D); every token attends to every token of its own frame (no mask).
        q, k, v = (
            rearrange(p(x), "b n (h d) -> b h n d", h=self.num_heads)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, D/H), scale 1/sqrt(head_dim)
        return self.out_proj(rearrange(out, "b h n d -> b n (h d)"))


class MLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.act = activation(hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer block; parameter names match transformers' `SiglipEncoderLayer`."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = SelfAttention(cfg.hidden_size, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))  # (B, N, D)
        return x + self.mlp(self.layer_norm2(x))  # (B, N, D)


class RepresentationEncoder(nn.Module):
    """Φ′: latents (B, C, F, H, W) or (B, C, H, W) → tokens (B, F*H*W, hidden), (f, h, w) row-major."""

    def __init__(self, cfg: EncoderConfig, latent_channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.latent_channels = latent_channels
        # A 1×1 patch embedding is a per-position linear map; nn.Linear on tokens is the same maths as
        # Conv2d(k=1) without the conv dispatch, and its (out, in) weight is the usual matmul layout.
        self.patch_embedding = nn.Linear(latent_channels, cfg.hidden_size)
        self.position_embedding = nn.Parameter(torch.empty(cfg.position_grid**2, cfg.hidden_size))  # (G*G, D)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.feature_depth))
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """SigLIP's initialisation: LeCun-normal patch embedding, N(0, 1/D) positions, Xavier-uniform
        attention / MLP weights, zero biases, unit LayerNorms. Loading a checkpoint then overwrites
        everything except the patch embedding, which stays as initialised here."""
        fan_in = self.patch_embedding.in_features
        nn.init.normal_(self.patch_embedding.weight, std=1.0 / math.sqrt(fan_in))
        nn.init.zeros_(self.patch_embedding.bias)
        nn.init.normal_(self.position_embedding, std=1.0 / math.sqrt(self.cfg.hidden_size))
        for module in self.layers.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def position_embeddings(self, height: int, width: int) -> torch.Tensor:
        """Learnt positions for a (height, width) latent grid: (height*width, D)."""
        return interpolate_positions(self.position_embedding, self.cfg.position_grid, height, width)

    def embed(self, latents: torch.Tensor) -> torch.Tensor:
        """Single-frame latents (B, C, H, W) → embeddings (B, H*W, D) (patch + position)."""
        _, _, height, width = latents.shape
        tokens = rearrange(latents, "b c h w -> b (h w) c")  # (B, H*W, C)
        return self.patch_embedding(tokens) + self.position_embeddings(height, width)  # (B, H*W, D)

    def trunk(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The layer stack alone: (B, N, D) → (B, N, D), the hidden state at the feature layer."""
        for layer in self.layers:
            embeddings = layer(embeddings)
        return embeddings

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self._check(latents)  # (B, C, F, H, W)
        frames = latents.shape[2]
        # Each latent frame (a window of 4 video frames) is encoded on its own, as an image would be:
        # SigLIP was trained on single images, and attention over one frame keeps the cost linear in F.
        per_frame = rearrange(latents, "b c f h w -> (b f) c h w")
        tokens = self.trunk(self.embed(per_frame.to(self.patch_embedding.weight.dtype)))  # (B*F, H*W, D)
        return rearrange(tokens, "(b f) n d -> b (f n) d", f=frames)  # (B, F*H*W, D)

    def _check(self, latents: torch.Tensor) -> torch.Tensor:
        expected = f"(B, {self.latent_channels}, F, H, W) or (B, {self.latent_channels}, H, W)"
        if not torch.is_tensor(latents) or not latents.is_floating_point():
            raise ValueError(f"latents must be a floating-point tensor of shape {expected}")
        if latents.ndim == 4:
            latents = latents.unsqueeze(2)  # b c h w -> b c 1 h w
        if latents.ndim != 5:
            raise ValueError(f"latents must have shape {expected}, got {tuple(latents.shape)}")
        if latents.shape[1] != self.latent_channels:
            raise ValueError(f"latents must have shape {expected}, got {tuple(latents.shape)}")
        return latents
