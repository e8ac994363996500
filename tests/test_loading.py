"""Saving, loading, and the stage-1 initialisation from public components (tiny random stand-ins)."""

import json

import pytest
import torch

from tuna.model.tuna import TunaModel
from tuna.sampling.text import stream_text
from tuna.sequence import Text, Visual, build_batch


def test_save_load_bit_exact(tiny_model, tiny_cfg, byte_tokenizer, tmp_path):
    tiny_model.tokenizer = byte_tokenizer
    tiny_model.save_pretrained(tmp_path)
    loaded = TunaModel.from_pretrained(tmp_path)
    assert loaded.cfg == tiny_cfg
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    batch = build_batch(
        [[Text([5, 6], supervised=True), Visual(pixels=torch.zeros(3, 1, 32, 32), noisy=True)]],
        tiny_cfg.tokens,
        tiny_cfg.vae,
    )
    a = tiny_model(batch, generator=torch.Generator().manual_seed(0))
    b = loaded(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a["loss"], b["loss"])
    assert loaded.tokenizer.encode("red circle") == byte_tokenizer.encode("red circle")


def test_corrupted_checkpoint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot read safetensors"):
        TunaModel.from_pretrained(tmp_path)


def test_mismatched_checkpoint_lists_keys_and_shapes(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["config"]["decoder"]["intermediate_size"] = 96
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"decoder.layers.0.mlp.gate_proj.weight: checkpoint \(128, 64\) vs model \(96, 64\)"
    ):
        TunaModel.from_pretrained(tmp_path)


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file"):
        TunaModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ValueError, match="not a Tuna checkpoint"):
        TunaModel.from_pretrained(tmp_path)


# ---------------------------------------------------------------- from_components


@pytest.fixture(scope="module")
def component_dirs(tmp_path_factory):
    """Tiny random Qwen2.5 (+ the real Qwen2.5 tokenizer), SigLIP 2 and Wan 2.2 VAE directories."""
    from diffusers import AutoencoderKLWan
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    from tuna.tokenizer import qwen25_tokenizer

    root = tmp_path_factory.mktemp("components")
    torch.manual_seed(0)
    tokenizer = qwen25_tokenizer()
    qwen = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            max_position_embeddings=512,
            rope_theta=10000.0,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.pad_token_id,
        ),
    ).eval()
    with torch.no_grad():  # random biases so parity is not trivially met by zeros
        for layer in qwen.model.layers:
            layer.self_attn.q_proj.bias.normal_(std=0.1)
    qwen.save_pretrained(root / "llm")
    tokenizer.save_pretrained(root / "llm")
    siglip = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        )
    )
    siglip.save_pretrained(root / "vision")
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=6, dim_mult=[1, 2, 2, 2], num_res_blocks=1, is_residual=True, in_channels=12,
        out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
        latents_mean=[0.1] * 6, latents_std=[2.0] * 6,
    )  # fmt: skip
    vae.save_pretrained(root / "vae")
    return root, qwen, tokenizer


def test_from_components_loads_every_fitting_weight(component_dirs):
    root, _, _ = component_dirs
    model = TunaModel.from_components(
        llm=root / "llm", vision=root / "vision", vae=root / "vae", preset="tiny"
    )
    reports = model.load_reports
    assert reports["decoder"].initialised == [] and reports["decoder"].mismatched == []
    assert reports["vae"].initialised == []
    assert reports["encoder"].initialised == ["patch_embedding.weight", "patch_embedding.bias"] or set(
        reports["encoder"].initialised
    ) == {"patch_embedding.weight", "patch_embedding.bias"}
    assert model.cfg.decoder.hidden_size == 32 and model.cfg.encoder.hidden_size == 24
    assert model.cfg.vae.z_dim == 6 and model.cfg.tokens.vision_start_id == 151652
    # the assembled model trains end to end
    batch = build_batch(
        [[Text([100, 101], supervised=True), Visual(pixels=torch.zeros(3, 1, 32, 32), noisy=True)]],
        model.cfg.tokens,
        model.cfg.vae,
    )
    model(batch)["loss"].backward()


def test_greedy_chat_equals_transformers_generate(component_dirs):
    root, qwen, tokenizer = component_dirs
    model = TunaModel.from_components(
        llm=root / "llm", vision=root / "vision", vae=root / "vae", preset="tiny"
    ).eval()
    messages = [{"role": "user", "content": "What shape is red?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    input_ids = torch.tensor([ids])
    expected = qwen.generate(input_ids, max_new_tokens=12, do_sample=False)[0, len(ids) :].tolist()

    from tuna.model.masks import TokenLayout

    batch = build_batch([[Text(ids)]], model.cfg.tokens, model.cfg.vae)
    ours = list(
        stream_text(
            model,
            model.decoder.embed(batch.input_ids),
            batch.position_ids,
            TokenLayout(batch.layout.sample_ids, batch.layout.block_ids),
            max_new_tokens=12,
            stop_ids={tokenizer.convert_tokens_to_ids("<|im_end|>")},
        )
    )
    assert ours == expected


def test_pipeline_prompt_matches_the_models_own_chat_template(component_dirs):
    from tuna.pipeline import TunaPipeline

    root, _, tokenizer = component_dirs
    model = TunaModel.from_components(
        llm=root / "llm", vision=root / "vision", vae=root / "vae", preset="tiny"
    )
    pipe = TunaPipeline(model)
    assert pipe.system.startswith("You are Qwen")
    for messages in (
        [{"role": "user", "content": "What shape is red?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ):
        ours = [i for seg in pipe.message_segments(messages, video_frames=5) for i in seg.ids]
        theirs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)[
            "input_ids"
        ]
        assert ours == theirs
