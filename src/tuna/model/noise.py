"""Flow-matching maths, written down in exactly one place.

Convention (the paper's): t ∈ [0, 1] with t = 1 the clean latent x1 and t = 0 pure noise x0 ~ N(0, I).

    x_t = t · x1 + (1 − t) · x0          (linear path)
    v   = dx_t/dt = x1 − x0              (the velocity the flow head predicts)

Understanding uses clean latents (t = 1). Samplers integrate dx/dt = v from t = 0 to t = 1.
"""

from __future__ import annotations

import math

import torch

from tuna.config import NoiseConfig


def broadcast_time(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) → (B, 1, 1, …) matching `like`'s rank."""
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1))).to(like.dtype)


def add_noise(x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = t·x1 + (1 − t)·x0; x1/x0 (B, …), t (B,)."""
    tb = broadcast_time(t, x1)
    return tb * x1 + (1 - tb) * x0


def velocity_target(x1: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """v = x1 − x0."""
    return x1 - x0


def shift_time(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Time shift of SD3 / Wan, expressed on the noise level σ = 1 − t: σ' = sσ / (1 + (s − 1)σ).

    shift > 1 moves mass towards noise (small t), where high-resolution images need more steps.
    shift = 1 is the identity; t = 0 and t = 1 are fixed points.
    """
    if shift <= 0:
        raise ValueError(f"time shift must be positive, got {shift}")
    sigma = 1 - t
    sigma = shift * sigma / (1 + (shift - 1) * sigma)
    return 1 - sigma


def resolution_shift(base_shift: float, tokens: int, base_tokens: int) -> float:
    """Shift that grows with the square root of the token count (more tokens → noisier schedule)."""
    return base_shift * math.sqrt(tokens / base_tokens)


def sample_time(
    n: int,
    cfg: NoiseConfig,
    tokens: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw n training times t ∈ (0, 1) from the configured distribution, then shift them."""
    if cfg.distribution == "uniform":
        u = torch.rand(n, generator=generator, device=device)
    elif cfg.distribution == "logit_normal":
        z = torch.randn(n, generator=generator, device=device)
        u = torch.sigmoid(cfg.logit_mean + cfg.logit_std * z)
    else:
        raise ValueError(
            f"unknown time distribution {cfg.distribution!r}; expected 'uniform' or 'logit_normal'"
        )
    return shift_time(u, schedule_shift(cfg, tokens))


def schedule_shift(cfg: NoiseConfig, tokens: int | None = None) -> float:
    """The time shift a model was trained with for a block of `tokens` visual tokens; samplers use the
    same one by default, so their steps fall where training put its mass."""
    if not cfg.resolution_shift:
        return cfg.shift
    if tokens is None:
        raise ValueError("resolution-dependent shift needs the number of visual tokens")
    return resolution_shift(cfg.shift, tokens, cfg.base_tokens)
