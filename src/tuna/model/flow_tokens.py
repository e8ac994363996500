"""The tokens of a training batch the flow head has to see, gathered into fewer and shorter rows.

The flow head predicts velocity only at noisy visual tokens, and under Tuna's mask a token sees only
earlier tokens of its own sample and the rest of its own visual block. So of each sample with a noisy
block the head needs the tokens up to the end of its last noisy block, and nothing of understanding or
text-only samples. Those ranges are packed again (first-fit decreasing, rows no longer than the batch's);
positions and block ids travel with the tokens, and every range keeps a sample id of its own, so the
head computes what it would over the whole batch — on 0.56 of the slots of a tuna-shapes stage-2 batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tuna.model.masks import PAD_SAMPLE, TEXT_BLOCK, TokenLayout
from tuna.sequence import VisualBlock, pack


@dataclass
class FlowRows:
    index: torch.Tensor  # (B', L') each slot's token in the flattened (B·L) batch; 0 on padding
    layout: TokenLayout  # (B', L') a sample id per gathered range (PAD_SAMPLE on padding), block ids
    position_ids: torch.Tensor  # (3, B', L')
    out_rows: torch.Tensor  # (M,) where each noisy visual token landed, blocks in batch order
    out_cols: torch.Tensor  # (M,)

    def gather(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L, D) states of the whole batch → (B', L', D) states of the gathered tokens."""
        return hidden.flatten(0, 1)[self.index]


def visual_token_index(blocks: list[VisualBlock], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the visual tokens (timestep tokens excluded) of `blocks`, in block order."""
    rows = torch.cat([torch.full((b.num_tokens,), b.row) for b in blocks])
    cols = torch.cat([torch.arange(b.start + 1, b.start + 1 + b.num_tokens) for b in blocks])
    return rows.to(device), cols.to(device)


def flow_rows(layout: TokenLayout, position_ids: torch.Tensor, blocks: list[VisualBlock]) -> FlowRows:
    """Gather, for the flow head, each sample with a noisy block up to that block's end.

    The noisy visual tokens (timestep tokens excluded) come out at (out_rows, out_cols) in the order
    `visual_token_index` gives them in the whole batch, so velocities line up with their targets.
    """
    device = layout.sample_ids.device
    sample_ids = layout.sample_ids.cpu()  # one copy: the ranges are found on the host
    width = layout.length
    ends: dict[tuple[int, int], int] = {}
    for b in blocks:
        if b.noisy:
            key = (b.row, int(sample_ids[b.row, b.start]))
            ends[key] = max(ends.get(key, 0), b.start + 1 + b.num_tokens)
    if not ends:
        raise ValueError("flow_rows needs at least one noisy block")
    starts = {key: int((sample_ids[key[0]] == key[1]).nonzero()[0]) for key in ends}
    ranges = [(row, starts[row, sample], end) for (row, sample), end in ends.items()]
    bins = pack([end - start for _, start, end in ranges], width)
    length = max(sum(ranges[i][2] - ranges[i][1] for i in row) for row in bins)

    index = torch.zeros(len(bins), length, dtype=torch.long)
    new_samples = torch.full((len(bins), length), PAD_SAMPLE, dtype=torch.long)
    landed = torch.full((sample_ids.numel(),), -1, dtype=torch.long)  # batch slot → gathered slot
    for r, row in enumerate(bins):
        offset = 0
        for i in row:
            source_row, start, end = ranges[i]
            n = end - start
            source = source_row * width + torch.arange(start, end)
            index[r, offset : offset + n] = source
            new_samples[r, offset : offset + n] = i
            landed[source] = r * length + offset + torch.arange(n)
            offset += n

    rows, cols = visual_token_index([b for b in blocks if b.noisy], "cpu")
    out = landed[rows * width + cols]
    index = index.to(device)
    padding = (new_samples == PAD_SAMPLE).to(device)
    block_ids = layout.block_ids.flatten()[index].masked_fill(padding, TEXT_BLOCK)
    return FlowRows(
        index=index,
        layout=TokenLayout(new_samples.to(device), block_ids),
        position_ids=position_ids.flatten(1)[:, index],
        out_rows=(out // length).to(device),
        out_cols=(out % length).to(device),
    )
