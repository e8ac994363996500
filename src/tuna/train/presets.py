"""The one registry of training presets: the paper's three stages, stage 0 for the shapes world, and
`tiny` variants that train the `tiny` model on the shapes world on a CPU.

Values are the paper's and the official recipe's where they give one: AdamW at LR 1e-4 (stages 1–2),
a 2,000-step linear warm-up when stage 2 unfreezes the decoder, LR 2e-5 for SFT, task mixture
t2i 0.5 / edit 0.2 / understanding 0.2 / text 0.1, EMA 0.9999. Step counts of stages 2–3 and the video
weight are not published; ours are placeholders to override (`steps=…`).
Every preset reads the built-in shapes world unless `--data` names files.
"""

from __future__ import annotations

from dataclasses import replace

from tuna.train.config import DEFAULT_WEIGHTS as W
from tuna.train.config import DataConfig, MixEntry, OptimConfig, TrainConfig

STAGE2_JOIN = 5000  # step at which stage 2 adds instruction, editing, video and text data (paper: "later")


def _mix(*kinds: str, start: int = 0, stop: int | None = None) -> tuple[MixEntry, ...]:
    return tuple(MixEntry(k, W[k], start=start, stop=stop) for k in kinds)


# Full-size data: 512² images (1,024 latent tokens) and 17-frame videos (5 × 1,024) packed into 8k rows.
_BIG_DATA = DataConfig(global_batch=256, micro_batch=4, pack_len=8192, image_size=512, video_frames=17)


def _stage0_vae() -> TrainConfig:
    # No pretrained VAE exists offline for the shapes world: train the tiny preset's Wan-architecture VAE
    # on its renders, then measure the latent statistics into the saved config.
    return TrainConfig(
        name="stage0_vae",
        stage=0,
        model="tiny",
        steps=20000,
        optim=OptimConfig(lr=3e-4, weight_decay=0.0, warmup_steps=500),
        data=DataConfig(mixture=_mix("t2i", "caption", "edit"), global_batch=32, micro_batch=32, pack_len=None,
                        image_size=128, shapes_size=128),
        save_every=1000,
    )  # fmt: skip


def _stage1() -> TrainConfig:
    # Decoder frozen; encoder, connector, time token and flow head learn captioning + T2I (150k steps, 1e-4).
    return TrainConfig(
        name="stage1",
        stage=1,
        model="1.5b",
        tokenizer="qwen25",
        steps=150_000,
        optim=OptimConfig(lr=1e-4, warmup_steps=1000),
        data=replace(_BIG_DATA, mixture=(MixEntry("t2i", 0.5), MixEntry("caption", 0.5))),
        ema_decay=0.9999,
        activation_checkpointing=True,
        save_every=1000,
        sample_every=5000,
        checkpoint_format="sharded",  # each GPU writes its shards; rank 0 never holds the whole state
    )


def _stage2() -> TrainConfig:
    # Everything but the VAE trains. Captioning + T2I continue; instruction, editing, video and text data
    # join at STAGE2_JOIN, after which the mixture is the official one (caption leaves for `und`).
    mixture = (
        MixEntry("t2i", W["t2i"]),
        MixEntry("caption", W["caption"], stop=STAGE2_JOIN),
        *_mix("und", "edit", "text", "video", start=STAGE2_JOIN),
    )
    return replace(
        _stage1(),
        name="stage2",
        stage=2,
        steps=100_000,
        optim=OptimConfig(lr=1e-4, warmup_steps=2000),
        data=replace(_BIG_DATA, mixture=mixture),
    )


def _stage3() -> TrainConfig:
    # SFT: editing, instruction following and high-quality generation at a reduced LR.
    return replace(
        _stage2(),
        name="stage3",
        stage=3,
        steps=10_000,
        optim=OptimConfig(lr=2e-5, warmup_steps=100),
        data=replace(_BIG_DATA, mixture=_mix("t2i", "edit", "und", "text", "video")),
    )


def _no_video(cfg: TrainConfig) -> TrainConfig:
    # The paper trains the 7B variant without video (its compute cost).
    mixture = tuple(e for e in cfg.data.mixture if e.kind != "video")
    return replace(cfg, name=f"{cfg.name}_7b", model="7b", data=replace(cfg.data, mixture=mixture))


# ------------------------------------------------------------------------------------------ tiny / CPU

# 64² shapes renders (4×4 latent grid), 5-frame videos; 8 samples packed into 512-token rows.
_TINY_DATA = DataConfig(
    global_batch=8, micro_batch=8, pack_len=512, image_size=64, video_frames=5, shapes_size=64
)
_TINY = dict(model="tiny", tokenizer="bytes", ema_decay=0.0, activation_checkpointing=False,
             save_every=50, sample_every=0)  # fmt: skip


