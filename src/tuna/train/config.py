"""Typed training configs: optimiser, data mixture and the run itself.

A training preset (`tuna.train.presets`) is one `TrainConfig`; variants are `dataclasses.replace`d,
and the command line's `key=value` overrides go through `with_overrides` (dotted keys reach nested
sections: `optim.lr=3e-4`, `data.global_batch=16`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from tuna.config import NoiseConfig


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.01  # applied to ≥2-D parameters only (matrices, embeddings), never norms/biases
    warmup_steps: int = 2000  # linear warm-up from 0, then cosine decay to min_lr_ratio · lr
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping


@dataclass(frozen=True)
class MixEntry:
    """One data source in the mixture. `path` None means the built-in shapes world."""

    kind: str  # t2i | caption | und | edit | video | text
    weight: float
    path: str | None = None
    start: int = 0  # first training step at which the source is drawn from
    stop: int | None = None  # step at which it leaves the mixture (None: never)


# The official recipe's task mixture; the kinds not named there get the weights documented beside them.
DEFAULT_WEIGHTS = {"t2i": 0.5, "edit": 0.2, "und": 0.2, "text": 0.1, "caption": 0.2, "video": 0.1}
KINDS = tuple(DEFAULT_WEIGHTS)


@dataclass(frozen=True)
class DataConfig:
    mixture: tuple[MixEntry, ...] = ()
    global_batch: int = 8  # samples per optimiser step, summed over all processes and micro-batches
    micro_batch: int = 8  # samples per forward; global_batch / (micro_batch · world) = accumulation steps
    pack_len: int | None = 1024  # pack each micro-batch into rows of this many tokens (None: one per row)
    image_size: int = 512  # input images keep their aspect ratio at about image_size² pixels (buckets)
    video_frames: int = 17  # frames sampled from each video (1 + 4k)
    shapes_size: int = 128  # canvas side of the built-in shapes world
    # Questions asked about each built-in VQA image or video: the balanced first one, then any true
    # questions about the same scene (tuna.data.shapes.vqa.derive_qa, video.derive_video_qa). More answers
    # per image or video encoded, and questions about several objects of one scene, which only a model
    # that tells those objects apart can all answer.
    shapes_vqa_turns: int = 1
    cond_dropout: float = 0.1  # share of generation samples trained without their condition (for CFG)
    max_bad_fraction: float = 0.05  # stop when more than this share of records read so far were bad…
    bad_grace: int = 50  # …once at least this many records have been read
    # Processes loading the next steps' samples while the model trains (None: 0 on the CPU, whose cores
    # run the model; up to 8 beside a GPU). Which samples a run sees does not depend on it.
    workers: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    name: str = "custom"
    stage: int = 2  # 0: VAE (+ stats); 1–3: the paper's stages (see tuna.train.freeze)
    # The model parts this run trains instead of its stage's (stages 1–3; tuna.train.freeze.MODEL_PARTS),
    # e.g. trainable=flow_head fine-tunes generation and leaves every understanding answer unchanged.
    trainable: tuple[str, ...] | None = None
    model: str = "tiny"  # TunaConfig preset used when `init` is not given
    init: str | None = None  # a Tuna checkpoint directory (save_pretrained) to start from
    # Stage-1 initialisation from public checkpoints (TunaModel.from_components), when all three are set.
    init_llm: str | None = None
    init_vision: str | None = None
    init_vae: str | None = None
    tokenizer: str = "bytes"  # bytes (byte-level) | shapes (BPE on the shapes world) | qwen25 | checkpoint
    steps: int = 1000
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    ema_decay: float = 0.0  # 0 disables EMA; else ema = decay · ema + (1 − decay) · param each step
    bf16: bool = True  # bf16 autocast on CUDA (CPU always runs fp32: it has no bf16 units)
    activation_checkpointing: bool = False
    save_every: int = 500
    keep_last: int = 3
    # "full": one file written by the main process (gathers everything there: fine up to ~1B parameters);
    # "sharded": a torch.distributed.checkpoint directory, each process writing its own shards (the big
    # presets). Both resume on any number of processes.
    checkpoint_format: str = "full"
    log_every: int = 1  # metrics.jsonl gets every step; the progress bar refreshes this often
    sample_every: int = 0  # 0: no samples
    vae_kl_weight: float = 1e-6  # stage 0: reconstruction L1 + this · KL
    vae_edge_weight: float = 0.0  # stage 0: + this · L1 of the pixel differences (sharp edges and corners)
    vae_stats_samples: int = 64  # stage 0: images whose latents set latents_mean / latents_std
    # stage 0: "all" trains encoder and decoder; "decoder" fine-tunes the decoder of a trained model's VAE
    # (encoder, latents and their statistics unchanged, so the rest of the model stays valid)
    vae_train: str = "all"
    # With vae_train="decoder": rebuild the decoder at this base width (diffusers' `decoder_base_dim`;
    # Wan 2.2's decoder is wider than its encoder too) and train it from scratch on the init model's
    # fixed encoder. None keeps the init model's decoder and fine-tunes it.
    vae_decoder_width: int | None = None
    # The flow-time distribution this run trains with; None keeps the model's (its preset's, or the `init`
    # checkpoint's). Set, it replaces the model's and is saved with it, so samplers follow it too.
    noise: NoiseConfig | None = None


def with_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Apply `key=value` strings (dotted keys for nested dataclasses) to a frozen dataclass."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        cfg = _set(cfg, key.split("."), value, key)
    return cfg


def _set(obj: Any, path: list[str], raw: str, full: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if path[0] not in fields:
        raise ValueError(f"unknown config key {full!r}; {type(obj).__name__} has {sorted(fields)}")
    current = getattr(obj, path[0])
    if len(path) > 1 and current is None:
        # An optional section left unset (`noise`) starts from its defaults when one key is overridden.
        hint = typing.get_type_hints(type(obj))[path[0]]
        section = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        current = section[0]() if section else None
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"config key {full!r}: {path[0]} is not a section")
        return dataclasses.replace(obj, **{path[0]: _set(current, path[1:], raw, full)})
    hint = typing.get_type_hints(type(obj))[path[0]]
    return dataclasses.replace(obj, **{path[0]: _parse(raw, hint, full)})


def _parse(raw: str, hint: Any, key: str) -> Any:
    """Parse a command-line value by the field's annotation (int, float, bool, str, optional, tuple)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    try:
        if typing.get_origin(hint) is tuple:
            return tuple(_parse(v, args[0], key) for v in raw.split(","))
        if hint is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if hint in (int, float, str):
            return hint(raw)
    except ValueError:
        raise ValueError(
            f"config key {key!r}: cannot read {raw!r} as {getattr(hint, '__name__', hint)}"
        ) from None
    raise ValueError(f"config key {key!r} cannot be set from the command line")
