"""The connector: a 2-layer MLP from the representation encoder's width to the decoder's."""

from __future__ import annotations

import torch
from torch import nn


class Connector(nn.Module):
    """RMSNorm → Linear → GELU → Linear, as in the official Tuna connector.

    The RMSNorm puts the encoder's features (whose scale drifts as Φ′ is fine-tuned on latents) on a
    fixed scale before they enter the decoder; `hidden_dim` defaults to the decoder width (`out_dim`).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, eps: float = 1e-6) -> None:
        super().__init__()
        hidden_dim = out_dim if hidden_dim is None else hidden_dim
        self.norm = nn.RMSNorm(in_dim, eps=eps)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., in_dim) → (..., out_dim); any leading dims (usually (B, N))."""
        return self.fc2(self.act(self.fc1(self.norm(features))))
