"""End-to-end checks of TunaModel on the tiny preset: losses, masks through the whole model, freezing."""

import dataclasses

import pytest
import torch

from tuna.model.masks import TokenLayout
from tuna.model.tuna import TunaModel
from tuna.sequence import Text, Visual, build_batch
from tuna.train.freeze import TRAINABLE_MODULES, apply_freezing


def mixed_batch(cfg, noisy=True):
    gen = torch.Generator().manual_seed(0)
    img = lambda f=1: torch.rand(3, f, 32, 32, generator=gen) * 2 - 1  # noqa: E731
    samples = [
        [Visual(pixels=img()), Text([40, 41, 42], supervised=True)],  # captioning
        [Text([50, 51]), Visual(pixels=img(), noisy=noisy)],  # T2I
        [Text([60]), Visual(pixels=img()), Visual(pixels=img(), noisy=noisy)],  # editing
        [Text([70]), Visual(pixels=img(5), noisy=noisy)],  # T2V
    ]
    return build_batch(samples, cfg.tokens, cfg.vae)


def test_tiny_preset_under_5m_parameters(tiny_model):
    assert sum(p.numel() for p in tiny_model.parameters()) < 5_000_000


def test_forward_returns_named_terms_and_backward(tiny_model, tiny_cfg):
    out = tiny_model(mixed_batch(tiny_cfg), generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "text", "flow"}
    assert out["text"] > 0 and out["flow"] > 0
    expected = tiny_cfg.loss_text_weight * out["text"] + tiny_cfg.loss_flow_weight * out["flow"]
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert tiny_model.encoder.patch_embedding.weight.grad is not None


def test_zero_initialised_head_predicts_zero_velocity(tiny_model, tiny_cfg):
    # adaLN-Zero: the flow loss at initialisation is E|x1 - x0|^2 of the targets alone
    batch = build_batch(
        [[Text([5, 6]), Visual(latents=torch.zeros(tiny_cfg.latent_channels, 1, 2, 2), noisy=True)]],
        tiny_cfg.tokens,
        tiny_cfg.vae,
    )
    gen = torch.Generator().manual_seed(3)
    out = tiny_model(batch, generator=gen)
    gen = torch.Generator().manual_seed(3)
    from tuna.model.noise import sample_time

    sample_time(1, tiny_cfg.noise, tokens=4, generator=gen)
    x0 = torch.randn(tiny_cfg.latent_channels, 1, 2, 2, generator=gen)
    assert torch.allclose(out["flow"], (x0**2).mean(), atol=1e-6)


def test_text_loss_only_on_supervised_tokens(tiny_model, tiny_cfg):
    batch = build_batch(
        [[Text([5, 6, 7]), Visual(pixels=torch.zeros(3, 1, 32, 32))]], tiny_cfg.tokens, tiny_cfg.vae
    )
    out = tiny_model(batch)
    assert out["text"] == 0 and out["flow"] == 0


def hidden_states(model, batch, visual_override=None):
    """Decoder outputs for a batch (optionally with one visual's pixels replaced)."""
    visuals = list(batch.visuals)
    if visual_override is not None:
        i, pixels = visual_override
        visuals[i] = Visual(pixels=pixels, noisy=visuals[i].noisy)
    latents = model.encode_latents(visuals)
    t = torch.ones(len(latents))
    embeds = model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t))
    return model.decoder(embeds, batch.position_ids, model.attention_mask(batch.layout))


