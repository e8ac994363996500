"""The model and tokenizer a run starts from: a Tuna checkpoint, public components, or a fresh preset.

With several processes the model is built on the meta device everywhere and materialised after
sharding: only rank 0 ever holds the whole model in host memory (N processes of a 7B model would
otherwise need N × 28 GB), and it broadcasts each process its shards.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.tokenizer import qwen25_tokenizer, small_tokenizer, token_config_from_tokenizer
from tuna.train.config import TrainConfig
from tuna.train.parallelize import Dist


def build_model(cfg: TrainConfig) -> TunaModel:
    components = (cfg.init_llm, cfg.init_vision, cfg.init_vae)
    if cfg.init is not None:
        model = TunaModel.from_pretrained(cfg.init)
    elif all(components):
        model = TunaModel.from_components(
            llm=cfg.init_llm, vision=cfg.init_vision, vae=cfg.init_vae, preset=cfg.model
        )
    elif any(components):
        raise ValueError("init_llm, init_vision and init_vae must be given together")
    else:
        model = TunaModel(get_preset(cfg.model))
        model.init_weights()
    if cfg.vae_decoder_width is not None:
        if cfg.stage != 0 or cfg.vae_train != "decoder" or cfg.init is None:
            raise ValueError(
                "vae_decoder_width rebuilds a trained VAE's decoder: it needs stage 0, vae_train=decoder "
                f"and an init checkpoint (got stage {cfg.stage}, vae_train={cfg.vae_train!r}, init={cfg.init!r})"
            )
        model.vae = model.vae.with_decoder_width(cfg.vae_decoder_width)
        model.cfg = replace(model.cfg, vae=model.vae.cfg)
    if cfg.noise is not None:
        # Only the flow-time draw reads it (no weights depend on it); saved with the model for samplers.
        model.cfg = replace(model.cfg, noise=cfg.noise)
    if cfg.stage > 0 and model.cfg.image_size != cfg.data.image_size:
        # The model's default side (generation, and the area input images are resized to) becomes the one
        # it now trains at: a model continued at 256² should sample 256² unless told otherwise.
        model.cfg = replace(model.cfg, image_size=cfg.data.image_size)
    model.tokenizer = build_tokenizer(cfg.tokenizer, model)
    expected = token_config_from_tokenizer(model.tokenizer)
    if expected != model.cfg.tokens:
        raise ValueError(
            f"tokenizer {cfg.tokenizer!r} has special-token ids {expected}, the model expects {model.cfg.tokens}"
        )
    if len(model.tokenizer) > model.cfg.decoder.vocab_size:
        raise ValueError(
            f"tokenizer {cfg.tokenizer!r} has {len(model.tokenizer)} tokens, more than the model's "
            f"vocabulary of {model.cfg.decoder.vocab_size}"
        )
    return model


def build_model_on_meta(cfg: TrainConfig, dist_info: Dist) -> tuple[TunaModel, dict[str, Any]]:
    """Every process: the model's structure on the meta device (with its tokenizer). Rank 0 also builds
    it for real, exactly as `build_model` would, and returns its full state dict; others get {}."""
    real = build_model(cfg) if dist_info.is_main else None
    spec = [real.cfg, real.tokenizer] if real is not None else [None, None]
    dist.broadcast_object_list(spec, src=0)
    with torch.device("meta"):
        model = TunaModel(spec[0])
    model.tokenizer = spec[1]
    return model, ({} if real is None else real.state_dict())


def materialize(
    model: TunaModel, trained: nn.Module, full_state: dict[str, Any], device: torch.device
) -> None:
    """Allocate the (sharded) meta parameters of `trained` on `device` and fill them from rank 0's state."""
    trained.to_empty(device=device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(trained, full_state, options=options)
    model.vae.reset_latent_stats()  # non-persistent: not in any state dict


def build_tokenizer(name: str, model: TunaModel):
    if name == "bytes":
        return small_tokenizer()  # byte-level, no merges: deterministic and corpus-free
    if name == "shapes":
        # tuna-shapes: byte-level BPE trained on every text the shapes world says (~one token a word),
        # deterministic for a given corpus, so a rerun rebuilds the same vocabulary.
        from tuna.data.shapes.corpus import shapes_corpus

        return small_tokenizer(shapes_corpus(), vocab_size=model.cfg.decoder.vocab_size)
    if name == "qwen25":
        return qwen25_tokenizer()
    if name == "checkpoint":
        if model.tokenizer is None:
            raise ValueError("tokenizer=checkpoint, but the init checkpoint has no tokenizer files")
        return model.tokenizer
    raise ValueError(f"unknown tokenizer {name!r}; expected bytes, shapes, qwen25 or checkpoint")
