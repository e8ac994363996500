"""Which parameters each training stage trains (the paper's §2.3, plus stage 0 for toy worlds).

Stage 0: the VAE alone (no pretrained VAE exists offline for the shapes world).
Stage 1: LLM decoder frozen; representation encoder, connector, timestep token and flow head train
         (captioning + T2I). Gradients still flow *through* the frozen decoder into the encoder.
Stage 2: everything but the VAE (continual pre-training; instruction, editing and video data join).
Stage 3: as stage 2, at a lower learning rate (SFT).
"""

from __future__ import annotations

from torch import nn

TRAINABLE_MODULES: dict[int, tuple[str, ...]] = {
    0: ("vae",),
    1: ("encoder", "connector", "time_token", "flow_head"),
    2: ("encoder", "connector", "time_token", "decoder", "flow_head"),
    3: ("encoder", "connector", "time_token", "decoder", "flow_head"),
}


MODEL_PARTS = TRAINABLE_MODULES[2]  # every part a run may train (stage 2 trains them all)


def apply_freezing(model: nn.Module, stage: int, parts: tuple[str, ...] | None = None) -> list[str]:
    """Set requires_grad per the stage's plan, or to `parts` when given (a run's `trainable`: e.g.
    ("flow_head",) fine-tunes generation alone, leaving understanding bit-identical); return the names
    of the trainable parameters."""
    if stage not in TRAINABLE_MODULES:
        raise ValueError(f"unknown training stage {stage}; expected one of {sorted(TRAINABLE_MODULES)}")
    if parts is not None:
        if stage == 0:
            raise ValueError("trainable= applies to stages 1-3; stage 0 trains the VAE (see vae_train)")
        unknown = [p for p in parts if p not in MODEL_PARTS]
        if unknown or not parts:
            raise ValueError(f"trainable: unknown model parts {unknown}; expected some of {MODEL_PARTS}")
    prefixes = tuple(f"{m}." for m in (TRAINABLE_MODULES[stage] if parts is None else parts))
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(prefixes))
        if param.requires_grad:
            trainable.append(name)
    return trainable
