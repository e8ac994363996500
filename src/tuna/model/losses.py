"""The one loss: next-token cross-entropy on supervised text + flow-matching MSE on noisy visual tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tuna_loss(
    logits: torch.Tensor | None,
    text_targets: torch.Tensor | None,
    velocity: torch.Tensor | None,
    velocity_target: torch.Tensor | None,
    text_weight: float,
    flow_weight: float,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Return {"loss", "text", "flow"}: loss = text_weight · text + flow_weight · flow.

    logits (N, V) and text_targets (N,) cover only supervised positions (answers, captions); velocity
    and velocity_target (M, C) only noisy visual tokens. A term with nothing to supervise is 0.
    """
    zero = torch.zeros((), device=device)
    text = F.cross_entropy(logits.float(), text_targets) if logits is not None and logits.numel() else zero
    flow = (
        F.mse_loss(velocity.float(), velocity_target.float())
        if velocity is not None and velocity.numel()
        else zero
    )
    return {"loss": text_weight * text + flow_weight * flow, "text": text.detach(), "flow": flow.detach()}
