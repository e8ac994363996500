"""Flow-matching ODE sampling as pure functions (t = 0 noise → t = 1 data; see tuna.model.noise)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from tuna.model.noise import shift_time

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]  # (x_t, t) → v
StepCallback = Callable[[int, int], None]  # (steps done, steps in all)


def get_noise(shape: tuple[int, ...], seed: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Seeded Gaussian noise, drawn on the CPU so a seed gives the same image on every device."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)


def get_schedule(steps: int, shift: float = 1.0) -> list[float]:
    """steps + 1 increasing times from 0 to 1, shifted towards noise when shift > 1."""
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    return shift_time(torch.linspace(0, 1, steps + 1, dtype=torch.float64), shift).tolist()


def guidance(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: v_u + s·(v_c − v_u); s = 1 is the conditional velocity."""
    return v_uncond + scale * (v_cond - v_uncond)


def euler_step(x: torch.Tensor, v: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    return x + (t_next - t) * v


def denoise(
    velocity: VelocityFn,
    x: torch.Tensor,
    schedule: list[float],
    solver: str = "euler",
    progress: bool = False,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) along the schedule with Euler, Heun (2nd order) or midpoint.

    `on_step(done, total)` runs after each step; an exception it raises stops the integration.
    """
    if solver not in ("euler", "heun", "midpoint"):
        raise ValueError(f"unknown sampler {solver!r}; expected euler, heun or midpoint")
    steps = list(zip(schedule[:-1], schedule[1:]))
    for done, (t, t_next) in enumerate(
        tqdm(steps, desc="denoising", unit="step", disable=not progress, leave=False), 1
    ):
        v = velocity(x, t)
        if solver == "euler":
            x = euler_step(x, v, t, t_next)
        elif solver == "heun":
            x_pred = euler_step(x, v, t, t_next)
            x = euler_step(x, 0.5 * (v + velocity(x_pred, t_next)), t, t_next)
        else:
            t_mid = 0.5 * (t + t_next)
            x = euler_step(x, velocity(euler_step(x, v, t, t_mid), t_mid), t, t_next)
        if on_step is not None:
            on_step(done, len(steps))
    return x
