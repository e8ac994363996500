"""Typed configs for every Tuna component, and the one registry of named presets.

A preset is a `TunaConfig`; variants are made with `dataclasses.replace`, never by editing in place.
When a model is built from real checkpoints (`TunaModel.from_components`), the decoder, encoder and
VAE sections are read from the checkpoints' own config files; the preset only supplies what those
components do not define (connector, flow head, noise schedule, loss weights).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DecoderConfig:
    """The Qwen2.5 language decoder (names follow transformers' `Qwen2Config`)."""

    vocab_size: int = 151936
    hidden_size: int = 1536
    intermediate_size: int = 8960  # SwiGLU inner width
    num_layers: int = 28
    num_heads: int = 12
    num_kv_heads: int = 2  # grouped-query attention
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 32768
    # Multimodal 3D-RoPE: how many of the head_dim/2 rotary frequencies follow the temporal, height and
    # width position ids (Qwen2-VL's "mrope_section"). Text tokens carry t = h = w, so any split
    # reduces exactly to 1D RoPE on text.
    mrope_section: tuple[int, int, int] = (16, 24, 24)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads {self.num_heads} must be a multiple of num_kv_heads {self.num_kv_heads}"
            )
        if sum(self.mrope_section) != self.head_dim // 2:
            raise ValueError(
                f"mrope_section {self.mrope_section} must sum to head_dim/2 = {self.head_dim // 2}"
            )


