"""The Wan 2.2 VAE: pixels (images = 1-frame videos) ↔ normalised latents.

A thin wrapper around diffusers' `AutoencoderKLWan` that adds what Tuna needs around it: input
validation (diffusers silently truncates frame counts that are not 1 + 4k, and crops sides that do not
divide the compression factor), per-channel latent normalisation with the checkpoint's statistics,
and loading from a diffusers directory with a `LoadReport`.

The VAE is always frozen in Tuna: its parameters never require grad, it stays in eval mode whatever
`train()` is called with, and `encode` / `decode` run without building an autograd graph. Only the
representation encoder, connector, decoder and flow head are trained on top of its latents.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from torch import nn

from tuna.config import VAEConfig
from tuna.model.hf import LoadReport, load_matching, read_json, read_state_dict, safetensors_files

logger = logging.getLogger(__name__)

PIXEL_CHANNELS = 3  # RGB; the 12 `in_channels` of Wan 2.2 are RGB after its 2×2 patchify
# The autoencoder's parameters that fix the latents (by name prefix); the rest of it decodes.
ENCODER_SIDE = ("encoder.", "quant_conv.")


class WanVAE(nn.Module):
    """Frozen Wan VAE. Pixels in [-1, 1] of shape (B, 3, F, H, W) ↔ latents (B, z, f, h, w).

    f = 1 + (F - 1) / scale_factor_temporal, h = H / scale_factor_spatial, w = W / scale_factor_spatial.
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        kwargs = cfg.diffusers_kwargs()
        # diffusers only stores the statistics in its config (it never applies them); None would be
        # replaced by its 16-channel Wan 2.1 defaults, so leave them out and apply ours here instead.
        for key in ("latents_mean", "latents_std"):
            if kwargs[key] is None:
                del kwargs[key]
        self.autoencoder = AutoencoderKLWan(**kwargs)

        mean, std = _latent_stats(cfg)
        # Not persistent: they come from the config, never from a state dict.
        self.register_buffer("latents_mean", mean.view(1, -1, 1, 1, 1), persistent=False)  # (1, z, 1, 1, 1)
        self.register_buffer("latents_std", std.view(1, -1, 1, 1, 1), persistent=False)  # (1, z, 1, 1, 1)

        self.requires_grad_(False)
        self.train(False)

    # ------------------------------------------------------------------ construction / loading

    @classmethod
    def from_pretrained(cls, directory: str | Path, strict: bool = True) -> WanVAE:
        """Build from a diffusers `AutoencoderKLWan` directory (config.json + safetensors).

        With `strict`, a checkpoint that leaves any tensor freshly initialised or mismatched is an
        error: a partly random VAE would silently produce meaningless latents.
        """
        vae = cls(vae_config_from_diffusers(directory))
        report = load_wan_vae(vae, directory)
        if strict and (report.initialised or report.mismatched):
            raise ValueError(f"VAE checkpoint {directory} does not fit its own config:\n{report.summary()}")
        vae.load_report = report
        return vae

    @torch.no_grad()
    def with_decoder_width(self, width: int) -> WanVAE:
        """This VAE's encoder (same weights, same latents and statistics) with a fresh decoder of base
        width `width` (diffusers' `decoder_base_dim`), to be trained on the fixed latents."""
        if width < 1:
            raise ValueError(f"decoder width must be a positive integer, got {width}")
        wider = WanVAE(dataclasses.replace(self.cfg, decoder_base_dim=width))
        encoder_side = {k: v for k, v in self.autoencoder.state_dict().items() if k.startswith(ENCODER_SIDE)}
        report = load_matching(wider.autoencoder, encoder_side)
        fresh = [k for k in report.initialised if k.startswith(ENCODER_SIDE)]
        # Cannot happen while only the decoder's width changes: guards the prefix list.
        if fresh or report.mismatched or report.unused:
            raise RuntimeError(f"the encoder did not carry over to the new VAE:\n{report.summary()}")
        return wider.to(self.latents_mean.device, self.dtype)

    @torch.no_grad()
    def reset_latent_stats(self) -> None:
        """Refill the statistics buffers from the config (after `to_empty`, which leaves them garbage)."""
        mean, std = _latent_stats(self.cfg)
        self.latents_mean.copy_(mean.view(1, -1, 1, 1, 1))
        self.latents_std.copy_(std.view(1, -1, 1, 1, 1))

    def train(self, mode: bool = True) -> WanVAE:
        # Frozen: always eval, so a parent's `.train()` cannot switch on dropout here.
        return super().train(False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.autoencoder.parameters()).dtype

    # ------------------------------------------------------------------ shapes

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(F, H, W) pixels → (f, h, w) latents, validating divisibility."""
        _check_pixel_sizes(self.cfg, frames, height, width)
        return (
            1 + (frames - 1) // self.cfg.scale_factor_temporal,
            height // self.cfg.scale_factor_spatial,
            width // self.cfg.scale_factor_spatial,
        )

    # ------------------------------------------------------------------ encode / decode

    @torch.no_grad()
    def encode(
        self, pixels: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """pixels (B, 3, F, H, W) or (B, 3, H, W) in [-1, 1] → normalised latents (B, z, f, h, w).

        `sample=False` takes the posterior mode (its mean); `sample=True` draws from it with `generator`.
        """
        pixels = _as_video(pixels, PIXEL_CHANNELS, "pixels", "(B, 3, F, H, W) or (B, 3, H, W)")
        _, _, frames, height, width = pixels.shape
        _check_pixel_sizes(self.cfg, frames, height, width)
        posterior = self.autoencoder.encode(pixels.to(self.dtype)).latent_dist
        latents = posterior.sample(generator) if sample else posterior.mode()  # (B, z, f, h, w)
        return normalise(latents, self.latents_mean, self.latents_std)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """normalised latents (B, z, f, h, w) or (B, z, h, w) → pixels (B, 3, 1 + 4(f-1), 16h, 16w) in [-1, 1]."""
        latents = _as_video(
            latents, self.cfg.z_dim, "latents", f"(B, {self.cfg.z_dim}, f, h, w) or (B, z, h, w)"
        )
        raw = denormalise(latents, self.latents_mean, self.latents_std)
        pixels = self.autoencoder.decode(raw.to(self.dtype)).sample  # (B, 3, F, H, W)
        return pixels.clamp(-1.0, 1.0)  # diffusers clamps too; keep the contract explicit


# ---------------------------------------------------------------------- pure helpers


def normalise(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-channel (z - mean) / std; mean, std broadcast as (1, z, 1, 1, 1)."""
    return ((latents - mean) / std).to(latents.dtype)


