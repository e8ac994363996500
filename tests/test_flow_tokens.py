"""The flow head runs on the tokens it needs (tuna.model.flow_tokens) and predicts what it would over the
whole batch."""

import pytest
import torch

from tuna.model.flow_tokens import flow_rows, visual_token_index
from tuna.model.masks import PAD_SAMPLE
from tuna.sequence import Text, Visual, build_batch


def image(gen, frames=1):
    return Visual(pixels=torch.rand(3, frames, 32, 32, generator=gen) * 2 - 1, noisy=True)


def packed_batch(cfg):
    gen = torch.Generator().manual_seed(0)
    clean = lambda: Visual(pixels=torch.rand(3, 1, 32, 32, generator=gen) * 2 - 1)  # noqa: E731
    samples = [
        [clean(), Text([40, 41, 42], supervised=True)],  # captioning: nothing for the flow head
        [Text([50, 51]), image(gen)],  # T2I
        [Text([60]), clean(), image(gen), Text([61, 62], supervised=True)],  # edit, then text after it
        [Text([7, 8, 9]), Text([10, 11], supervised=True)],  # text only
        [Text([70]), image(gen, frames=5)],  # T2V
        [Text([80]), image(gen), Text([81]), image(gen), Text([82, 83])],  # two noisy blocks, text after
    ]
    return build_batch(samples, cfg.tokens, cfg.vae, pack_len=64)


def test_gathers_each_sample_with_a_noisy_block_up_to_its_last_one(tiny_cfg):
    batch = packed_batch(tiny_cfg)
    rows = flow_rows(batch.layout, batch.position_ids, batch.blocks)
    width = batch.layout.length
    # Every gathered range is one whole sample's beginning, up to the end of its last noisy block.
    expected = {}
    for b in batch.blocks:
        if b.noisy:
            sample = int(batch.layout.sample_ids[b.row, b.start])
            start = int((batch.layout.sample_ids[b.row] == sample).nonzero()[0])
            key = (b.row, sample)
            expected[key] = (start, max(expected.get(key, (0, 0))[1], b.start + 1 + b.num_tokens))
    got = set()
    for r in range(rows.index.shape[0]):
        for sample in rows.layout.sample_ids[r].unique().tolist():
            if sample == PAD_SAMPLE:
                continue
            slots = (rows.layout.sample_ids[r] == sample).nonzero()[:, 0]
            assert torch.equal(slots, torch.arange(slots[0], slots[-1] + 1))  # contiguous
            source = rows.index[r, slots]
            row, first = divmod(int(source[0]), width)
            assert torch.equal(source, row * width + torch.arange(first, first + len(slots)))  # in order
            got.add((row, int(batch.layout.sample_ids[row, first]), first, first + len(slots)))
    assert got == {(row, sample, start, end) for (row, sample), (start, end) in expected.items()}
    # The caption, the text-only sample and the text after the last noisy blocks are left out.
    assert rows.index.numel() < int((batch.layout.sample_ids != PAD_SAMPLE).sum())
    # Ids and positions travel with their tokens; padding is text of no sample.
    real = rows.layout.sample_ids != PAD_SAMPLE
    flat_blocks = batch.layout.block_ids.flatten()
    assert torch.equal(rows.layout.block_ids[real], flat_blocks[rows.index[real]])
    assert (rows.layout.block_ids[~real] == 0).all()
    assert torch.equal(rows.position_ids[:, real], batch.position_ids.flatten(1)[:, rows.index[real]])
    # Noisy visual tokens land where the velocity is read, in the whole batch's order.
    b_rows, b_cols = visual_token_index([b for b in batch.blocks if b.noisy], "cpu")
    assert torch.equal(rows.index[rows.out_rows, rows.out_cols], b_rows * width + b_cols)


def test_the_flow_head_predicts_on_gathered_rows_what_it_predicts_on_the_whole_batch(tiny_model, tiny_cfg):
    model = tiny_model
    with torch.no_grad():  # open the adaLN-Zero gates: a zero-initialised head predicts 0 everywhere
        for p in model.flow_head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    batch = packed_batch(tiny_cfg)
    latents = model.encode_latents(batch.visuals)
    t = torch.rand(len(latents))
    embeds = model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t))
    mask = model.attention_mask(batch.layout)
    hidden = model.decoder(embeds, batch.position_ids, mask)
    noisy = [b for b in batch.blocks if b.noisy]
    whole = model.flow_head(hidden, batch.position_ids, mask, batch.layout.block_ids, t,
                            *visual_token_index(noisy, "cpu"))  # fmt: skip
    rows = flow_rows(batch.layout, batch.position_ids, batch.blocks)
    gathered = model.flow_head(rows.gather(hidden), rows.position_ids, model.attention_mask(rows.layout),
                               rows.layout.block_ids, t, rows.out_rows, rows.out_cols)  # fmt: skip
    assert whole.abs().mean() > 1e-3
    torch.testing.assert_close(gathered, whole, rtol=1e-5, atol=1e-5)


def test_a_batch_without_noisy_blocks_is_refused(tiny_cfg):
    batch = build_batch([[Text([1, 2], supervised=True)]], tiny_cfg.tokens, tiny_cfg.vae)
    with pytest.raises(ValueError, match="at least one noisy block"):
        flow_rows(batch.layout, batch.position_ids, batch.blocks)
