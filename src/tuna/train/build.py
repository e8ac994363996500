"""The model and tokenizer a run starts from: a Tuna checkpoint, public components, or a fresh preset."""

from __future__ import annotations

from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.tokenizer import qwen25_tokenizer, small_tokenizer, token_config_from_tokenizer
from tuna.train.config import TrainConfig


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