def _tiny() -> TrainConfig:
    # Stage 2 of the tiny model on the shapes world: the official mixture from step 0 (no video, for speed).
    return TrainConfig(
        name="tiny",
        stage=2,
        steps=200,
        optim=OptimConfig(lr=1e-3, warmup_steps=10),
        data=replace(_TINY_DATA, mixture=_mix("t2i", "edit", "und", "text")),
        **_TINY,
    )


def _tiny_stage0_vae() -> TrainConfig:
    return replace(
        _stage0_vae(),
        name="tiny_stage0_vae",
        steps=200,
        optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=10),
        # 4 samples (≈5 images: edits bring two) keep a CPU step near a second: 3D convs are the cost.
        data=replace(
            _TINY_DATA,
            mixture=_mix("t2i", "caption", "edit", "video"),
            pack_len=None,
            global_batch=4,
            micro_batch=4,
            video_frames=9,
        ),  # fmt: skip
        vae_stats_samples=16,
        save_every=50,
    )


def _tiny_stage1() -> TrainConfig:
    data = replace(_TINY_DATA, mixture=(MixEntry("t2i", 0.5), MixEntry("caption", 0.5)))
    return replace(_tiny(), name="tiny_stage1", stage=1, data=data)


def _tiny_stage2() -> TrainConfig:
    # The stage-2 schedule in miniature: instruction / editing / video / text join at step 100.
    mixture = tuple(
        replace(e, start=min(e.start, 100), stop=None if e.stop is None else 100)
        for e in _stage2().data.mixture
    )
    return replace(_tiny(), name="tiny_stage2", data=replace(_TINY_DATA, mixture=mixture))


def _tiny_stage3() -> TrainConfig:
    return replace(_tiny(), name="tiny_stage3", stage=3, optim=OptimConfig(lr=2e-4, warmup_steps=10))


# ------------------------------------------------------------------------------------ tuna-shapes

# The built-in default model (TunaConfig preset "shapes"): 128² renders (8×8 latents), 17-frame videos
# (5 latent frames), a BPE tokenizer trained on the world's texts. Every stage continues from the last
# one's `final` checkpoint (`init=…`); scripts/train_tuna_shapes.sh chains them.
# Rows of 512 tokens fit the longest sample (a 17-frame video: 5 × 64 latents + text); on a CPU, where
# SDPA computes every masked-out score too, 2,048-token rows spent 42 % of a step in attention.
_SHAPES_DATA = DataConfig(global_batch=16, micro_batch=16, pack_len=512, image_size=128, video_frames=17,
                          shapes_size=128)  # fmt: skip
_SHAPES = dict(model="shapes", tokenizer="shapes", ema_decay=0.0, activation_checkpointing=False,
               save_every=250, keep_last=2, sample_every=500)  # fmt: skip


def _shapes_stage0_vae() -> TrainConfig:
    return replace(
        _stage0_vae(),
        name="shapes_stage0_vae",
        model="shapes",
        tokenizer="shapes",
        # Measured on 2 CPU cores (2.7 steps/s): after 1,500 steps reconstructions are blurry blobs (the
        # shapes detector matches 0/20 scenes), after 4,000 colours are right but small squares and
        # triangles come out rounded (18/40 T2I scenes still satisfy their prompt). tuna-shapes was trained
        # in legs (scripts/train_tuna_shapes.sh); 10,000 steps is the planned budget on a GPU.
        steps=10000,
        optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=100),
        # Videos matter: an image only ever reaches the last temporal slice of each causal 3D kernel, so
        # a VAE trained on images alone leaves every temporal weight random (measured: frames after the
        # first reconstruct at L1 0.4–1.0, the first at 0.005). 9-frame clips (3 latent frames) exercise
        # every temporal weight (5 frames leave the decoder's temporal upsampler on its causal padding) and
        # the chunk-to-chunk cache, at about half a 17-frame clip's cost.
        data=replace(
            _SHAPES_DATA,
            mixture=(
                MixEntry("t2i", 0.4),
                MixEntry("caption", 0.1),
                MixEntry("edit", 0.2),
                MixEntry("video", 0.3),
            ),
            pack_len=None,
            global_batch=8,
            micro_batch=8,
            video_frames=9,
        ),  # fmt: skip
        vae_stats_samples=256,
        save_every=250,
        keep_last=2,
    )


