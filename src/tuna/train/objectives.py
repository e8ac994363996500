"""What a training step optimises: Tuna's loss (stages 1–3) or the VAE's reconstruction (stage 0).

An objective turns a micro-batch of samples (lists of segments) into the module's input and says how
many tokens it holds; the trained module's forward returns named loss terms with "loss" among them.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from tuna.model.vae import ENCODER_SIDE
from tuna.sequence import TunaBatch, Visual, build_batch


class TunaObjective:
    """0.2 · text CE + 1.0 · flow MSE (the model's own loss); packed micro-batches."""

    def __init__(self, model, pack_len: int | None):
        self.tokens, self.vae, self.pack_len = model.cfg.tokens, model.cfg.vae, pack_len
        self.terms = ("loss", "text", "flow")

    def module(self, model: nn.Module) -> nn.Module:
        return model

    def batch(self, samples, device: torch.device) -> tuple[TunaBatch, int]:
        batch = build_batch(samples, self.tokens, self.vae, pack_len=self.pack_len).to(device)
        return batch, int((batch.layout.sample_ids >= 0).sum())


class VAETrainer(nn.Module):
    """Stage 0: the Wan autoencoder trained directly (WanVAE itself only encodes under no_grad).

    loss = L1(reconstruction, pixels) + kl_weight · KL(posterior ‖ N(0, 1))
           + edge_weight · L1(∇ reconstruction, ∇ pixels), each per element.
    ∇ is the difference between neighbouring pixels across and down the frame. Plain L1 charges a rounded
    corner of a small square only the few pixels it gets wrong; the edge term charges it along its edges.
    (On tuna-shapes at 128² it did not sharpen small shapes: their blobs are in the 8 × 8 latents, which no
    decoder loss can restore; see the model card.)
    `decoder_only` encodes without a graph: only the decoder learns (its KL term is then a constant).
    """

    def __init__(
        self, autoencoder: nn.Module, kl_weight: float, decoder_only: bool = False, edge_weight: float = 0.0
    ):
        super().__init__()
        self.autoencoder, self.kl_weight, self.decoder_only = autoencoder, kl_weight, decoder_only
        self.edge_weight = edge_weight

    def forward(
        self, groups: list[torch.Tensor], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        recon_sum = kl_sum = edge_sum = 0.0
        count = sum(g.shape[0] for g in groups)
        for pixels in groups:  # (B, 3, F, H, W) of one shape
            with torch.no_grad() if self.decoder_only else contextlib.nullcontext():
                posterior = self.autoencoder.encode(pixels).latent_dist
            z = posterior.sample(generator)
            recon = self.autoencoder.decode(z).sample
            n = pixels.shape[0]
            recon_sum = recon_sum + F.l1_loss(recon, pixels) * n
            # At weight 0 (the presets' default) the term is only logged: no graph for backward to walk.
            edge_sum = edge_sum + edge_l1(recon if self.edge_weight else recon.detach(), pixels) * n
            # Per element, written out: diffusers' kl() sums over only three of a video's four dims.
            kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
            kl_sum = kl_sum + kl * n
        recon, kl, edge = recon_sum / count, kl_sum / count, edge_sum / count
        return {"loss": recon + self.kl_weight * kl + self.edge_weight * edge, "recon": recon, "kl": kl,
                "edge": edge}  # fmt: skip


def edge_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the horizontal and vertical pixel differences of two (B, C, F, H, W) videos."""
    across, down = (x.diff(dim=d) - y.diff(dim=d) for d in (-1, -2))
    return (across.abs().sum() + down.abs().sum()) / (across.numel() + down.numel())


VAE_PARTS = ("all", "decoder")


class VAEObjective:
    def __init__(self, model, kl_weight: float, parts: str = "all", edge_weight: float = 0.0):
        if parts not in VAE_PARTS:
            raise ValueError(f"vae_train must be one of {VAE_PARTS}, got {parts!r}")
        if parts == "decoder" and model.cfg.vae.latents_mean is None:
            raise ValueError(
                "vae_train=decoder fine-tunes a trained VAE's decoder: `init` must be a checkpoint whose "
                "VAE has latent statistics (a stage-0 result), not a fresh model"
            )
        if edge_weight < 0:
            raise ValueError(f"vae_edge_weight must be ≥ 0, got {edge_weight}")
        self.cfg, self.kl_weight, self.parts, self.edge_weight = model.cfg.vae, kl_weight, parts, edge_weight
        self.terms = ("loss", "recon", "kl", "edge")

    def module(self, model: nn.Module) -> nn.Module:
        autoencoder = model.vae.autoencoder
        autoencoder.requires_grad_(True)  # apply_freezing(model, 0) did this too; be explicit
        if self.parts == "decoder":
            for name, param in autoencoder.named_parameters():
                param.requires_grad_(not name.startswith(ENCODER_SIDE))
        return VAETrainer(autoencoder, self.kl_weight, self.parts == "decoder", self.edge_weight)

    def batch(self, samples, device: torch.device) -> tuple[list[torch.Tensor], int]:
        """Every visual of the samples, grouped by shape; tokens = latent positions."""
        groups: dict[tuple, list[torch.Tensor]] = defaultdict(list)
        for segments in samples:
            for seg in segments:
                if isinstance(seg, Visual) and seg.pixels is not None:
                    groups[tuple(seg.pixels.shape)].append(seg.pixels)
        if not groups:
            raise ValueError("stage 0 needs images: the mixture's samples hold none")
        stacked = [torch.stack(g).to(device) for g in groups.values()]
        s, st = self.cfg.scale_factor_spatial, self.cfg.scale_factor_temporal
        tokens = sum(
            g.shape[0] * (1 + (g.shape[2] - 1) // st) * (g.shape[3] // s) * (g.shape[4] // s) for g in stacked
        )
        return stacked, tokens


@torch.no_grad()
def latent_stats(
    autoencoder: nn.Module, images: list[torch.Tensor]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the posterior mode over images (each (3, F, H, W))."""
    latents = [autoencoder.encode(x[None]).latent_dist.mode() for x in images]  # (1, z, f, h, w)
    flat = torch.cat([z.transpose(0, 1).reshape(z.shape[1], -1) for z in latents], dim=1)  # (z, N)
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).clamp_min(1e-6).tolist())
