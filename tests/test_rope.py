import pytest
import torch

from tuna.model.rope import (
    apply_rope,
    inverse_frequencies,
    rope_cos_sin,
    text_positions,
    visual_block_positions,
)


def plain_1d_rope(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2's 1D RoPE written independently: positions (B, L) -> cos, sin (B, L, head_dim)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))  # (D/2,)
    freqs = (inv_freq[None, :, None] @ positions[:, None, :].float()).transpose(1, 2)  # (B, L, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def plain_rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


@pytest.mark.parametrize(
    "head_dim,theta,section",
    [(16, 10000.0, (2, 3, 3)), (16, 1e6, (8, 0, 0)), (128, 1e6, (16, 24, 24)), (64, 1e6, (0, 16, 16))],
)
def test_equal_ids_are_exactly_1d_rope(head_dim, theta, section):
    positions = torch.randint(0, 5000, (2, 7))  # (B, L)
    cos, sin = rope_cos_sin(positions.expand(3, -1, -1), head_dim, theta, section)
    ref_cos, ref_sin = plain_1d_rope(positions, head_dim, theta)
    assert cos.dtype == torch.float32 and cos.shape == (2, 7, head_dim)
    assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)
    x = torch.randn(2, 3, 7, head_dim)
    torch.testing.assert_close(apply_rope(x, cos, sin), plain_rotate(x, ref_cos, ref_sin), rtol=0, atol=0)


@pytest.mark.parametrize("section", [(2, 3, 3), (4, 2, 2), (1, 1, 6)])
def test_sections_select_the_intended_bands(section):
    head_dim, theta = 16, 10000.0
    half = head_dim // 2
    t, h, w = (torch.randint(0, 100, (1, 5)) for _ in range(3))
    cos, sin = rope_cos_sin(torch.stack([t, h, w]), head_dim, theta, section)
    inv = inverse_frequencies(head_dim, theta)
    bounds = [0, section[0], section[0] + section[1], half]
    for axis, ids in enumerate((t, h, w)):
        band = slice(bounds[axis], bounds[axis + 1])
        expected = ids[..., None].float() * inv[band]  # (1, L, band)
        for offset in (0, half):  # the rotate-half duplicate carries the same band
            cols = slice(band.start + offset, band.stop + offset)
            assert torch.equal(cos[..., cols], expected.cos())
            assert torch.equal(sin[..., cols], expected.sin())


def test_changing_one_axis_changes_only_its_band():
    head_dim, section = 16, (2, 3, 3)
    ids = torch.randint(0, 50, (3, 1, 4))
    base_cos, _ = rope_cos_sin(ids, head_dim, 1e4, section)
    for axis, (lo, hi) in enumerate([(0, 2), (2, 5), (5, 8)]):
        moved = ids.clone()
        moved[axis] += 7
        cos, _ = rope_cos_sin(moved, head_dim, 1e4, section)
        changed = (cos != base_cos).any(dim=(0, 1))  # (head_dim,)
        expected = torch.zeros(head_dim, dtype=torch.bool)
        expected[lo:hi] = expected[lo + 8 : hi + 8] = True
        assert torch.equal(changed, expected)


def test_rope_rejects_bad_section():
    with pytest.raises(ValueError, match="sum"):
        rope_cos_sin(torch.zeros(3, 1, 2, dtype=torch.long), 16, 1e4, (2, 2, 2))


def test_text_positions():
    ids = text_positions(5, 4)
    assert ids.shape == (3, 4) and ids.dtype == torch.long
    assert torch.equal(ids, torch.tensor([[5, 6, 7, 8]] * 3))


@pytest.mark.parametrize("frames,height,width", [(1, 2, 3), (2, 3, 2), (1, 1, 1), (3, 1, 2)])
def test_visual_block_positions(frames, height, width):
    start = 11
    ids, next_start = visual_block_positions(start, frames, height, width)
    assert ids.shape == (3, 1 + frames * height * width) and ids.dtype == torch.long
    assert ids[:, 0].tolist() == [start] * 3
    expected = [
        [start + 1 + f, start + 1 + i, start + 1 + j]
        for f in range(frames)
        for i in range(height)
        for j in range(width)
    ]
    assert ids[:, 1:].T.tolist() == expected
    assert next_start == start + 1 + max(frames, height, width)
    assert next_start > ids.max()
