import random

import pytest
import torch
from torch.nn.attention.flex_attention import create_mask

from tuna.config import DecoderConfig
from tuna.model.decoder import QwenDecoder
from tuna.model.masks import AttentionMask, TokenLayout, attention, build_attention_mask, dense_mask
from tuna.model.rope import text_positions, visual_block_positions

# Eager flex on CPU warns that it is unfused; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")

TINY = DecoderConfig(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    rope_theta=1e4,
    mrope_section=(1, 1, 2),
)


def random_layout(seed: int, batch: int = 3, max_samples: int = 3, max_pad: int = 4):
    """Random packed rows: samples of [text, visual block, random text/visual segments...], then padding.

    Row 0 always packs at least two samples. Positions restart per sample, as the sequence builder does.
    Returns (TokenLayout, position_ids (3, B, L)).
    """
    rng = random.Random(seed)
    rows = []
    for r in range(batch):
        samples, blocks, positions, block = [], [], [], 0
        for s in range(rng.randint(2 if r == 0 else 1, max_samples)):
            pos = 0
            kinds = ["text", "visual"] + [rng.choice(["text", "visual"]) for _ in range(rng.randint(0, 2))]
            for kind in kinds:
                if kind == "text":
                    n = rng.randint(1, 4)
                    ids, block_id, pos_next = text_positions(pos, n), 0, pos + n
                else:
                    block += 1
                    f, h, w = rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, 3)
                    ids, pos_next = visual_block_positions(pos, f, h, w)
                    block_id = block
                samples += [s] * ids.shape[1]
                blocks += [block_id] * ids.shape[1]
                positions.append(ids)
                pos = pos_next
        rows.append((samples, blocks, torch.cat(positions, dim=1)))
    length = max(len(s) for s, _, _ in rows) + rng.randint(0, max_pad)
    sample_ids = torch.full((batch, length), -1, dtype=torch.long)
    block_ids = torch.zeros(batch, length, dtype=torch.long)
    position_ids = torch.zeros(3, batch, length, dtype=torch.long)
    for r, (samples, blocks, pos) in enumerate(rows):
        n = len(samples)
        sample_ids[r, :n], block_ids[r, :n], position_ids[:, r, :n] = (
            torch.tensor(samples),
            torch.tensor(blocks),
            pos,
        )
    return TokenLayout(sample_ids, block_ids), position_ids


def brute_force_mask(layout: TokenLayout, q_start: int) -> torch.Tensor:
    s, b = layout.sample_ids.tolist(), layout.block_ids.tolist()
    batch, length = layout.sample_ids.shape
    out = torch.zeros(batch, length - q_start, length, dtype=torch.bool)
    for r in range(batch):
        for q in range(q_start, length):
            for k in range(length):
                same_sample = s[r][q] == s[r][k]
                same_block = b[r][q] != 0 and b[r][q] == b[r][k]
                out[r, q - q_start, k] = same_sample and (k <= q or same_block)
    return out


SEEDS = list(range(6))


@pytest.mark.parametrize("seed", SEEDS)
def test_dense_mask_is_the_rule(seed):
    layout, _ = random_layout(seed)
    q_start = random.Random(seed).randint(0, layout.length - 1)
    for start in (0, q_start):
        assert torch.equal(dense_mask(layout, start), brute_force_mask(layout, start))


@pytest.mark.parametrize("seed", SEEDS)
def test_sdpa_and_flex_masks_equal_dense(seed):
    layout, _ = random_layout(seed)
    q_start = random.Random(seed + 100).randint(1, layout.length - 1)
    batch, length = layout.sample_ids.shape
    for start in (0, q_start):
        reference = dense_mask(layout, start)  # (B, Lq, Lk)
        sdpa = build_attention_mask(layout, "sdpa", start)
        assert sdpa.dense.shape == (batch, 1, length - start, length)
        assert torch.equal(sdpa.dense[:, 0], reference)

        block = 8
        flex = build_attention_mask(layout, "flex", start, block_size=block).block_mask
        element = create_mask(flex.mask_mod, batch, 1, length - start, length, device="cpu")
        assert torch.equal(element[:, 0], reference)
        # The block-sparse structure: a tile is visited iff some element in it may attend.
        pad_q, pad_k = -(length - start) % block, -length % block
        padded = torch.nn.functional.pad(reference, (0, pad_k, 0, pad_q))
        tiles = padded.unflatten(1, (-1, block)).unflatten(3, (-1, block)).any(dim=(2, 4))
        assert torch.equal(flex.to_dense()[:, 0].bool(), tiles)


