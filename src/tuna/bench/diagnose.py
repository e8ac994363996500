"""Where does text-to-image fail, in the VAE or in the flow head? (`tuna bench diagnose`)

Three measurements on ShapesBench T2I test items, each against the scene's *true* latent x1 (the VAE's
encoding of a render that satisfies the prompt):

- **decoder ceiling**: the share of decodes of x1 (plus isotropic noise of relative variance r) that
  satisfy the prompt. A perfect flow head scores the r = 0 figure at most.
- **denoising error**: ‖x̂1 − x1‖² / Var(x1) for the flow head's one-step estimate x̂1 = x_t + (1 − t)·v
  at time t with the conditional (unguided) velocity, beside the best *linear* estimate (which knows
  only the latents' mean and variance).
- **resampling**: start the ODE at t0 from x_t (the true latent, partly noised) and score the result.
  t0 = 0 is plain generation; a model that fails even from t0 = 0.5, where half the signal is the
  truth, draws off the data manifold: its flow head, not its VAE, limits generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tuna.bench.items import T2IItem, render_truth
from tuna.bench.score_gen import score_image
from tuna.media import image_to_pixels, pixels_to_images
from tuna.sampling.flow import VelocityFn, denoise, get_noise, guidance
from tuna.sampling.visual import guided_velocity

NOISE_LEVELS = (0.0, 0.01, 0.07)
TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)
START_TIMES = (0.0, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Diagnosis:
    n: int
    decoder_ceiling: dict[float, float]  # relative latent noise → share satisfying the prompt
    denoising_error: dict[float, tuple[float, float]]  # t → (flow head, best linear estimate)
    resampled: dict[float, float]  # start time t0 → share satisfying the prompt

    def table(self) -> str:
        lines = [f"T2I diagnosis on {self.n} ShapesBench test scenes (true latents x1)"]
        lines.append("decoder ceiling   " + "  ".join(
            f"noise {r:g}: {s:.3f}" for r, s in self.decoder_ceiling.items()))  # fmt: skip
        lines.append("denoising error (unguided) " + "  ".join(
            f"t={t:g}: {m:.3f} (linear {lin:.3f})" for t, (m, lin) in self.denoising_error.items()))  # fmt: skip
        lines.append("resampled from t0 " + "  ".join(
            f"t0={t:g}: {s:.3f}" for t, s in self.resampled.items()))  # fmt: skip
        return "\n".join(lines)


def true_latents(vae, items: Sequence[T2IItem], device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, C, 1, h, w) normalised latents of each item's ground-truth render."""
    renders = [render_truth(it) for it in items]
    batch = torch.stack([image_to_pixels(im, target=im.width, multiple=16) for im in renders])
    with torch.no_grad():
        return vae.encode(batch.to(device, vae.dtype)).float()


def satisfied(vae, items: Sequence[T2IItem], latents: torch.Tensor) -> float:
    """The share of decoded latents whose picture satisfies its item's prompt (the bench's scorer)."""
    with torch.no_grad():
        pixels = vae.decode(latents.to(vae.dtype))
    images = [pixels_to_images(p)[0] for p in pixels]
    return sum(score_image(it.spec, im) >= 1.0 for it, im in zip(items, images)) / len(items)


def denoising_error(
    velocity: VelocityFn, x1: torch.Tensor, x0: torch.Tensor, times: Sequence[float]
) -> dict[float, tuple[float, float]]:
    """t → (relative error of x_t + (1 − t)·v(x_t, t), relative error of the best linear estimate)."""
    mean, var = x1.mean(), x1.var()
    out = {}
    for t in times:
        xt = t * x1 + (1 - t) * x0
        estimate = xt + (1 - t) * velocity(xt, t)
        # E[x1 | x_t] for Gaussian x1 with the latents' mean and variance: the floor any model must beat
        linear = mean + t * var * (xt - t * mean) / (t * t * var + (1 - t) ** 2)
        out[t] = (float(((estimate - x1) ** 2).mean() / var), float(((linear - x1) ** 2).mean() / var))
    return out


def resample(velocity: VelocityFn, x1: torch.Tensor, x0: torch.Tensor, t0: float, steps: int) -> torch.Tensor:
    """Integrate from x_t0 = t0·x1 + (1 − t0)·x0 to t = 1 with uniform Euler steps."""
    schedule = torch.linspace(t0, 1, steps + 1, dtype=torch.float64).tolist()
    return denoise(velocity, t0 * x1 + (1 - t0) * x0, schedule)


def diagnose(
    vae,
    velocity: VelocityFn,
    items: Sequence[T2IItem],
    steps: int = 40,
    seed: int = 0,
    noise_levels: Sequence[float] = NOISE_LEVELS,
    times: Sequence[float] = TIMES,
    start_times: Sequence[float] = START_TIMES,
    conditional: VelocityFn | None = None,
    device: torch.device | str = "cpu",
) -> Diagnosis:
    """`velocity(x, t)` is the velocity the model samples with for the items' prompts (row i for item
    i, guided); `conditional` the unguided one the denoising error is measured on (default: `velocity`);
    `device` the one the VAE and the velocities run on."""
    x1 = true_latents(vae, items, device)  # on the model's device; every random draw is made on the CPU
    x0 = torch.cat([get_noise((1, *x1.shape[1:]), seed + i, device=x1.device) for i in range(len(items))])
    generator = torch.Generator().manual_seed(seed)
    ceiling = {}
    for r in noise_levels:
        noise = torch.randn(x1.shape, generator=generator).to(x1.device)
        noisy = x1 + noise * float(r * x1.var()) ** 0.5
        ceiling[r] = satisfied(vae, items, noisy)
    resampled = {
        t0: satisfied(vae, items, resample(velocity, x1, x0, t0, max(1, round(steps * (1 - t0)))))
        for t0 in start_times
    }
    errors = denoising_error(conditional or velocity, x1, x0, times)
    return Diagnosis(len(items), ceiling, errors, resampled)


def prompt_velocity(pipe, prompts: Sequence[str], cfg_scale: float) -> VelocityFn:
    """The velocity `pipe.generate` samples these prompts with (row i ↔ prompt i; guided unless
    cfg_scale is 1), prompts cached once."""
    rows = [pipe.prompt_segments(p) for p in prompts]
    if cfg_scale == 1.0:
        return torch.no_grad()(guided_velocity(pipe.model, rows, lambda v: v, len(rows)))
    n = len(rows)
    rows += [pipe.prompt_segments("")] * n
    combine = lambda v: guidance(v[:n], v[n:], cfg_scale)  # noqa: E731
    return torch.no_grad()(guided_velocity(pipe.model, rows, combine, n))
