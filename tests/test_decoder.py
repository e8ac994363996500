import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from tuna.config import DecoderConfig
from tuna.model.decoder import KVCache, QwenDecoder
from tuna.model.hf.qwen2 import decoder_config_from_hf, default_mrope_section, load_qwen2
from tuna.model.masks import AttentionMask, TokenLayout, build_attention_mask
from tuna.model.rope import text_positions, visual_block_positions

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def make_hf_checkpoint(directory, tied: bool) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()
    with torch.no_grad():  # non-trivial biases and norm gains, so every tensor's mapping is exercised
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1 + 0.1 * torch.randn_like(param))
            else:
                param.normal_(0.0, 0.1)
    model.save_pretrained(directory)
    return model


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def pair(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2")
    hf = make_hf_checkpoint(directory, tied=request.param)
    cfg = decoder_config_from_hf(directory)
    ours = QwenDecoder(cfg).eval()
    report = load_qwen2(ours, directory)
    return hf, ours, report, directory


def test_config_and_load_report(pair):
    hf, ours, report, _ = pair
    cfg = ours.cfg
    assert (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size) == (97, 32, 64)
    assert (cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.rope_theta) == (2, 4, 2, 10000.0)
    assert cfg.tie_word_embeddings == hf.config.tie_word_embeddings
    assert cfg.mrope_section == default_mrope_section(8) == (1, 1, 2)
    assert report.initialised == [] and report.mismatched == [] and report.unused == []
    assert ("lm_head.weight" in report.loaded) != cfg.tie_word_embeddings


def test_logits_match_transformers(pair):
    hf, ours, _, _ = pair
    ids = torch.randint(0, 97, (2, 11))
    with torch.no_grad():
        expected = hf(ids).logits
        positions = text_positions(0, 11)[:, None].expand(3, 2, 11)  # (3, B, L)
        for mask in (AttentionMask.causal(), build_attention_mask(TokenLayout.text(2, 11))):
            got = ours.logits(ours(ours.embed(ids), positions, mask))
            assert (got - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_packed_row_matches_separate_samples(pair, backend):
    hf, ours, _, _ = pair
    a, b = torch.randint(0, 97, (1, 7)), torch.randint(0, 97, (1, 5))
    ids = torch.cat([a, b, torch.zeros(1, 2, dtype=torch.long)], dim=1)  # two samples, then padding
    sample_ids = torch.tensor([[0] * 7 + [1] * 5 + [-1] * 2])
    layout = TokenLayout(sample_ids, torch.zeros_like(sample_ids))
    positions = torch.cat([text_positions(0, 7), text_positions(0, 5), text_positions(0, 2)], dim=1)[:, None]
    with torch.no_grad():
        got = ours.logits(ours(ours.embed(ids), positions, build_attention_mask(layout, backend)))
        assert (got[:, :7] - hf(a).logits).abs().max() <= 1e-4
        assert (got[:, 7:12] - hf(b).logits).abs().max() <= 1e-4


def test_wrong_shape_is_reported(pair, tmp_path):
    _, ours, _, directory = pair
    state = load_file(directory / "model.safetensors")
    key = "model.layers.1.mlp.up_proj.weight"
    state[key] = torch.zeros(65, 32)
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    save_file(state, tmp_path / "model.safetensors")
    report = load_qwen2(QwenDecoder(ours.cfg), tmp_path)
    assert report.mismatched == [("layers.1.mlp.up_proj.weight", (65, 32), (64, 32))]
    assert report.initialised == ["layers.1.mlp.up_proj.weight"]
    assert "layers.1.mlp.up_proj.weight checkpoint (65, 32) vs model (64, 32)" in report.summary()


def write_config(tmp_path, **fields):
    (tmp_path / "config.json").write_text(json.dumps(fields))
    return tmp_path


QWEN = dict(
    model_type="qwen2",
    vocab_size=10,
    hidden_size=32,
    intermediate_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
)


def test_config_transformers4_style(tmp_path):
    cfg = decoder_config_from_hf(
        write_config(
            tmp_path, **QWEN, rope_theta=5e5, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}
        )
    )
    assert cfg.rope_theta == 5e5 and cfg.mrope_section == (2, 3, 3) and cfg.head_dim == 16


@pytest.mark.parametrize(
    "fields,message",
    [
        ({**QWEN, "model_type": "llama"}, "not a Qwen2"),
        ({**QWEN, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "yarn"),
        ({**QWEN, "use_sliding_window": True}, "sliding"),
    ],
)
def test_config_rejects_non_qwen2(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        decoder_config_from_hf(write_config(tmp_path, **fields))


@pytest.mark.parametrize("head_dim,expected", [(128, (16, 24, 24)), (16, (2, 3, 3)), (64, (8, 12, 12))])
def test_default_mrope_section(head_dim, expected):
    assert default_mrope_section(head_dim) == expected


# --------------------------------------------------------------------------------------------------
# KV cache
# --------------------------------------------------------------------------------------------------

TINY = DecoderConfig(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    mrope_section=(1, 1, 2),
)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = QwenDecoder(TINY).eval()
    model.init_weights(std=0.2)
    return model


def understanding_sequence(batch: int = 2):
    """text(3), a 1x2x2 visual block (5 tokens), text(4): layout, position ids (3, B, 12), embeddings."""
    block_pos, nxt = visual_block_positions(3, 1, 2, 2)
    positions = torch.cat([text_positions(0, 3), block_pos, text_positions(nxt, 4)], dim=1)  # (3, 12)
    block_ids = torch.tensor([0] * 3 + [1] * 5 + [0] * 4).expand(batch, -1)
    layout = TokenLayout(torch.zeros_like(block_ids), block_ids.clone())
    return layout, positions[:, None].expand(3, batch, 12), torch.randn(batch, 12, TINY.hidden_size)


def sub_layout(layout: TokenLayout, n: int, batch: int = -1) -> TokenLayout:
    """The first n tokens, optionally with the rows broadcast to `batch`."""
    return TokenLayout(layout.sample_ids[:, :n].expand(batch, -1), layout.block_ids[:, :n].expand(batch, -1))


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_incremental_decoding_equals_full(tiny, backend):
    torch.manual_seed(3)
    layout, positions, embeds = understanding_sequence()
    with torch.no_grad():
        full = tiny(embeds, positions, build_attention_mask(layout, backend))
        cache = tiny.new_cache()
        prefill = 8  # text + the whole visual block
        steps = [
            tiny(
                embeds[:, :prefill],
                positions[:, :, :prefill],
                build_attention_mask(sub_layout(layout, prefill), backend),
                cache,
            )
        ]
        for t in range(prefill, 12):
            assert cache.length == t
            mask = build_attention_mask(sub_layout(layout, t + 1), backend, q_start=t)
            steps.append(tiny(embeds[:, t : t + 1], positions[:, :, t : t + 1], mask, cache))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 12 and cache.keys[1].shape == (2, 2, 12, 8)


def test_frozen_cache_reuses_prefix_without_growing(tiny):
    torch.manual_seed(4)
    layout, positions, embeds = understanding_sequence()
    prefix = 3
    mask = build_attention_mask(sub_layout(layout, 8), q_start=prefix)  # the block against prefix + block
    with torch.no_grad():
        cache = tiny.new_cache()
        tiny(embeds[:, :prefix], positions[:, :, :prefix], AttentionMask.causal(), cache)
        cache.frozen = True
        for _ in range(2):  # two "denoising steps" with different block contents
            block = torch.randn(2, 5, TINY.hidden_size)
            got = tiny(block, positions[:, :, prefix:8], mask, cache)
            assert cache.length == prefix
            full = tiny(
                torch.cat([embeds[:, :prefix], block], 1),
                positions[:, :, :8],
                build_attention_mask(sub_layout(layout, 8)),
            )
            torch.testing.assert_close(got, full[:, prefix:], atol=1e-5, rtol=1e-5)


def test_cache_row_helpers_and_crop(tiny):
    torch.manual_seed(5)
    layout, positions, embeds = understanding_sequence(batch=1)
    with torch.no_grad():
        cache = tiny.new_cache()
        tiny(embeds[:, :8], positions[:, :, :8], build_attention_mask(sub_layout(layout, 8)), cache)
        doubled = cache.repeat_rows(2)
        assert cache.keys[0].shape[0] == 1 and doubled.keys[0].shape[0] == 2 and doubled.length == 8
        tail = torch.randn(2, 1, TINY.hidden_size)
        mask = build_attention_mask(sub_layout(layout, 9, batch=2), q_start=8)
        pos = positions[:, :, 8:9].expand(3, 2, 1)
        both = tiny(tail, pos, mask, doubled)
        swapped = doubled.select_rows([1, 0])
        assert swapped.length == 9
        torch.testing.assert_close(swapped.keys[0][0], doubled.keys[0][1])
        cache.crop(5)
        assert cache.length == 5 and cache.values[1].shape[2] == 5
    assert isinstance(both, torch.Tensor) and both.shape == (2, 1, TINY.hidden_size)
    # Row 0 of the tiled cache is the original prefix: same output as running the single row.
    single = KVCache(TINY.num_layers)
    with torch.no_grad():
        tiny(embeds[:, :8], positions[:, :, :8], build_attention_mask(sub_layout(layout, 8)), single)
        one = tiny(
            tail[:1], positions[:, :, 8:9], build_attention_mask(sub_layout(layout, 9), q_start=8), single
        )
    torch.testing.assert_close(both[:1], one, atol=1e-6, rtol=1e-6)
