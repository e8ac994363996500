"""Qwen2 / Qwen2.5 language-model checkpoints (transformers `Qwen2ForCausalLM` directories)."""

from __future__ import annotations

from pathlib import Path

from tuna.config import DecoderConfig
from tuna.model.decoder import QwenDecoder
from tuna.model.hf import LoadReport, load_matching, read_json, read_state_dict, safetensors_files

# Qwen2.5-VL splits its 64 rotary frequencies (head_dim 128) 16 / 24 / 24 over (t, h, w).
_VL_SECTION = (16, 24, 24)


def default_mrope_section(head_dim: int) -> tuple[int, int, int]:
    """Qwen2.5-VL's 16:24:24 proportions scaled to head_dim/2 frequencies (w takes the rounding)."""
    half = head_dim // 2
    total = sum(_VL_SECTION)
    t = half * _VL_SECTION[0] // total
    h = half * _VL_SECTION[1] // total
    return (t, h, half - t - h)


def decoder_config_from_hf(directory: Path) -> DecoderConfig:
    """DecoderConfig from a Qwen2 config.json.

    rope_theta is read from the top level (transformers 4) or `rope_parameters` (transformers 5).
    mrope_section comes from `rope_scaling` / `rope_parameters` when the checkpoint has one (Qwen2-VL
    style); a text-only Qwen2.5 has none, and then gets Qwen2.5-VL's proportions scaled to head_dim/2
    (on text every split is exact 1D RoPE, so this only shapes how images are positioned).
    """
    path = Path(directory) / "config.json"
    raw = read_json(path)
    model_type = raw.get("model_type")
    if model_type != "qwen2":
        raise ValueError(
            f"{path} is not a Qwen2 language-model config: model_type is {model_type!r}, expected 'qwen2'"
        )
    rope = {**(raw.get("rope_scaling") or {}), **(raw.get("rope_parameters") or {})}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "mrope"):
        raise ValueError(f"{path}: rope type {rope_type!r} is not supported (only plain/multimodal RoPE)")
    if raw.get("use_sliding_window"):
        raise ValueError(f"{path}: sliding-window attention is not supported")
    if raw.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{path}: hidden_act {raw['hidden_act']!r} is not supported (Qwen2 uses 'silu')")

    hidden, heads = raw["hidden_size"], raw["num_attention_heads"]
    head_dim = hidden // heads
    if raw.get("head_dim") not in (None, head_dim):
        raise ValueError(f"{path}: head_dim {raw['head_dim']} differs from hidden_size / num_attention_heads")
    section = rope.get("mrope_section")
    return DecoderConfig(
        vocab_size=raw["vocab_size"],
        hidden_size=hidden,
        intermediate_size=raw["intermediate_size"],
        num_layers=raw["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=raw.get("num_key_value_heads", heads),
        rope_theta=float(raw.get("rope_theta", rope.get("rope_theta", 10000.0))),
        rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
        tie_word_embeddings=raw.get("tie_word_embeddings", False),
        max_position_embeddings=raw.get("max_position_embeddings", 32768),
        mrope_section=tuple(section) if section else default_mrope_section(head_dim),
    )


def load_qwen2(decoder: QwenDecoder, directory: Path) -> LoadReport:
    """Load a Qwen2ForCausalLM safetensors checkpoint into `decoder` (`model.X` -> `X`)."""
    state = read_state_dict(safetensors_files(directory))
    renamed = {}
    for key, tensor in state.items():
        if key == "lm_head.weight":
            # A tied decoder has no lm_head; some tied checkpoints still store the (shared) tensor.
            if decoder.lm_head is not None:
                renamed[key] = tensor
        else:
            renamed[key.removeprefix("model.")] = tensor
    return load_matching(decoder, renamed)