def denormalise(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalise`."""
    return (latents * std + mean).to(latents.dtype)


def _latent_stats(cfg: VAEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(z,) mean and std from the config; identity (0, 1) when the config has none."""
    if (cfg.latents_mean is None) != (cfg.latents_std is None):
        raise ValueError("VAEConfig needs both latents_mean and latents_std, or neither")
    if cfg.latents_mean is None:
        return torch.zeros(cfg.z_dim), torch.ones(cfg.z_dim)
    for name, stats in (("latents_mean", cfg.latents_mean), ("latents_std", cfg.latents_std)):
        if len(stats) != cfg.z_dim:
            raise ValueError(
                f"{name} has {len(stats)} values; expected one per latent channel (z_dim={cfg.z_dim})"
            )
    std = torch.tensor(cfg.latents_std, dtype=torch.float32)
    if not bool((std > 0).all()):
        raise ValueError(f"latents_std must be positive, got {cfg.latents_std}")
    return torch.tensor(cfg.latents_mean, dtype=torch.float32), std


def _as_video(x: torch.Tensor, channels: int, name: str, expected: str) -> torch.Tensor:
    """Validate rank / dtype / channel count; a 4-D tensor is a single frame: b c h w -> b c 1 h w."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        dtype = x.dtype if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point tensor of shape {expected}, got {dtype}")
    if x.ndim == 4:
        x = x.unsqueeze(2)
    if x.ndim != 5:
        raise ValueError(f"{name} must have shape {expected}, got {x.ndim} dims {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have shape {expected} with {channels} channels, got {tuple(x.shape)}")
    return x


def _check_pixel_sizes(cfg: VAEConfig, frames: int, height: int, width: int) -> None:
    spatial, temporal = cfg.scale_factor_spatial, cfg.scale_factor_temporal
    if height % spatial or width % spatial or height <= 0 or width <= 0:
        raise ValueError(
            f"pixel height and width must be positive multiples of {spatial} (the VAE's spatial factor), "
            f"got {height}×{width}"
        )
    if frames < 1 or (frames - 1) % temporal:
        raise ValueError(
            f"the number of frames must be 1 + {temporal}k (1, {1 + temporal}, {1 + 2 * temporal}, …), got {frames}"
        )


# ---------------------------------------------------------------------- diffusers checkpoints


def vae_config_from_diffusers(directory: str | Path) -> VAEConfig:
    """Read a diffusers `AutoencoderKLWan` config.json (latent statistics included) into a VAEConfig.

    Keys the file leaves out take diffusers' own defaults (what `AutoencoderKLWan.from_pretrained`
    would use), not VAEConfig's Wan 2.2 defaults. Unknown keys are logged and ignored.
    """
    raw = read_json(Path(directory) / "config.json")
    class_name = raw.get("_class_name")
    if class_name is not None and class_name != AutoencoderKLWan.__name__:
        raise ValueError(f"{directory} holds a {class_name}, expected an {AutoencoderKLWan.__name__} config")
    defaults = {
        name: p.default
        for name, p in inspect.signature(AutoencoderKLWan.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    fields = {f.name for f in dataclasses.fields(VAEConfig)}
    unknown = sorted(k for k in raw if k not in fields and not k.startswith("_"))
    if unknown:
        logger.warning("ignoring unknown AutoencoderKLWan config keys %s in %s", unknown, directory)
    values = {}
    for name in fields:
        value = raw[name] if name in raw else defaults[name]
        values[name] = tuple(value) if isinstance(value, list) else value
    # diffusers' default statistics are Wan 2.1's 16 channels: meaningless for any other z_dim.
    for key in ("latents_mean", "latents_std"):
        if key not in raw and values[key] is not None and len(values[key]) != values["z_dim"]:
            values[key] = None
    return VAEConfig(**values)


def load_wan_vae(vae: WanVAE, directory: str | Path) -> LoadReport:
    """Load a diffusers `AutoencoderKLWan` checkpoint into `vae.autoencoder` (names are diffusers')."""
    state = read_state_dict(safetensors_files(Path(directory)))
    return load_matching(vae.autoencoder, state)
