"""Saving and loading Tuna checkpoints, and the stage-1 initialisation from public components.

A Tuna directory holds `config.json` (the TunaConfig), `model.safetensors` (every weight, VAE
included) and the tokenizer's files. Nothing is ever pickled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from tuna.config import TunaConfig, get_preset
from tuna.model.hf import LoadReport, read_json, read_state_dict

log = logging.getLogger(__name__)

FORMAT = "tuna"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"


def save_pretrained(model, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.cfg.to_dict()}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # Write to a temporary name, then rename: a crash never leaves a half-written checkpoint behind.
    tmp = directory / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(directory / WEIGHTS)
    (directory / "config.json").write_text(json.dumps(meta, indent=2))
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(directory))


def read_config(directory: str | Path) -> TunaConfig:
    meta = read_json(Path(directory) / "config.json")
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{directory}/config.json is not a Tuna checkpoint config (expected format {FORMAT!r})"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"unsupported Tuna checkpoint version {meta.get('format_version')}; expected {FORMAT_VERSION}"
        )
    return TunaConfig.from_dict(meta["config"])


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: str) -> None:
    """Raise one error listing every missing, unexpected and mis-shaped key."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [f"checkpoint {source} does not fit the model its config describes:"]
        parts += [f"  shape mismatch {m}" for m in mismatched]
        parts += [f"  missing {k}" for k in missing[:50]] + (
            [f"  … {len(missing) - 50} more missing"] if len(missing) > 50 else []
        )
        parts += [f"  unexpected {k}" for k in unexpected[:50]]
        raise ValueError("\n".join(parts))


def load_pretrained(directory: str | Path, device="cpu", dtype: torch.dtype = torch.float32):
    from tuna.model.tuna import TunaModel

    directory = Path(directory)
    cfg = read_config(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"expected weights at {weights}, found none")
    state = read_state_dict([weights])
    model = TunaModel(cfg)
    check_state_dict(model.state_dict(), state, str(weights))
    model.load_state_dict(state, strict=True)
    model.tokenizer = _load_tokenizer(directory)
    return model.to(device=device, dtype=dtype).eval()


def _load_tokenizer(directory: Path):
    if not (directory / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def build_from_components(
    llm: str | Path,
    vision: str | Path,
    vae: str | Path,
    preset: str = "1.5b",
    feature_layer: int | None = None,
):
    """Stage-1 initialisation: Qwen2.5 (+ tokenizer), SigLIP 2 and Wan 2.2 VAE from local directories.

    Each component's dimensions come from its own config file; the preset supplies the rest (connector,
    flow head, noise schedule, loss weights). Returns the model; `model.load_reports` says per component
    what was loaded and what was freshly initialised.
    """
    from tuna.model.hf.qwen2 import decoder_config_from_hf, load_qwen2
    from tuna.model.hf.siglip import encoder_config_from_hf, load_siglip
    from tuna.model.tuna import TunaModel
    from tuna.model.vae import load_wan_vae, vae_config_from_diffusers
    from tuna.tokenizer import token_config_from_tokenizer

    base = get_preset(preset)
    vae_dir = Path(vae) / "vae" if (Path(vae) / "vae" / "config.json").is_file() else Path(vae)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(llm), local_files_only=True)
    cfg = dataclasses.replace(
        base,
        name=f"{base.name}-components",
        decoder=decoder_config_from_hf(llm),
        encoder=encoder_config_from_hf(
            vision, feature_layer=base.encoder.feature_layer if feature_layer is None else feature_layer
        ),
        vae=vae_config_from_diffusers(vae_dir),
        tokens=token_config_from_tokenizer(tokenizer),
    )
    model = TunaModel(cfg)
    model.init_weights()
    reports: dict[str, LoadReport] = {
        "decoder": load_qwen2(model.decoder, llm),
        "encoder": load_siglip(model.encoder, vision),
        "vae": load_wan_vae(model.vae, vae_dir),
    }
    for name, report in reports.items():
        log.info("%s: %s", name, report.summary())
    model.tokenizer = tokenizer
    model.load_reports = reports
    return model