def _shapes_stage0_vae_images() -> TrainConfig:
    # The image-only stage-0 mixture the first three legs of the shipped tuna-shapes VAE ran with (before
    # videos joined the preset); kept so scripts/train_tuna_shapes.sh reproduces that model exactly.
    cfg = _shapes_stage0_vae()
    data = replace(cfg.data, mixture=_mix("t2i", "caption", "edit"), video_frames=17)
    return replace(cfg, name="shapes_stage0_vae_images", data=data)


def _shapes_vae_decoder() -> TrainConfig:
    # Last leg: fine-tune the decoder of the finished model's VAE (init=…/stage3/final). The encoder, and so
    # every latent the other parts learned from, is unchanged; sharper decoding lifts every generation task.
    return replace(
        _shapes_stage0_vae(),
        name="shapes_vae_decoder",
        steps=2000,
        optim=OptimConfig(lr=3e-4, weight_decay=0.0, warmup_steps=50),
        tokenizer="checkpoint",
        vae_train="decoder",
    )


def _shapes_stage1() -> TrainConfig:
    # Decoder frozen (it is random here: stage 1 is short), encoder + flow head learn captioning + T2I.
    return TrainConfig(
        name="shapes_stage1",
        stage=1,
        steps=200,
        optim=OptimConfig(lr=1e-3, warmup_steps=50),
        data=replace(_SHAPES_DATA, mixture=(MixEntry("t2i", 0.5), MixEntry("caption", 0.5))),
        tokenizer="checkpoint",
        **{k: v for k, v in _SHAPES.items() if k != "tokenizer"},
    )


def _shapes_stage2() -> TrainConfig:
    # All data from step 0 (the stage is short); understanding weighs more than the paper's 0.2 because
    # it carries image questions, captions and video questions (ShapesSource's und cycle).
    mixture = (
        MixEntry("t2i", 0.35),
        MixEntry("und", 0.3),
        MixEntry("edit", 0.2),
        MixEntry("video", 0.1),
        MixEntry("text", 0.05),
    )
    return replace(_shapes_stage1(), name="shapes_stage2", stage=2, steps=2200,
                   optim=OptimConfig(lr=1e-3, warmup_steps=200), data=replace(_SHAPES_DATA, mixture=mixture))  # fmt: skip


def _shapes_stage3() -> TrainConfig:
    return replace(
        _shapes_stage2(),
        name="shapes_stage3",
        stage=3,
        steps=300,
        optim=OptimConfig(lr=2e-4, warmup_steps=50),
    )


def _shapes_generation() -> TrainConfig:
    # A generation-only fine-tune of a finished model (init=…): the flow head alone learns T2I, editing
    # and T2V, so every understanding answer (VQA, captions, video questions) stays exactly as it was.
    mixture = (MixEntry("t2i", 0.55), MixEntry("edit", 0.3), MixEntry("video", 0.15))
    return replace(_shapes_stage3(), name="shapes_generation", steps=2800, trainable=("flow_head",),
                   optim=OptimConfig(lr=5e-4, warmup_steps=50), data=replace(_SHAPES_DATA, mixture=mixture))  # fmt: skip


PRESETS = {
    "stage0_vae": _stage0_vae,
    "stage1": _stage1,
    "stage2": _stage2,
    "stage3": _stage3,
    "stage1_7b": lambda: _no_video(_stage1()),
    "stage2_7b": lambda: _no_video(_stage2()),
    "stage3_7b": lambda: _no_video(_stage3()),
    "tiny": _tiny,
    "tiny_stage0_vae": _tiny_stage0_vae,
    "tiny_stage1": _tiny_stage1,
    "tiny_stage2": _tiny_stage2,
    "tiny_stage3": _tiny_stage3,
    "shapes_stage0_vae": _shapes_stage0_vae,
    "shapes_stage0_vae_images": _shapes_stage0_vae_images,
    "shapes_stage1": _shapes_stage1,
    "shapes_stage2": _shapes_stage2,
    "shapes_stage3": _shapes_stage3,
    "shapes_vae_decoder": _shapes_vae_decoder,
    "shapes_generation": _shapes_generation,
}


def get_train_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; `tuna train --list` shows {sorted(PRESETS)}")
    return PRESETS[name]()


def describe(cfg: TrainConfig) -> str:
    """One line per preset for `tuna train --list`."""
    mix = ", ".join(f"{e.kind} {e.weight:g}" + (f"@{e.start}" if e.start else "") for e in cfg.data.mixture)
    return f"stage {cfg.stage}, model {cfg.model}, {cfg.steps} steps, lr {cfg.optim.lr:g}; {mix}"
