"""Exact fast paths of sampling: prefix reuse equals full recompute and the training forward's prediction;
CFG and seeds behave."""

import pytest
import torch

from tuna import prompts
from tuna.sampling.flow import denoise, get_schedule, guidance
from tuna.sampling.visual import PrefixCache, block_velocity, sample_latents
from tuna.sequence import Text, Visual, build_batch


def open_head(model):
    # Zero-initialised adaLN makes every velocity 0; perturb so the comparison means something.
    with torch.no_grad():
        for p in model.flow_head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def full_velocity(model, prompt, x, t):
    """Reference: the whole sequence recomputed, as the official code does at every step."""
    sample = list(prompt) + [Visual(latents=x[0], noisy=True)]
    batch = build_batch([sample], model.cfg.tokens, model.cfg.vae)
    t_all = torch.tensor([1.0] * (len(batch.visuals) - 1) + [t])
    latents = model.encode_latents(batch.visuals)
    embeds = model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t_all))
    mask = model.attention_mask(batch.layout)
    hidden = model.decoder(embeds, batch.position_ids, mask)
    block = batch.blocks[-1]
    rows = torch.zeros(block.num_tokens, dtype=torch.long)
    cols = torch.arange(block.start + 1, block.start + 1 + block.num_tokens)
    v = model.flow_head(hidden, batch.position_ids, mask, batch.layout.block_ids, t_all, rows, cols)
    f, h, w = block.grid
    return v.reshape(1, f, h, w, -1).permute(0, 4, 1, 2, 3)


@pytest.mark.parametrize("frames", [1, 5])
def test_prefix_reuse_equals_full_recompute(tiny_model, byte_tokenizer, frames):
    model = open_head(tiny_model)
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    cond = prompts.conversation(encode, [("user", ["a red circle on the left"])], add_generation_prompt=True)
    uncond = prompts.conversation(encode, [("user", [""])], add_generation_prompt=True)
    src = Visual(pixels=torch.rand(3, 1, 32, 32) * 2 - 1)
    edit = prompts.conversation(encode, [("user", [src, "make it blue"])], add_generation_prompt=True)
    grid = model.vae.latent_shape(frames, 32, 48)
    prefix = PrefixCache(model, [cond, uncond, edit])
    for t in (0.0, 0.37, 0.9):  # several steps reuse the same frozen prefix
        x = torch.randn(3, model.cfg.latent_channels, *grid)
        fast = block_velocity(model, prefix, x, t)
        for row, prompt in enumerate((cond, uncond, edit)):
            ref = full_velocity(model, prompt, x[row : row + 1], t)
            assert torch.allclose(fast[row : row + 1], ref, atol=1e-5), (row, t)
    assert prefix.decoder_cache.length == prefix.length  # frozen: nothing appended by the steps


def test_cfg_scale_one_equals_conditional_and_seed_is_deterministic(tiny_model, byte_tokenizer):
    model = open_head(tiny_model)
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    cond = prompts.conversation(encode, [("user", ["a square"])], add_generation_prompt=True)
    uncond = prompts.conversation(encode, [("user", [""])], add_generation_prompt=True)
    grid = (1, 2, 2)
    a = sample_latents(model, [cond], [uncond], grid, steps=4, cfg_scale=1.0, seeds=[3])
    b = sample_latents(model, [cond], None, grid, steps=4, cfg_scale=7.0, seeds=[3])
    assert torch.equal(a, b)
    c = sample_latents(model, [cond], [uncond], grid, steps=4, cfg_scale=4.0, seeds=[3])
    d = sample_latents(model, [cond], [uncond], grid, steps=4, cfg_scale=4.0, seeds=[3])
    assert torch.equal(c, d) and not torch.allclose(a, c)
    # a batch of prompts gives each prompt the image it gets alone (same seed)
    both = sample_latents(model, [cond, uncond], [uncond, uncond], grid, steps=4, cfg_scale=4.0, seeds=[3, 5])
    assert torch.allclose(both[:1], c, atol=1e-5)


def test_default_shift_is_the_one_the_model_trained_with(tiny_model, byte_tokenizer):
    # shift=None follows the model's noise config (resolution-scaled by the block's tokens), so a model
    # trained with shift 1 is not sampled with the shift-3 schedule of the big presets.
    from dataclasses import replace

    from tuna.config import NoiseConfig

    model = open_head(tiny_model)
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    cond = prompts.conversation(encode, [("user", ["a square"])], add_generation_prompt=True)
    grid = (1, 2, 2)

    def run(shift):
        return sample_latents(model, [cond], None, grid, steps=4, shift=shift, seeds=[3])

    model.cfg = replace(model.cfg, noise=NoiseConfig(shift=1.0))
    assert torch.equal(run(None), run(1.0)) and not torch.allclose(run(None), run(3.0))
    # resolution shift: 4 tokens at base 1 → shift 1.5 · sqrt(4) = 3
    model.cfg = replace(model.cfg, noise=NoiseConfig(shift=1.5, resolution_shift=True, base_tokens=1))
    assert torch.equal(run(None), run(3.0))


