"""Autoregressive text decoding with a KV cache (never recomputes the prefix)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from tuna.model.decoder import KVCache
from tuna.model.masks import TokenLayout
from tuna.model.rope import text_positions


def next_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, V) logits → (B,) ids: greedy at temperature 0, else nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(dim=-1) - sorted_probs < top_p  # always keeps the most likely token
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def stream_text(
    model,
    prefix_embeds: torch.Tensor,
    position_ids: torch.Tensor,
    layout: TokenLayout,
    max_new_tokens: int,
    stop_ids: set[int],
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield new token ids for one sequence: prefill once, then one cached step per token.

    prefix_embeds (1, L, D) — text and visual embeddings of the prompt; position_ids (3, 1, L);
    layout — its TokenLayout (visual blocks bidirectional). Stops after a token in stop_ids.
    """
    decoder = model.decoder
    cache = KVCache(len(decoder.layers))
    hidden = decoder(prefix_embeds, position_ids, model.attention_mask(layout), cache=cache)
    next_pos = int(position_ids.max()) + 1
    sample_ids, block_ids = layout.sample_ids, layout.block_ids
    for _ in range(max_new_tokens):
        token = next_token(decoder.logits(hidden[:, -1]), temperature, top_p, generator)
        token_id = int(token[0])
        yield token_id
        if token_id in stop_ids:
            return
        sample_ids = torch.cat([sample_ids, sample_ids[:, -1:]], dim=1)
        block_ids = torch.cat([block_ids, torch.zeros_like(block_ids[:, -1:])], dim=1)
        positions = text_positions(next_pos, 1)[:, None].to(position_ids.device)  # (3, 1, 1)
        next_pos += 1
        mask = model.attention_mask(TokenLayout(sample_ids, block_ids), q_start=cache.length)
        hidden = decoder(decoder.embed(token[:, None]), positions, mask, cache=cache)
