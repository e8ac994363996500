"""Mixture entries (kind, weight, path | shapes world, start, stop) → a `DataStream`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tuna.config import TokenConfig, VAEConfig
from tuna.data.formats import Formatter
from tuna.data.mixture import DataStream, Entry
from tuna.data.shapes_source import ShapesSource
from tuna.data.sources import open_source


def build_stream(
    mixture: Sequence[Any],
    data: Any,
    encode: Callable[[str], list[int]],
    tokens: TokenConfig,
    vae: VAEConfig,
    seed: int,
) -> DataStream:
    """`mixture` holds MixEntry-like objects; `data` a DataConfig (sizes, batch, bounds)."""
    entries = []
    for m in mixture:
        if m.path is None:
            source = ShapesSource(
                m.kind,
                seed=seed,
                size=data.shapes_size,
                frames=data.video_frames,
                vqa_turns=data.shapes_vqa_turns,
            )
            name = f"shapes:{m.kind}"
        else:
            source = open_source(m.path, m.kind)
            name = f"{m.kind}={m.path}"
        entries.append(Entry(source, m.weight, m.start, m.stop, name))
    fmt = Formatter(encode, data.image_size, vae.scale_factor_spatial, data.video_frames, data.cond_dropout)
    return DataStream(
        entries,
        fmt,
        seed,
        data.global_batch,
        data.pack_len,
        data.max_bad_fraction,
        data.bad_grace,
        tokens,
        vae,
    )