@dataclass(frozen=True)
class EncoderConfig:
    """The representation encoder Φ′: a SigLIP 2 vision trunk over VAE latents (1×1 patches)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_layers: int = 27  # layers in the pretrained checkpoint
    num_heads: int = 16
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"
    # Side of the square grid the pretrained position embeddings were learnt on (patch16-512: 32);
    # other latent grids and aspect ratios get a bilinear interpolation of it.
    position_grid: int = 32
    # Which hidden state feeds the connector, indexed like transformers' `hidden_states` tuple
    # (0 = patch embeddings, num_layers = last layer). The official code drops the last layer: -2.
    feature_layer: int = -2

    @property
    def feature_depth(self) -> int:
        """How many transformer layers actually run (later layers are never built)."""
        depth = self.feature_layer if self.feature_layer >= 0 else self.num_layers + 1 + self.feature_layer
        if not 0 < depth <= self.num_layers:
            raise ValueError(f"feature_layer {self.feature_layer} is outside 1..{self.num_layers} layers")
        return depth


@dataclass(frozen=True)
class VAEConfig:
    """Arguments of diffusers' `AutoencoderKLWan` (defaults: Wan 2.2, 48 channels, 16×/4×)."""

    base_dim: int = 160
    decoder_base_dim: int | None = 256
    z_dim: int = 48
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)  # diffusers' spelling
    dropout: float = 0.0
    is_residual: bool = True
    in_channels: int = 12
    out_channels: int = 12
    patch_size: int | None = 2
    scale_factor_temporal: int = 4
    scale_factor_spatial: int = 16
    # Per-channel latent statistics, read from the checkpoint's config.json. A freshly initialised VAE
    # (tests, stage-0 training) has none: normalisation is then the identity until they are measured.
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None

    def diffusers_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `AutoencoderKLWan(**kwargs)`."""
        kwargs = dataclasses.asdict(self)
        for key, value in kwargs.items():
            if isinstance(value, tuple):
                kwargs[key] = list(value)
        return kwargs


@dataclass(frozen=True)
class FlowHeadConfig:
    """The flow-matching head: decoder-architecture blocks with AdaLN-Zero timestep conditioning."""

    num_layers: int = 40
    hidden_size: int = 1536  # when it differs from the decoder's, a 2-layer MLP projects into it
    intermediate_size: int = 8960
    num_heads: int = 24
    num_kv_heads: int = 8
    timestep_freq_dim: int = 256  # sinusoidal features before the timestep MLP (DiT)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class NoiseConfig:
    """How training draws the flow-matching time t (t = 1 is clean data, t = 0 pure noise)."""

    distribution: str = "logit_normal"  # "uniform" | "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 3.0  # >1 spends more steps near noise; see tuna.model.noise.shift_time
    # Resolution-dependent shift: the shift grows with sqrt(tokens / base_tokens) when enabled.
    resolution_shift: bool = False
    base_tokens: int = 1024


@dataclass(frozen=True)
class TokenConfig:
    """Ids of the special tokens the sequence builder places (Qwen2.5's by default)."""

    pad_id: int = 151643  # <|endoftext|>
    im_start_id: int = 151644
    im_end_id: int = 151645
    vision_start_id: int = 151652
    vision_end_id: int = 151653
    image_pad_id: int = 151655  # placeholder id stored at visual-token positions; never embedded


@dataclass(frozen=True)
class TunaConfig:
    name: str = "custom"
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    flow_head: FlowHeadConfig = field(default_factory=FlowHeadConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    connector_hidden_size: int | None = None  # None: the decoder width (official connector)
    loss_text_weight: float = 0.2
    loss_flow_weight: float = 1.0
    image_size: int = 512  # default generation side; input images are resized to about this area
    video_frames: int = 17  # default frames for T2V and for sampling an input video (1 + 4k)

    @property
    def latent_channels(self) -> int:
        return self.vae.z_dim

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunaConfig:
        sections = {
            "decoder": DecoderConfig,
            "encoder": EncoderConfig,
            "vae": VAEConfig,
            "flow_head": FlowHeadConfig,
            "noise": NoiseConfig,
            "tokens": TokenConfig,
        }
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TunaConfig keys {sorted(unknown)}; expected some of {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _section_from_dict(sections[key], value, key)
            else:
                kwargs[key] = value
        return cls(**kwargs)


def _section_from_dict(section: type, data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section {name!r} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} in config section {name!r}; expected {sorted(fields)}"
        )
    # JSON turns tuples into lists; restore them so configs compare equal after a round trip.
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return section(**values)


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------


def _tiny() -> TunaConfig:
    # Every component at toy width: under 5 M parameters, forward + backward well under a second on CPU.
    return TunaConfig(
        name="tiny",
        decoder=DecoderConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=128,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            rope_theta=10000.0,
            tie_word_embeddings=True,
            max_position_embeddings=4096,
            mrope_section=(2, 3, 3),
        ),
        encoder=EncoderConfig(
            hidden_size=48,
            intermediate_size=96,
            num_layers=3,
            num_heads=4,
            position_grid=8,
            feature_layer=-2,
        ),
        vae=VAEConfig(
            base_dim=16,
            decoder_base_dim=None,
            z_dim=8,
            dim_mult=(1, 2, 2, 2),
            num_res_blocks=1,
        ),
        flow_head=FlowHeadConfig(
            num_layers=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            num_kv_heads=2,
            timestep_freq_dim=64,
        ),
        image_size=64,
        video_frames=5,
        tokens=TokenConfig(
            pad_id=0, im_start_id=1, im_end_id=2, vision_start_id=3, vision_end_id=4, image_pad_id=5
        ),
    )


def _shapes() -> TunaConfig:
    # tuna-shapes, the built-in default: every component small enough to train on the shapes world
    # (128² renders → 8×8 latents, 17-frame videos → 5 latent frames) and ship in < 50 MB.
    return TunaConfig(
        name="shapes",
        decoder=DecoderConfig(
            vocab_size=1024,
            hidden_size=256,
            intermediate_size=704,
            num_layers=6,
            num_heads=4,
            num_kv_heads=2,
            rope_theta=10000.0,
            tie_word_embeddings=True,
            max_position_embeddings=4096,
            mrope_section=(8, 12, 12),
        ),
        encoder=EncoderConfig(
            hidden_size=192,
            intermediate_size=512,
            num_layers=4,
            num_heads=3,
            position_grid=8,
            feature_layer=-2,
        ),
        vae=VAEConfig(
            base_dim=16,
            decoder_base_dim=None,
            z_dim=16,
            dim_mult=(1, 2, 2, 2),
            num_res_blocks=1,
        ),
        flow_head=FlowHeadConfig(
            num_layers=4,
            hidden_size=256,
            intermediate_size=704,
            num_heads=4,
            num_kv_heads=2,
            timestep_freq_dim=128,
        ),
        image_size=128,
        video_frames=17,
        tokens=TokenConfig(
            pad_id=0, im_start_id=1, im_end_id=2, vision_start_id=3, vision_end_id=4, image_pad_id=5
        ),
    )


def _qwen_1_5b() -> TunaConfig:
    # Qwen2.5-1.5B-Instruct + SigLIP 2 so400m (patch16-512) + Wan 2.2 VAE. The flow head follows the
    # official 1.5B config: 40 blocks at the decoder's width with 24 query / 8 KV heads of dim 64
    # (about 2.5 B parameters, larger than the LLM). The paper only says the head "shares the LLM
    # decoder architecture"; its ablations use a smaller head, which `dataclasses.replace` gives.
    return TunaConfig(name="1.5b")


def _qwen_7b() -> TunaConfig:
    # Qwen2.5-7B-Instruct + the same encoder and VAE; official 7B head: 16 blocks, 56 heads, 14 KV heads.
    return TunaConfig(
        name="7b",
        decoder=DecoderConfig(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_layers=28,
            num_heads=28,
            num_kv_heads=4,
            tie_word_embeddings=False,
        ),
        flow_head=FlowHeadConfig(
            num_layers=16,
            hidden_size=3584,
            intermediate_size=18944,
            num_heads=56,
            num_kv_heads=14,
        ),
    )


PRESETS = {"tiny": _tiny, "shapes": _shapes, "1.5b": _qwen_1_5b, "7b": _qwen_7b}


def get_preset(name: str) -> TunaConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
