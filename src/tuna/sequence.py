"""Samples → token ids, visual slots, 3D positions, mask layout and loss targets; packing.

A sample is a list of segments: `Text` (token ids, optionally supervised) and `Visual` (an image or
video, clean or noisy). Each visual becomes one block in the sequence:

    <|vision_start|> [timestep token] [visual tokens, (f, h, w) row-major] <|vision_end|>

The timestep token and the visual tokens form the block that attends bidirectionally within itself
(`TokenLayout.block_ids`); the start/end markers are ordinary causal text tokens. Several samples may be
packed into one row: each keeps its own positions (restarting at 0) and never attends to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from tuna.config import TokenConfig, VAEConfig
from tuna.model.masks import TokenLayout
from tuna.model.rope import text_positions, visual_block_positions

IGNORE = -100  # target value for positions without a next-token loss


@dataclass
class Text:
    ids: list[int]
    supervised: bool = False  # next-token loss on these tokens (answers, captions; never prompts)


@dataclass
class Visual:
    """An image (F = 1) or a video (F = 1 + 4k): pixels (3, F, H, W) in [-1, 1], or latents (C, f, h, w)."""

    pixels: torch.Tensor | None = None
    noisy: bool = False  # a generation target: noised during training, predicted by the flow head
    latents: torch.Tensor | None = None  # normalised VAE latents, when already encoded


Segment = Text | Visual


@dataclass
class VisualBlock:
    row: int
    start: int  # index of the block's timestep token in its row
    grid: tuple[int, int, int]  # latent (frames, height, width)
    noisy: bool
    visual: int  # index into TunaBatch.visuals

    @property
    def num_tokens(self) -> int:
        f, h, w = self.grid
        return f * h * w


@dataclass
class TunaBatch:
    input_ids: torch.Tensor  # (B, L) text ids; visual positions hold image_pad_id and are never embedded
    targets: torch.Tensor  # (B, L) next token to predict from each position, or IGNORE
    position_ids: torch.Tensor  # (3, B, L) temporal/height/width ids for 3D-RoPE
    layout: TokenLayout  # sample_ids / block_ids (block k ≥ 1 is self.blocks[k − 1])
    blocks: list[VisualBlock] = field(default_factory=list)
    visuals: list[Visual] = field(default_factory=list)

    @property
    def num_supervised_tokens(self) -> int:
        return int((self.targets != IGNORE).sum())

    def to(self, device: torch.device | str) -> TunaBatch:
        visuals = [
            Visual(
                pixels=None if v.pixels is None else v.pixels.to(device),
                noisy=v.noisy,
                latents=None if v.latents is None else v.latents.to(device),
            )
            for v in self.visuals
        ]
        layout = TokenLayout(self.layout.sample_ids.to(device), self.layout.block_ids.to(device))
        return TunaBatch(
            self.input_ids.to(device),
            self.targets.to(device),
            self.position_ids.to(device),
            layout,
            self.blocks,
            visuals,
        )


def latent_grid(visual: Visual, vae: VAEConfig) -> tuple[int, int, int]:
    """The latent (f, h, w) a visual occupies, validating pixel shapes against the VAE's strides."""
    if visual.latents is not None:
        if visual.latents.ndim != 4 or visual.latents.shape[0] != vae.z_dim:
            raise ValueError(f"latents must be (C={vae.z_dim}, f, h, w), got {tuple(visual.latents.shape)}")
        return tuple(visual.latents.shape[1:])  # type: ignore[return-value]
    if visual.pixels is None:
        raise ValueError("a Visual needs pixels (3, F, H, W) or latents (C, f, h, w)")
    pixels = visual.pixels
    if pixels.ndim == 3:  # (3, H, W) image
        pixels = pixels[:, None]
    if pixels.ndim != 4 or pixels.shape[0] != 3:
        raise ValueError(
            f"pixels must be (3, F, H, W) or (3, H, W) with 3 RGB channels, got {tuple(visual.pixels.shape)}"
        )
    frames, height, width = pixels.shape[1:]
    st, ss = vae.scale_factor_temporal, vae.scale_factor_spatial
    if (frames - 1) % st:
        raise ValueError(f"videos need 1 + {st}k frames (1, {1 + st}, {1 + 2 * st}, …), got {frames}")
    if height % ss or width % ss or height == 0 or width == 0:
        raise ValueError(f"image sides must be positive multiples of {ss}, got {height}×{width}")
    return (1 + (frames - 1) // st, height // ss, width // ss)


@dataclass
class _Built:
    ids: list[int]
    targets: list[int]
    positions: torch.Tensor  # (3, n)
    local_blocks: list[tuple[int, int, tuple[int, int, int], Visual]]  # (local block no, start, grid, visual)
    block_of: list[int]  # local block number per token (0 = text)


def build_sample(segments: Sequence[Segment], tokens: TokenConfig, vae: VAEConfig) -> _Built:
    if not segments:
        raise ValueError("a sample needs at least one segment")
    ids: list[int] = []
    supervised: list[bool] = []
    block_of: list[int] = []
    positions: list[torch.Tensor] = []
    blocks = []
    next_pos = 0

    def add_text(token_ids: Sequence[int], sup: bool) -> None:
        nonlocal next_pos
        ids.extend(token_ids)
        supervised.extend([sup] * len(token_ids))
        block_of.extend([0] * len(token_ids))
        positions.append(text_positions(next_pos, len(token_ids)))
        next_pos += len(token_ids)

    for seg in segments:
        if isinstance(seg, Text):
            if len(seg.ids) == 0:
                raise ValueError("a Text segment is empty; expected at least one token id")
            add_text(seg.ids, seg.supervised)
        elif isinstance(seg, Visual):
            grid = latent_grid(seg, vae)
            add_text([tokens.vision_start_id], False)
            number = len(blocks) + 1
            start = len(ids)
            n = 1 + grid[0] * grid[1] * grid[2]  # timestep token + visual tokens
            ids.extend([tokens.image_pad_id] * n)
            supervised.extend([False] * n)
            block_of.extend([number] * n)
            block_pos, next_pos = visual_block_positions(next_pos, *grid)
            positions.append(block_pos)
            blocks.append((number, start, grid, seg))
            add_text([tokens.vision_end_id], False)
        else:
            raise TypeError(f"segments must be Text or Visual, got {type(seg).__name__}")
    # The token at i is predicted from position i − 1; a sample's first token has no predictor.
    targets = [IGNORE] * len(ids)
    for i in range(1, len(ids)):
        if supervised[i]:
            targets[i - 1] = ids[i]
    return _Built(ids, targets, torch.cat(positions, dim=1), blocks, block_of)


def pack(lengths: Sequence[int], max_len: int) -> list[list[int]]:
    """First-fit-decreasing packing of sample lengths into rows of at most max_len tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if lengths[i] > max_len:
            raise ValueError(f"sample {i} has {lengths[i]} tokens, more than the packing length {max_len}")
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(max_len - lengths[i])
    return [sorted(r) for r in rows]


def build_batch(
    samples: Sequence[Sequence[Segment]],
    tokens: TokenConfig,
    vae: VAEConfig,
    pack_len: int | None = None,
    pad_to_multiple: int = 1,
) -> TunaBatch:
    """Build a padded batch: one sample per row, or packed into rows of `pack_len` tokens."""
    if not samples:
        raise ValueError("a batch needs at least one sample")
    built = [build_sample(s, tokens, vae) for s in samples]
    rows = pack([len(b.ids) for b in built], pack_len) if pack_len else [[i] for i in range(len(built))]
    length = max(sum(len(built[i].ids) for i in row) for row in rows)
    length = -(-length // pad_to_multiple) * pad_to_multiple
    shape = (len(rows), length)
    input_ids = torch.full(shape, tokens.pad_id, dtype=torch.long)
    targets = torch.full(shape, IGNORE, dtype=torch.long)
    position_ids = torch.zeros((3, *shape), dtype=torch.long)
    sample_ids = torch.full(shape, -1, dtype=torch.long)
    block_ids = torch.zeros(shape, dtype=torch.long)
    blocks: list[VisualBlock] = []
    visuals: list[Visual] = []
    for r, row in enumerate(rows):
        offset = 0
        for sample_no, i in enumerate(row):
            b = built[i]
            n = len(b.ids)
            span = slice(offset, offset + n)
            input_ids[r, span] = torch.tensor(b.ids)
            targets[r, span] = torch.tensor(b.targets)
            position_ids[:, r, span] = b.positions
            sample_ids[r, span] = sample_no
            # Local block numbers become batch-wide ones: block k ≥ 1 is blocks[k − 1].
            local_to_global = {number: len(blocks) + j + 1 for j, (number, *_) in enumerate(b.local_blocks)}
            block_ids[r, span] = torch.tensor([local_to_global.get(k, 0) for k in b.block_of])
            for _, start, grid, visual in b.local_blocks:
                blocks.append(VisualBlock(r, offset + start, grid, visual.noisy, len(visuals)))
                visuals.append(visual)
            offset += n
    return TunaBatch(input_ids, targets, position_ids, TokenLayout(sample_ids, block_ids), blocks, visuals)
