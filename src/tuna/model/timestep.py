"""Timestep embedding (DiT): sinusoidal features of t, then a two-layer MLP."""

from __future__ import annotations

import math

import torch
from torch import nn

# t ∈ [0, 1] is stretched to [0, 1000] before the sinusoids, the range DiT's frequencies were chosen for.
TIME_SCALE = 1000.0


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(N,) times → (N, dim) [cos | sin] features at geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * TIME_SCALE)[:, None] * freqs[None]
    features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        features = torch.cat([features, torch.zeros_like(features[:, :1])], dim=-1)
    return features


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(N,) → (N, hidden_size)."""
        weight = self.mlp[0].weight
        return self.mlp(timestep_features(t, self.freq_dim).to(weight.dtype))

    def init_weights(self, std: float = 0.02) -> None:
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)