def reference_attention(q, k, v, allowed):
    """Plain softmax attention with repeated KV heads; allowed (B, Lq, Lk)."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("backend", ["sdpa", "flex"])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_attention_matches_reference(seed, backend, kv_heads):
    layout, _ = random_layout(seed)
    batch, length = layout.sample_ids.shape
    torch.manual_seed(seed)
    for start in (0, length // 2):
        q = torch.randn(batch, 4, length - start, 8)
        k, v = torch.randn(2, batch, kv_heads, length, 8)
        out = attention(q, k, v, build_attention_mask(layout, backend, start))
        torch.testing.assert_close(
            out, reference_attention(q, k, v, dense_mask(layout, start)), atol=1e-5, rtol=1e-5
        )


def test_causal_shortcut():
    layout = TokenLayout.text(2, 9)
    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
    k, v = k[:, :2], v[:, :2]
    torch.testing.assert_close(
        attention(q, k, v, AttentionMask.causal()),
        reference_attention(q, k, v, dense_mask(layout)),
        atol=1e-5,
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="as many queries as keys"):
        attention(q[:, :, -1:], k, v, AttentionMask.causal())


def test_bad_backend():
    with pytest.raises(ValueError, match="backend"):
        build_attention_mask(TokenLayout.text(1, 3), "xformers")


# --------------------------------------------------------------------------------------------------
# End-to-end properties on a tiny decoder
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    model = QwenDecoder(TINY).eval()
    model.init_weights(std=0.2)
    return model


def run_pair(decoder, layout, positions, backend, perturb):
    """Outputs before and after `perturb` edits the input embeddings in place."""
    torch.manual_seed(1)
    embeds = torch.randn(*layout.sample_ids.shape, TINY.hidden_size)
    mask = build_attention_mask(layout, backend)
    with torch.no_grad():
        before = decoder(embeds, positions, mask)
        edited = embeds.clone()
        perturb(edited)
        after = decoder(edited, positions, mask)
    assert torch.isfinite(before).all() and torch.isfinite(after).all()
    return before, after, (after - before).abs().amax(-1)  # diff (B, L)


BACKENDS = ["sdpa", "flex"]


@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_later_tokens_never_change_earlier_text(decoder, seed, backend):
    layout, positions = random_layout(seed)
    rng = random.Random(seed)
    r = rng.randrange(layout.sample_ids.shape[0])
    real = (layout.sample_ids[r] >= 0).nonzero().flatten().tolist()
    p = rng.choice(real[1:])

    def perturb(x):
        x[r, p] += 3.0

    _, _, diff = run_pair(decoder, layout, positions, backend, perturb)
    blocks = layout.block_ids[r]
    for q in range(p):
        if blocks[p] == 0 or blocks[q] != blocks[p]:
            assert diff[r, q] <= 1e-6, f"token {q} changed by a later token {p}"
    assert diff[r, p] > 0
    other_rows = [i for i in range(layout.sample_ids.shape[0]) if i != r]
    assert (diff[other_rows] == 0).all()


@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_visual_token_reaches_its_whole_block(decoder, seed, backend):
    layout, positions = random_layout(seed)
    rng = random.Random(seed)
    r = 0
    block_id = rng.choice(sorted(set(layout.block_ids[r].tolist()) - {0}))
    members = (layout.block_ids[r] == block_id).nonzero().flatten()
    # Prefer a visual token after the timestep token (the block's first); a 1-token block has none.
    p = members[-1].item()

    def perturb(x):
        x[r, p] += 3.0

    _, _, diff = run_pair(decoder, layout, positions, backend, perturb)
    assert (diff[r, members] > 0).all(), "every token of the block (timestep included) must see the change"
    assert (diff[r, : members[0]] <= 1e-6).all()


@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_text_before_an_image_ignores_it(decoder, seed, backend):
    layout, positions = random_layout(seed)
    r = 0
    block = layout.block_ids[r]
    first = (block > 0).nonzero()[0].item()  # the first block's timestep token
    members = block == block[first]
    assert (block[:first] == 0).all() and first > 0

    def perturb(x):
        x[r, members] = torch.randn_like(x[r, members])

    _, _, diff = run_pair(decoder, layout, positions, backend, perturb)
    assert (diff[r, :first] <= 1e-6).all()
    assert (diff[r, members] > 0).all()


@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_samples_are_isolated(decoder, seed, backend):
    layout, positions = random_layout(seed)
    r = 0
    samples = layout.sample_ids[r]
    assert samples.max() >= 1

    def perturb(x):
        x[r, samples == 1] = torch.randn_like(x[r, samples == 1])

    _, _, diff = run_pair(decoder, layout, positions, backend, perturb)
    assert (diff[r, samples == 0] == 0).all(), "sample 0 must be identical"
    assert (diff[r, (samples != 1)] == 0).all()
    assert (diff[r, samples == 1] > 0).all()
