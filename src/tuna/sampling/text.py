"""Autoregressive text decoding with a KV cache: the prompt is prefilled once, then one step per token.

Rows may be batched: prompts are right-padded, padding tokens belong to no sample (inert under the
layout mask), and each row's new tokens continue that row's own positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from tuna.model.decoder import KVCache
from tuna.model.masks import TokenLayout


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
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate_tokens(
    model,
    prefix_embeds: torch.Tensor,
    position_ids: torch.Tensor,
    layout: TokenLayout,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield (B,) new token ids per step for B right-padded prompts (the caller decides when to stop).

    prefix_embeds (B, L, D) — text and visual embeddings; position_ids (3, B, L); layout — the
    prompts' TokenLayout (sample id −1 on padding).
    """
    decoder = model.decoder
    cache = KVCache(len(decoder.layers))
    hidden = decoder(prefix_embeds, position_ids, model.attention_mask(layout), cache=cache)
    rows = prefix_embeds.shape[0]
    last = (layout.sample_ids >= 0).long().cumsum(1).argmax(1)  # each row's last real token
    hidden_last = hidden[torch.arange(rows), last]
    next_pos = position_ids.amax(dim=(0, 2)) + 1  # (B,)
    sample_ids, block_ids = layout.sample_ids, layout.block_ids
    new_sample = sample_ids[torch.arange(rows), last][:, None]  # each row's sample id
    for _ in range(max_new_tokens):
        token = next_token(decoder.logits(hidden_last), temperature, top_p, generator)
        yield token
        sample_ids = torch.cat([sample_ids, new_sample], dim=1)
        block_ids = torch.cat([block_ids, torch.zeros_like(new_sample)], dim=1)
        positions = next_pos[None, :, None].expand(3, rows, 1)
        next_pos = next_pos + 1
        mask = model.attention_mask(TokenLayout(sample_ids, block_ids), q_start=cache.length)
        hidden_last = decoder(decoder.embed(token[:, None]), positions, mask, cache=cache)[:, -1]


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
    """Yield new token ids for one sequence, stopping after a token in stop_ids."""
    steps = generate_tokens(
        model, prefix_embeds, position_ids, layout, max_new_tokens, temperature, top_p, generator
    )
    for token in steps:
        token_id = int(token[0])
        yield token_id
        if token_id in stop_ids:
            return


def decode_batch(
    model,
    prefix_embeds: torch.Tensor,
    position_ids: torch.Tensor,
    layout: TokenLayout,
    max_new_tokens: int | Sequence[int],
    stop_ids: set[int],
    on_token: Callable[[], None] | None = None,
) -> list[list[int]]:
    """Greedy answers for B prompts at once; each row ends at (and excludes) its first stop token, or
    after its own token limit (`max_new_tokens`: one for all rows, or one per row). `on_token()` runs
    after each decoding step; an exception it raises stops the decode."""
    rows = prefix_embeds.shape[0]
    limits = [max_new_tokens] * rows if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != rows:
        raise ValueError(f"got {len(limits)} token limits for {rows} prompts")
    answers: list[list[int]] = [[] for _ in range(rows)]
    done = [limit <= 0 for limit in limits]
    for token in generate_tokens(model, prefix_embeds, position_ids, layout, max(limits, default=0)):
        for r, t in enumerate(token.tolist()):
            if not done[r]:
                if t in stop_ids:
                    done[r] = True
                else:
                    answers[r].append(t)
                    done[r] = len(answers[r]) >= limits[r]
        if all(done):
            break
        if on_token is not None:
            on_token()
    return answers
