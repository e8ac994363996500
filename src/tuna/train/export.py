"""The run's result as a Tuna checkpoint (`save_pretrained` layout): `DIR/final` (and `DIR/final_ema`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from tuna.model.tuna import TunaModel
from tuna.train.checkpoint import FULL, _full
from tuna.train.objectives import latent_stats
from tuna.train.optim import EMA
from tuna.train.parallelize import Dist

WRAPPER = "_checkpoint_wrapped_module."


def export(
    out: Path,
    model: TunaModel,
    trained: nn.Module,
    ema: EMA | None,
    dist_info: Dist,
    stage: int,
    stats_images=(),
) -> list[Path]:
    """Collective. Gathers full weights, rebuilds a plain TunaModel on the main process and saves it.

    Stage 0 (`trained` is the VAE trainer) also measures latent statistics into the saved config.
    """
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    trained_state = get_model_state_dict(trained, options=FULL)
    ema_state = None if ema is None else {n.replace(WRAPPER, ""): _full(t) for n, t in ema.shadow.items()}
    if not dist_info.is_main:
        return []
    prefix = "vae." if stage == 0 else ""
    # Stage 0 trained only the VAE: the rest comes from the (unsharded) model as it was.
    base = (
        {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("vae.")}
        if stage == 0
        else {}
    )
    written = []
    for name, overrides in (("final", {}), ("final_ema", ema_state)):
        if overrides is None:
            continue
        state = {
            **base,
            **{prefix + k: v for k, v in trained_state.items()},
            **{prefix + k: v for k, v in overrides.items()},
        }
        fresh = TunaModel(model.cfg)
        fresh.load_state_dict(state, strict=True)
        if stage == 0 and stats_images:
            mean, std = latent_stats(fresh.vae.autoencoder, list(stats_images))
            vae_cfg = dataclasses.replace(fresh.cfg.vae, latents_mean=mean, latents_std=std)
            fresh.cfg = dataclasses.replace(fresh.cfg, vae=vae_cfg)
            fresh.vae.latents_mean.copy_(torch.tensor(mean).view(1, -1, 1, 1, 1))
            fresh.vae.latents_std.copy_(torch.tensor(std).view(1, -1, 1, 1, 1))
        fresh.tokenizer = model.tokenizer
        fresh.save_pretrained(out / name)
        written.append(out / name)
    return written