def test_solvers_integrate_a_known_flow():
    # dx/dt = x1 - x0 is constant along the linear path: every solver lands exactly on x1.
    x0, x1 = torch.randn(4), torch.randn(4)
    for solver in ("euler", "heun", "midpoint"):
        out = denoise(lambda x, t: x1 - x0, x0.clone(), get_schedule(7, shift=3.0), solver)
        assert torch.allclose(out, x1, atol=1e-6)
    # a curved field: Heun is closer than Euler to the exact solution x(1) = x(0)·e
    exact = torch.e
    euler = denoise(lambda x, t: x, torch.ones(1), get_schedule(10), "euler")
    heun = denoise(lambda x, t: x, torch.ones(1), get_schedule(10), "heun")
    assert abs(heun.item() - exact) < abs(euler.item() - exact) / 10
    with pytest.raises(ValueError, match="unknown sampler"):
        denoise(lambda x, t: x, torch.ones(1), get_schedule(2), "rk45")
    with pytest.raises(ValueError, match="positive"):
        get_schedule(0)
    assert torch.equal(guidance(torch.ones(2), torch.zeros(2), 3.0), torch.full((2,), 3.0))


def test_text_segments_reject_nothing_silently(tiny_cfg):
    with pytest.raises(ValueError):
        build_batch([[Text([])]], tiny_cfg.tokens, tiny_cfg.vae)


def test_batched_greedy_decoding_equals_one_row_at_a_time(tiny_model, byte_tokenizer):
    from tuna.sampling.text import decode_batch

    model = tiny_model.eval()
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    questions = [
        prompts.conversation(
            encode,
            [("user", [Visual(pixels=torch.rand(3, 1, 32, 32) * 2 - 1), "what?"])],
            add_generation_prompt=True,
        ),
        prompts.conversation(
            encode,
            [("user", ["a much longer question about nothing in particular"])],
            add_generation_prompt=True,
        ),
    ]
    stop = {model.cfg.tokens.im_end_id}

    def answers(samples, limit=6, on_token=None):
        batch = build_batch(samples, model.cfg.tokens, model.cfg.vae)
        latents = model.encode_latents(batch.visuals)
        embeds = model.embed_sequence(
            batch.input_ids, batch.blocks, model.embed_blocks(latents, torch.ones(len(latents)))
        )
        return decode_batch(model, embeds, batch.position_ids, batch.layout, limit, stop, on_token)

    together = answers(questions)
    assert together == [answers([q])[0] for q in questions]
    assert all(len(a) == 6 for a in together)
    # one limit per row: each row is its own answer cut at its own limit
    assert answers(questions, [2, 6]) == [together[0][:2], together[1]]
    assert answers(questions, [0, 3]) == [[], together[1][:3]]
    with pytest.raises(ValueError, match="3 token limits for 2 prompts"):
        answers(questions, [1, 2, 3])
    steps = []
    answers(questions, 6, lambda: steps.append(1))
    assert len(steps) == 5  # after every token but the last (then every row is done)

    def stop_now():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        answers(questions, 6, stop_now)


def test_sampling_with_and_without_prefix_reuse_agree(tiny_model, byte_tokenizer):
    model = open_head(tiny_model)
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    cond = prompts.conversation(encode, [("user", ["two triangles"])], add_generation_prompt=True)
    uncond = prompts.conversation(encode, [("user", [""])], add_generation_prompt=True)
    kw = dict(grid=(1, 2, 3), steps=3, cfg_scale=3.0, seeds=[1])
    fast = sample_latents(model, [cond], [uncond], **kw)
    slow = sample_latents(model, [cond], [uncond], reuse_prefix=False, **kw)
    assert torch.allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("frames", [1, 5])
def test_the_sampler_predicts_what_the_training_forward_predicts(tiny_model, byte_tokenizer, frames):
    # The training forward's flow loss, recomputed from the sampler's velocity at the same x_t and t: equal
    # only if both sides agree on time, positions, masks and the prompt's layout (the reference paths
    # above share the model's own helpers; this one goes through `forward` itself).
    from tuna.model.noise import add_noise, sample_time, velocity_target

    model = open_head(tiny_model)
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    target = Visual(pixels=torch.rand(3, frames, 32, 48) * 2 - 1, noisy=True)
    sample = prompts.text_to_visual(encode, "a red circle on the left", target)
    batch = build_batch([sample], model.cfg.tokens, model.cfg.vae)
    with torch.no_grad():
        flow_loss = model(batch, torch.Generator().manual_seed(3))["flow"]

        # The forward's draws, repeated from the same seed: its time, then its noise.
        generator = torch.Generator().manual_seed(3)
        (x1,) = model.encode_latents(batch.visuals, generator)
        t = sample_time(1, model.cfg.noise, tokens=x1[0].numel(), generator=generator)
        x0 = torch.randn(x1.shape, generator=generator)
        prompt = prompts.conversation(
            encode, [("user", ["a red circle on the left"])], add_generation_prompt=True
        )
        v = block_velocity(model, PrefixCache(model, [prompt]), add_noise(x1[None], x0[None], t), float(t))
    assert 0.0 < float(t) < 1.0
    assert torch.allclose(flow_loss, ((v[0] - velocity_target(x1, x0)) ** 2).mean(), rtol=1e-5, atol=1e-7)
