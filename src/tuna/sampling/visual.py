"""Visual generation (T2I, T2V, editing) with the prompt's keys/values computed once.

Under Tuna's mask no text token attends to a later visual block, so everything before the block being
denoised — prompt, clean source image — is identical at every step. It is prefilled once into frozen
KV caches (decoder and flow head) shared by all steps; each step runs only the block's tokens.
Rows are batched: CFG's conditional and unconditional prompts are rows of one forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tuna.model.decoder import KVCache
from tuna.model.masks import TokenLayout
from tuna.model.rope import visual_block_positions
from tuna.sequence import Segment, Text, TunaBatch, build_batch


class PrefixCache:
    """Frozen decoder + flow-head caches for rows of prompts, and where each row's block begins."""

    def __init__(self, model, prompts: Sequence[Sequence[Segment]]):
        cfg = model.cfg
        batch = build_batch(
            [list(p) + [Text([cfg.tokens.vision_start_id])] for p in prompts], cfg.tokens, cfg.vae
        ).to(model_device(model))
        self.batch = batch
        self.decoder_cache = KVCache(len(model.decoder.layers))
        self.head_cache = KVCache(len(model.flow_head.blocks))
        embeds, t = embed_prefix(model, batch)
        mask = model.attention_mask(batch.layout)
        hidden = model.decoder(embeds, batch.position_ids, mask, cache=self.decoder_cache)
        no_out = torch.zeros(0, dtype=torch.long, device=hidden.device)
        model.flow_head(
            hidden, batch.position_ids, mask, batch.layout.block_ids, t, no_out, no_out, cache=self.head_cache
        )
        self.decoder_cache.frozen = True
        self.head_cache.frozen = True
        # Each row's block continues that row's positions (prompts differ in length; padding is inert).
        self.next_pos = [int(p.max()) + 1 for p in batch.position_ids.amax(dim=0)]
        self.num_prefix_blocks = len(batch.blocks)

    @property
    def length(self) -> int:
        return self.batch.input_ids.shape[1]


def model_device(model) -> torch.device:
    return next(model.decoder.parameters()).device


def embed_prefix(model, batch: TunaBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of a prompt batch whose visuals (edit sources) are clean (t = 1)."""
    t = torch.ones(len(batch.visuals), device=batch.input_ids.device)
    if not batch.visuals:
        return model.decoder.embed(batch.input_ids), t
    latents = model.encode_latents(batch.visuals)
    return model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t)), t


def block_velocity(model, prefix: PrefixCache, x: torch.Tensor, t: float) -> torch.Tensor:
    """Velocity for latents x (B, C, f, h, w) at time t, each row continuing its cached prompt."""
    rows, (c, f, h, w) = x.shape[0], x.shape[1:]
    n = f * h * w
    device = x.device
    t_rows = torch.full((rows,), t, device=device)
    embeds = model.embed_visuals(x, t_rows)  # (B, 1 + n, D)
    positions = torch.stack([visual_block_positions(p, f, h, w)[0] for p in prefix.next_pos], dim=1).to(
        device
    )
    block_no = prefix.num_prefix_blocks + 1
    layout = TokenLayout(
        torch.cat(
            [prefix.batch.layout.sample_ids, torch.zeros(rows, 1 + n, dtype=torch.long, device=device)], 1
        ),
        torch.cat([prefix.batch.layout.block_ids, torch.full((rows, 1 + n), block_no, device=device)], 1),
    )
    mask = model.attention_mask(layout, q_start=prefix.length)
    hidden = model.decoder(embeds, positions, mask, cache=prefix.decoder_cache)
    out_rows = torch.arange(rows, device=device).repeat_interleave(n)
    out_cols = torch.arange(1, 1 + n, device=device).repeat(rows)
    # Block k of the full layout is conditioned on table row k − 1: prefix blocks are clean, this one at t.
    table = torch.cat([torch.ones(prefix.num_prefix_blocks, device=device), t_rows[:1]])
    cond = torch.full((rows, 1 + n), block_no, device=device)
    v = model.flow_head(hidden, positions, mask, cond, table, out_rows, out_cols, cache=prefix.head_cache)
    return v.reshape(rows, f, h, w, c).permute(0, 4, 1, 2, 3)


@torch.no_grad()
def sample_latents(
    model,
    prompt: Sequence[Segment],
    negative: Sequence[Segment] | None,
    grid: tuple[int, int, int],
    steps: int = 50,
    cfg_scale: float = 7.5,
    shift: float = 3.0,
    seed: int = 0,
    solver: str = "euler",
) -> torch.Tensor:
    """Latents (1, C, f, h, w) for one prompt; CFG batches the conditional and negative rows."""
    from tuna.sampling.flow import denoise, get_noise, get_schedule, guidance

    guided = cfg_scale != 1.0 and negative is not None
    prefix = PrefixCache(model, [prompt, negative] if guided else [prompt])
    dtype = next(model.decoder.parameters()).dtype
    x = get_noise((1, model.cfg.latent_channels, *grid), seed, device=model_device(model), dtype=dtype)

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        if not guided:
            return block_velocity(model, prefix, x, t)
        v = block_velocity(model, prefix, x.expand(2, *x.shape[1:]), t)
        return guidance(v[:1], v[1:], cfg_scale)

    return denoise(velocity, x, get_schedule(steps, shift), solver)