def test_mask_properties_through_the_model(tiny_model, tiny_cfg):
    gen = torch.Generator().manual_seed(1)
    first, second = (torch.rand(3, 1, 32, 32, generator=gen) * 2 - 1 for _ in range(2))
    batch = build_batch(
        [[Text([9, 10, 11]), Visual(pixels=first), Text([12, 13]), Visual(pixels=second)]],
        tiny_cfg.tokens,
        tiny_cfg.vae,
    )
    base = hidden_states(tiny_model, batch)
    changed = hidden_states(tiny_model, batch, (1, torch.rand(3, 1, 32, 32, generator=gen)))
    b2 = batch.blocks[1]
    # everything before the second block is unaffected by it; every token of the block changes
    assert torch.equal(base[0, : b2.start], changed[0, : b2.start])
    diff = (
        (
            base[0, b2.start : b2.start + 1 + b2.num_tokens]
            - changed[0, b2.start : b2.start + 1 + b2.num_tokens]
        )
        .abs()
        .amax(-1)
    )
    assert (diff > 1e-6).all()


def stage_grads(model, cfg, stage):
    apply_freezing(model, stage)
    model.zero_grad(set_to_none=True)
    model(mixed_batch(cfg), generator=torch.Generator().manual_seed(0))["loss"].backward()
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_freezing_plan_gradients(tiny_model, tiny_cfg, stage):
    # Open the adaLN-Zero gates so every head parameter can receive a gradient in one step.
    with torch.no_grad():
        for p in tiny_model.flow_head.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    with_grad = stage_grads(tiny_model, tiny_cfg, stage)
    prefixes = tuple(f"{m}." for m in TRAINABLE_MODULES[stage])
    intended = {n for n, _ in tiny_model.named_parameters() if n.startswith(prefixes)}
    assert with_grad == intended
    assert not any(n.startswith("vae.") for n in with_grad)
    if stage == 1:
        assert not any(n.startswith("decoder.") for n in with_grad)


ONE_KIND_BATCHES = {
    "text": lambda img: [[Text([5, 6]), Text([7, 8], supervised=True)]],
    "captioning": lambda img: [[Visual(pixels=img()), Text([40, 41], supervised=True)]],
    "t2i": lambda img: [[Text([50, 51]), Visual(pixels=img(), noisy=True)]],
    "editing": lambda img: [[Text([60]), Visual(pixels=img()), Visual(pixels=img(), noisy=True)]],
    "t2v": lambda img: [[Text([70]), Visual(pixels=img(5), noisy=True)]],
    "nothing supervised": lambda img: [[Text([9, 10]), Visual(pixels=img())]],
}


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("kind", ONE_KIND_BATCHES)
def test_every_trainable_parameter_gets_a_gradient_from_any_batch(tiny_cfg, kind, tied, stage):
    # FSDP reduce-scatters the gradients each process has and all-gathers every sharded module it runs:
    # a process whose micro-batch lacks images, noisy blocks or supervised text must still run every
    # module and give every trainable parameter a gradient (zero), or the processes' collectives differ.
    cfg = dataclasses.replace(
        tiny_cfg, decoder=dataclasses.replace(tiny_cfg.decoder, tie_word_embeddings=tied)
    )
    model = TunaModel(cfg)
    model.init_weights()
    trainable = set(apply_freezing(model, stage))
    gen = torch.Generator().manual_seed(0)
    img = lambda f=1: torch.rand(3, f, 32, 32, generator=gen) * 2 - 1  # noqa: E731
    batch = build_batch(ONE_KIND_BATCHES[kind](img), cfg.tokens, cfg.vae)
    out = model(batch, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == trainable
    assert out["loss"].isfinite()


def test_unknown_stage(tiny_model):
    with pytest.raises(ValueError, match="unknown training stage"):
        apply_freezing(tiny_model, 7)


def test_layout_reference_type():
    layout = TokenLayout(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    assert layout.sample_ids.shape == (1, 3)


def test_info_meta_counts_match_real_qwen():
    from tuna.cli import COMPONENTS, count_parameters
    from tuna.config import get_preset

    for preset, expected in (("1.5b", 1_543_714_304), ("7b", 7_615_616_512)):
        with torch.device("meta"):
            model = TunaModel(get_preset(preset))
        assert count_parameters(model.decoder) == expected
        assert sum(count_parameters(getattr(model, c)) for c in COMPONENTS) == count_parameters(model)
