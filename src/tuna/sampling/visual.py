"""Visual generation (T2I, T2V, editing) with the prompt's keys/values computed once.

Under Tuna's mask no text token attends to a later visual block, so everything before the block being
denoised — prompt, clean source image — is identical at every step. It is prefilled once into frozen
KV caches (decoder and flow head) shared by all steps; each step runs only the block's tokens.
Rows are batched: CFG's conditional and unconditional prompts are rows of one forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from tuna.model.decoder import KVCache
from tuna.model.flow_tokens import visual_token_index
from tuna.model.masks import TokenLayout
from tuna.model.noise import schedule_shift
from tuna.model.rope import visual_block_positions
from tuna.sampling.flow import StepCallback, VelocityFn, denoise, get_noise, get_schedule, guidance
from tuna.sequence import Segment, Text, Visual, build_batch


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
        embeds = model.embed_clean(batch)  # edit sources are clean (t = 1)
        t = torch.ones(len(batch.visuals), device=embeds.device)
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


def block_velocity(model, prefix: PrefixCache, x: torch.Tensor, t: float) -> torch.Tensor:
    """Velocity for latents x (B, C, f, h, w) at time t, each row continuing its cached prompt."""
    rows, (c, f, h, w) = x.shape[0], x.shape[1:]
    n = f * h * w
    device = x.device
    t_rows = torch.full((rows,), t, device=device)
    # The ODE state stays fp32 (set by the caller); the model runs in its own dtype.
    embeds = model.embed_visuals(x.to(next(model.encoder.parameters()).dtype), t_rows)  # (B, 1 + n, D)
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
    return v.float().reshape(rows, f, h, w, c).permute(0, 4, 1, 2, 3)


def recompute_velocity(model, rows: Sequence[Sequence[Segment]], x: torch.Tensor, t: float) -> torch.Tensor:
    """Reference velocity without any cache: each row's prompt + noisy block recomputed in full."""
    dtype = next(model.encoder.parameters()).dtype
    samples = [list(r) + [Visual(latents=x[i].to(dtype), noisy=True)] for i, r in enumerate(rows)]
    batch = build_batch(samples, model.cfg.tokens, model.cfg.vae).to(model_device(model))
    t_all = torch.tensor([t if v.noisy else 1.0 for v in batch.visuals], device=x.device)
    latents = model.encode_latents(batch.visuals)
    embeds = model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t_all))
    mask = model.attention_mask(batch.layout)
    hidden = model.decoder(embeds, batch.position_ids, mask)
    rows_idx, cols = visual_token_index([b for b in batch.blocks if b.noisy], x.device)
    v = model.flow_head(hidden, batch.position_ids, mask, batch.layout.block_ids, t_all, rows_idx, cols)
    c, f, h, w = x.shape[1:]
    return v.float().reshape(len(rows), f, h, w, c).permute(0, 4, 1, 2, 3)


def guided_velocity(
    model,
    rows: Sequence[Sequence[Segment]],
    combine: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    reuse_prefix: bool = True,
) -> VelocityFn:
    """The guided velocity of n latents: `rows` holds g groups of n prompts each (e.g. [cond…, uncond…]),
    all evaluated in one forward; `combine` maps the (g·n, C, f, h, w) velocities to the n guided ones."""
    if len(rows) % n:
        raise ValueError(f"{len(rows)} prompt rows do not split into groups of {n}")
    groups = len(rows) // n
    prefix = PrefixCache(model, rows) if reuse_prefix else None

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        x = x.repeat(groups, 1, 1, 1, 1)
        if prefix is None:  # the official code's way: the whole sequence, every step
            return combine(recompute_velocity(model, rows, x, t))
        return combine(block_velocity(model, prefix, x, t))

    return velocity


def solve(
    model,
    rows: Sequence[Sequence[Segment]],
    combine: Callable[[torch.Tensor], torch.Tensor],
    grid: tuple[int, int, int],
    seeds: Sequence[int],
    steps: int,
    shift: float | None,
    solver: str,
    progress: bool = False,
    reuse_prefix: bool = True,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise len(seeds) latents; `rows` are the prompts, grouped by guidance role (`guided_velocity`)."""
    velocity = guided_velocity(model, rows, combine, len(seeds), reuse_prefix)
    shape = (model.cfg.latent_channels, *grid)
    x = torch.cat([get_noise((1, *shape), seed, device=model_device(model)) for seed in seeds])  # fp32
    if shift is None:  # the shift the model was trained with for this many tokens
        shift = schedule_shift(model.cfg.noise, math.prod(grid))
    return denoise(velocity, x, get_schedule(steps, shift), solver, progress, on_step)


@torch.no_grad()
def sample_latents(
    model,
    prompts: Sequence[Sequence[Segment]],
    negatives: Sequence[Sequence[Segment]] | None,
    grid: tuple[int, int, int],
    steps: int = 50,
    cfg_scale: float = 7.5,
    shift: float | None = None,
    seeds: Sequence[int] = (0,),
    solver: str = "euler",
    progress: bool = False,
    reuse_prefix: bool = True,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """T2I / T2V latents (n, C, f, h, w): conditional and negative rows share every forward (CFG).

    With cfg_scale = 1 (or no negatives) only the conditional rows run: v = v_c exactly.
    """
    n = len(prompts)
    if len(seeds) != n:
        raise ValueError(f"got {n} prompts but {len(seeds)} seeds")
    if cfg_scale == 1.0 or negatives is None:
        return solve(
            model, prompts, lambda v: v, grid, seeds, steps, shift, solver, progress, reuse_prefix, on_step
        )
    rows = list(prompts) + list(negatives)
    combine = lambda v: guidance(v[:n], v[n:], cfg_scale)  # noqa: E731
    return solve(model, rows, combine, grid, seeds, steps, shift, solver, progress, reuse_prefix, on_step)


@torch.no_grad()
def sample_edit(
    model,
    full: Sequence[Sequence[Segment]],
    image_only: Sequence[Sequence[Segment]],
    empty: Sequence[Sequence[Segment]],
    grid: tuple[int, int, int],
    steps: int = 50,
    text_cfg: float = 5.0,
    image_cfg: float = 1.5,
    shift: float | None = None,
    seeds: Sequence[int] = (0,),
    solver: str = "euler",
    progress: bool = False,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Editing latents (n, C, f, h, w) with separate text and image guidance (InstructPix2Pix's
    decomposition), n edits at once (row i of each list is edit i, noise from seeds[i]):

    v = v(∅) + s_img·(v(image) − v(∅)) + s_txt·(v(image, text) − v(image)).
    With both scales 1 this is the fully conditional velocity.
    """
    n = len(seeds)
    if not len(full) == len(image_only) == len(empty) == n:
        raise ValueError(
            f"editing needs one row per seed: {len(full)}, {len(image_only)} and {len(empty)} rows for {n} seeds"
        )
    if text_cfg == 1.0 and image_cfg == 1.0:
        return solve(
            model, list(full), lambda v: v, grid, seeds, steps, shift, solver, progress, on_step=on_step
        )

    def combine(v: torch.Tensor) -> torch.Tensor:
        v_full, v_image, v_empty = v[:n], v[n : 2 * n], v[2 * n :]
        return v_empty + image_cfg * (v_image - v_empty) + text_cfg * (v_full - v_image)

    rows = [*full, *image_only, *empty]
    return solve(model, rows, combine, grid, seeds, steps, shift, solver, progress, on_step=on_step)
