"""SigLIP / SigLIP 2 checkpoints → Tuna's representation encoder Φ′.

Two checkpoint families share one transformer layer layout (and so load identically):
- fixed resolution ("siglip" / "siglip_vision_model", e.g. siglip2-so400m-patch16-512, which despite
  its name uses transformers' Siglip* classes): (image_size / patch_size)² position embeddings;
- NaFlex ("siglip2" / "siglip2_vision_model", the `-naflex` checkpoints): `num_patches` embeddings.
Both learn positions on a square grid; its side is Φ′'s `position_grid`.

Key names: transformers 5 saves a bare `SiglipVisionModel` without prefix (`encoder.layers.N…`), older
vision-only files and full (image-text) models under `vision_model.`; both are accepted.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from tuna.config import EncoderConfig
from tuna.model.encoder import RepresentationEncoder
from tuna.model.hf import LoadReport, load_matching, read_json, read_state_dict, safetensors_files

_FIXED = "siglip"  # transformers' Siglip* classes
_NAFLEX = "siglip2"  # transformers' Siglip2* classes
_FULL_TYPES = {"siglip": _FIXED, "siglip2": _NAFLEX}
_VISION_TYPES = {"siglip_vision_model": _FIXED, "siglip2_vision_model": _NAFLEX}

_LAYER_KEY = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_POSITION_KEY = "embeddings.position_embedding.weight"
_VISION_PREFIX = "vision_model."


def encoder_config_from_hf(directory: str | Path, feature_layer: int = -2) -> EncoderConfig:
    """Read Φ′'s dimensions from a SigLIP / SigLIP 2 config.json (full model or vision-only)."""
    raw = read_json(Path(directory) / "config.json")
    model_type = raw.get("model_type")
    if "vision_config" in raw:
        if model_type not in _FULL_TYPES:
            raise ValueError(
                f"{directory}: model_type {model_type!r} is not a SigLIP model; expected one of {sorted(_FULL_TYPES)}"
            )
        family, vision = _FULL_TYPES[model_type], raw["vision_config"]
    elif model_type in _VISION_TYPES:
        family, vision = _VISION_TYPES[model_type], raw
    else:
        expected = sorted(_VISION_TYPES) + [f"{t} (with a vision_config)" for t in sorted(_FULL_TYPES)]
        raise ValueError(
            f"{directory}: model_type {model_type!r} is not a SigLIP vision model; expected {expected}"
        )

    value = _with_transformers_defaults(vision, family)
    positions = _num_positions(value, family, directory)
    grid = math.isqrt(positions)
    if grid * grid != positions:
        raise ValueError(f"{directory}: {positions} position embeddings do not form a square grid")
    return EncoderConfig(
        hidden_size=value("hidden_size"),
        intermediate_size=value("intermediate_size"),
        num_layers=value("num_hidden_layers"),
        num_heads=value("num_attention_heads"),
        layer_norm_eps=value("layer_norm_eps"),
        hidden_act=value("hidden_act"),
        position_grid=grid,
        feature_layer=feature_layer,
    )


def _with_transformers_defaults(vision: dict, family: str):
    """Look up a vision-config key; keys the file leaves out take transformers' own defaults (hub
    configs often list only non-default values)."""
    from transformers import Siglip2VisionConfig, SiglipVisionConfig

    defaults = (SiglipVisionConfig if family == _FIXED else Siglip2VisionConfig)()

    def value(key: str):
        return vision[key] if key in vision else getattr(defaults, key)

    return value


def _num_positions(value, family: str, directory: str | Path) -> int:
    if family == _NAFLEX:
        return int(value("num_patches"))
    image_size, patch_size = value("image_size"), value("patch_size")
    sides = [image_size] * 2 if isinstance(image_size, int) else list(image_size)
    patches = [patch_size] * 2 if isinstance(patch_size, int) else list(patch_size)
    grid = [s // p for s, p in zip(sides, patches)]
    if grid[0] != grid[1]:
        raise ValueError(
            f"{directory}: image_size {image_size} / patch_size {patch_size} is not a square grid"
        )
    return grid[0] * grid[1]


def load_siglip(encoder: RepresentationEncoder, directory: str | Path) -> LoadReport:
    """Load a SigLIP / SigLIP 2 checkpoint's vision trunk into `encoder`.

    Loaded: layers 0..feature_depth-1 and the position embedding. Initialised: the 1×1 latent patch
    embedding (the checkpoint's 16×16 pixel one cannot fit). Unused: the pixel patch embedding, layers
    after the feature layer, post_layernorm, the pooling head and any text tower.
    """
    state = read_state_dict(safetensors_files(Path(directory)))
    own = encoder.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, tensor in state.items():
        target = _our_key(key, len(encoder.layers))
        if target is None:
            unused.append(key)
            continue
        if target == "position_embedding" and tensor.numel() == own[target].numel():
            tensor = tensor.reshape(own[target].shape)  # (G*G, D), whatever layout the file stores
        renamed[target] = tensor
    report = load_matching(encoder, renamed)
    report.unused.extend(unused)
    return report


def _our_key(key: str, depth: int) -> str | None:
    """Checkpoint key → encoder key, or None for tensors Φ′ does not use."""
    if key.startswith(_VISION_PREFIX):
        key = key[len(_VISION_PREFIX) :]
    if key == _POSITION_KEY:
        return "position_embedding"
    match = _LAYER_KEY.match(key)
    if match and int(match.group(1)) < depth:
        return f"layers.{match.group(1)}.{match.group(2)}"
    # The pixel patch embedding, deeper layers, post_layernorm, head, text tower, logit scale/bias.
    return None
