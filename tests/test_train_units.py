"""Unit tests of the training pieces: presets and overrides, schedule, optimiser groups, mixture,
checkpoint rotation, stage 0 and activation checkpointing."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from tuna.data.formats import Formatter
from tuna.data.mixture import DataStream, Entry
from tuna.train.cli import parse_data
from tuna.train.config import OptimConfig, with_overrides
from tuna.train.optim import build_optimizer, lr_factor
from tuna.train.presets import PRESETS, get_train_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name):
    cfg = get_train_preset(name)
    assert cfg.data.mixture and cfg.data.global_batch % cfg.data.micro_batch == 0


def test_paper_values():
    assert get_train_preset("stage2").optim.warmup_steps == 2000
    assert get_train_preset("stage2").optim.lr == 1e-4 and get_train_preset("stage3").optim.lr == 2e-5
    weights = {e.kind: e.weight for e in get_train_preset("stage3").data.mixture}
    assert (weights["t2i"], weights["edit"], weights["und"], weights["text"]) == (0.5, 0.2, 0.2, 0.1)
    assert not any(e.kind == "video" for e in get_train_preset("stage2_7b").data.mixture)


def test_overrides_and_data_specs():
    cfg = with_overrides(
        get_train_preset("tiny"),
        ["optim.lr=3e-4", "data.pack_len=none", "bf16=false", "optim.betas=0.9,0.99"],
    )
    assert (cfg.optim.lr, cfg.data.pack_len, cfg.bf16, cfg.optim.betas) == (3e-4, None, False, (0.9, 0.99))
    for bad in (["nope=1"], ["optim.lr=fast"], ["steps"]):
        with pytest.raises(ValueError):
            with_overrides(cfg, bad)
    # an optional section left unset starts from its defaults when one of its keys is given
    assert cfg.noise is None
    noisy = with_overrides(cfg, ["noise.shift=1.0", "noise.resolution_shift=true"])
    assert (noisy.noise.shift, noisy.noise.resolution_shift, noisy.noise.distribution) == (
        1.0,
        True,
        "logit_normal",
    )
    stage2 = get_train_preset("stage2").data.mixture
    a, b = parse_data(["edit=/d/e.jsonl", "t2i=/d/shards:0.7"], stage2)
    assert (a.kind, a.path, a.weight, a.start) == ("edit", "/d/e.jsonl", 0.2, 5000)
    assert (b.kind, b.path, b.weight) == ("t2i", "/d/shards", 0.7)
    with pytest.raises(ValueError, match="KIND=PATH"):
        parse_data(["images=/x"], stage2)


def test_warmup_then_cosine():
    cfg = OptimConfig(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, 100, cfg) == pytest.approx(0.1) and lr_factor(9, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(55, 100, cfg) == pytest.approx(0.55) and lr_factor(100, 100, cfg) == pytest.approx(0.1)


def test_decay_only_on_matrices(tiny_model):
    from tuna.train.freeze import apply_freezing

    apply_freezing(tiny_model, 2)
    decay, no_decay = build_optimizer(tiny_model, OptimConfig()).param_groups
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0
    assert not any(p is q for p in decay["params"] for q in tiny_model.vae.parameters())


class _Numbers:
    def __init__(self, kind, n):
        self.kind, self.n = kind, n

    def __len__(self):
        return self.n

    def get(self, index, fmt):
        return (self.kind, index)


def test_mixture_ratios_epochs_and_determinism():
    def stream():
        entries = [Entry(_Numbers("a", 5), 0.75, name="a"), Entry(_Numbers("b", 7), 0.25, start=2, name="b")]
        return DataStream(entries, Formatter(lambda s: [], 64, 16, 1), seed=0, global_batch=40)

    s = stream()
    first = [s.load(*p)[0] for p in s.plan(0)]
    assert {k for k, _ in first} == {"a"}  # b joins at step 2
    later = [s.load(*p)[0] for step in range(2, 12) for p in s.plan(step)]
    share = sum(k == "a" for k, _ in later) / len(later)
    assert 0.7 < share < 0.8
    a_ids = [i for k, i in first]
    assert sorted(a_ids[:5]) == list(range(5)) and sorted(a_ids[5:10]) == list(range(5))  # epochs
    t = stream()
    assert [t.load(*p)[0] for p in t.plan(0)] == first


def test_stage0_trains_the_vae_and_stores_latent_stats(tmp_path):
    from tuna.train.loop import train

    cfg = replace(get_train_preset("tiny_stage0_vae"), steps=2, vae_stats_samples=4)
    rows = train(cfg, tmp_path)
    assert set(rows[0]) >= {"loss", "recon", "kl", "lr", "grad_norm", "tokens_per_s"}
    vae = json.loads((tmp_path / "final" / "config.json").read_text())["config"]["vae"]
    assert len(vae["latents_mean"]) == len(vae["latents_std"]) == 8

    # A decoder fine-tune of that VAE: the encoder side and the latent statistics stay exactly as they were.
    from tuna.model.tuna import TunaModel

    decoder_cfg = replace(cfg, init=str(tmp_path / "final"), tokenizer="checkpoint", vae_train="decoder")
    train(decoder_cfg, tmp_path / "decoder")
    before, after = (
        TunaModel.from_pretrained(d).vae for d in (tmp_path / "final", tmp_path / "decoder" / "final")
    )
    changed = {
        name
        for name, p in after.autoencoder.named_parameters()
        if not torch.equal(p, before.autoencoder.get_parameter(name))
    }
    assert changed and all(n.startswith(("decoder.", "post_quant_conv.")) for n in changed)
    assert torch.equal(after.latents_mean, before.latents_mean)
    assert torch.equal(after.latents_std, before.latents_std)
    # A wider decoder, trained from scratch on the same fixed encoder: the encoder side is carried over
    # bit for bit, the decoder has the new width, and the saved model loads with it.
    train(replace(decoder_cfg, vae_decoder_width=24), tmp_path / "wider")
    wider = TunaModel.from_pretrained(tmp_path / "wider" / "final").vae
    assert wider.cfg.decoder_base_dim == 24 and before.cfg.decoder_base_dim is None
    for name, p in before.autoencoder.named_parameters():
        if name.startswith(("encoder.", "quant_conv.")):
            assert torch.equal(p, wider.autoencoder.get_parameter(name)), name
    channels = [vae.autoencoder.get_parameter("decoder.conv_in.weight").shape[0] for vae in (before, wider)]
    assert channels[1] > channels[0]
    assert torch.equal(wider.latents_mean, before.latents_mean)
    with pytest.raises(ValueError, match="vae_decoder_width"):
        train(replace(cfg, vae_decoder_width=24), tmp_path / "wide_all")
    with pytest.raises(ValueError, match="applies to stage 0 only"):
        train(replace(get_train_preset("tiny"), vae_train="decoder"), tmp_path / "bad")
    with pytest.raises(ValueError, match="latent statistics"):
        train(replace(cfg, vae_train="decoder"), tmp_path / "fresh")


def test_only_videos_train_the_vae_temporal_weights():
    # Why stage 0 mixes videos in: through a causal 3D kernel a single frame meets only the last temporal
    # slice (the earlier ones see the causal zero padding), so images leave every other slice untrained.
    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel
    from tuna.train.objectives import VAETrainer

    torch.manual_seed(0)
    autoencoder = TunaModel(get_preset("tiny")).vae.autoencoder.requires_grad_(True)
    trainer = VAETrainer(autoencoder, kl_weight=1e-6)
    kernels = [
        m.weight for m in autoencoder.modules() if isinstance(m, torch.nn.Conv3d) and m.weight.shape[2] == 3
    ]
    assert kernels
    # 9 frames = 3 latent frames: with 2, the decoder's temporal upsampler only ever meets its causal padding
    for frames, earlier_slices_learn in ((1, False), (9, True)):
        autoencoder.zero_grad()
        trainer([torch.rand(2, 3, frames, 32, 32) * 2 - 1], torch.Generator().manual_seed(0))[
            "loss"
        ].backward()
        # (a kernel that only runs on frames after the first gets no gradient at all from an image)
        grads = [0.0 if k.grad is None else float(k.grad[:, :, :-1].abs().sum()) for k in kernels]
        assert all(g > 0 for g in grads) if earlier_slices_learn else all(g == 0 for g in grads)


def test_vae_edge_term_charges_rounded_corners():
    from tuna.train.objectives import VAEObjective, edge_l1

    # A 12-pixel square against the same square with its four corner pixels cut (a rounded blob): the
    # edge term charges the cut far more, relative to plain L1, than a uniform shift of the same L1 cost.
    square = -torch.ones(1, 3, 1, 32, 32)
    square[..., 10:22, 10:22] = 1.0
    rounded = square.clone()
    for r, c in ((10, 10), (10, 21), (21, 10), (21, 21)):
        rounded[..., r, c] = -1.0
    shifted = square + float((rounded - square).abs().mean())  # the same L1, spread over every pixel
    assert torch.isclose((rounded - square).abs().mean(), (shifted - square).abs().mean())
    assert edge_l1(shifted, square) == 0 and edge_l1(rounded, square) > 0
    # By hand: each cut corner changes 4 differences by 2 → 16 · 2 over 3 channels, / (2 · 32 · 31) each
    assert torch.isclose(edge_l1(rounded, square), torch.tensor(16 * 2 * 3 / (3 * 2 * 32 * 31)))

    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel

    torch.manual_seed(0)
    model = TunaModel(get_preset("tiny"))
    pixels = torch.rand(2, 3, 1, 32, 32) * 2 - 1
    plain, edged = (
        VAEObjective(model, 1e-6, edge_weight=w).module(model)([pixels], torch.Generator().manual_seed(0))
        for w in (0.0, 3.0)
    )
    assert torch.isclose(edged["loss"], plain["loss"] + 3.0 * plain["edge"])
    with pytest.raises(ValueError, match="vae_edge_weight"):
        VAEObjective(model, 1e-6, edge_weight=-1.0)


def test_activation_checkpointing_keeps_losses_and_checkpoints_rotate(tmp_path):
    from tuna.train.loop import train

    cfg = replace(
        get_train_preset("tiny"),
        steps=3,
        save_every=1,
        keep_last=2,
        data=replace(get_train_preset("tiny").data, global_batch=4, micro_batch=4),
    )
    plain = train(cfg, tmp_path / "plain")
    checkpointed = train(replace(cfg, activation_checkpointing=True), tmp_path / "ac")
    for a, b in zip(plain, checkpointed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    names = sorted(p.name for p in (tmp_path / "ac" / "checkpoints").iterdir())
    assert names == ["step_00000002.pt", "step_00000003.pt"]
    assert torch.load(tmp_path / "ac" / "checkpoints" / names[-1], weights_only=True)["step"] == 3


def test_a_runs_noise_schedule_replaces_the_models_and_is_saved(tmp_path):
    # `noise.*` overrides change how training draws t (here: from a checkpoint trained with shift 3),
    # and the saved model carries them, so its samplers follow the new schedule.
    from tuna.config import NoiseConfig, get_preset
    from tuna.model.tuna import TunaModel
    from tuna.train.build import build_model
    from tuna.train.loop import train

    cfg = replace(
        get_train_preset("tiny"),
        steps=1,
        data=replace(get_train_preset("tiny").data, global_batch=2, micro_batch=2),
    )
    assert get_preset("tiny").noise.shift == 3.0
    assert build_model(cfg).cfg.noise == get_preset("tiny").noise  # unset: the model's own
    train(cfg, tmp_path / "a")
    wanted = NoiseConfig(shift=1.0, resolution_shift=True, base_tokens=16)
    again = with_overrides(
        cfg,
        [
            f"init={tmp_path / 'a' / 'final'}",
            "noise.shift=1.0",
            "noise.resolution_shift=true",
            "noise.base_tokens=16",
        ],  # fmt: skip
    )
    assert build_model(again).cfg.noise == wanted
    train(again, tmp_path / "b")
    assert TunaModel.from_pretrained(tmp_path / "b" / "final").cfg.noise == wanted


def test_a_model_continued_at_another_size_samples_at_that_size_by_default(tmp_path):
    # The exported config's image_size (the pipeline's default side) follows the data it trained at.
    from tuna.model.tuna import TunaModel
    from tuna.train.build import build_model
    from tuna.train.loop import train

    base = get_train_preset("tiny")
    cfg = replace(base, steps=1, data=replace(base.data, global_batch=2, micro_batch=2))
    assert build_model(cfg).cfg.image_size == cfg.data.image_size == 64
    larger = with_overrides(cfg, ["data.image_size=96", "data.shapes_size=96"])
    assert build_model(larger).cfg.image_size == 96
    train(larger, tmp_path / "a")
    assert TunaModel.from_pretrained(tmp_path / "a" / "final").cfg.image_size == 96


def test_trainable_flow_head_fine_tunes_generation_and_leaves_understanding_untouched(tmp_path):
    from tuna.model.tuna import TunaModel
    from tuna.train.loop import train

    base = replace(
        get_train_preset("tiny"),
        steps=1,
        data=replace(get_train_preset("tiny").data, global_batch=2, micro_batch=2),
    )
    train(base, tmp_path / "a")
    tuned = with_overrides(
        base, [f"init={tmp_path / 'a' / 'final'}", "tokenizer=checkpoint", "trainable=flow_head"]
    )
    assert tuned.trainable == ("flow_head",)
    train(replace(tuned, steps=2), tmp_path / "b")
    before, after = (TunaModel.from_pretrained(tmp_path / d / "final") for d in ("a", "b"))
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, before.get_parameter(n))}
    assert changed and all(n.startswith("flow_head.") for n in changed)
    with pytest.raises(ValueError, match="unknown model parts"):
        train(replace(tuned, trainable=("lm_head",)), tmp_path / "bad")
    with pytest.raises(ValueError, match="stages 1-3"):
        train(replace(get_train_preset("tiny_stage0_vae"), trainable=("flow_head",)), tmp_path / "bad0")
