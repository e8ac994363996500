"""TunaModel: VAE → noising → representation encoder Φ′ → connector → Qwen2.5 decoder → LM / flow heads.

Training calls `forward(batch)`, which returns the named loss terms. Inference composes the same
pieces (`encode_latents`, `embed_visuals`, `embed_sequence`, `attention_mask`, `decoder`, `flow_head`)
with caches; see `tuna.sampling`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from tuna.config import TunaConfig
from tuna.model.connector import Connector
from tuna.model.decoder import QwenDecoder
from tuna.model.encoder import RepresentationEncoder
from tuna.model.flow_head import FlowHead
from tuna.model.flow_tokens import flow_rows
from tuna.model.losses import tuna_loss
from tuna.model.masks import AttentionMask, TokenLayout, build_attention_mask
from tuna.model.noise import add_noise, sample_time, velocity_target
from tuna.model.timestep import TimestepEmbedder
from tuna.model.vae import WanVAE
from tuna.sequence import IGNORE, TunaBatch, Visual, VisualBlock


class TunaModel(nn.Module):
    def __init__(self, cfg: TunaConfig):
        super().__init__()
        self.cfg = cfg
        self.vae = WanVAE(cfg.vae)  # always frozen: Tuna never trains the pretrained VAE
        self.encoder = RepresentationEncoder(cfg.encoder, cfg.latent_channels)
        self.connector = Connector(
            cfg.encoder.hidden_size, cfg.decoder.hidden_size, cfg.connector_hidden_size
        )
        self.time_token = TimestepEmbedder(cfg.decoder.hidden_size, cfg.flow_head.timestep_freq_dim)
        self.decoder = QwenDecoder(cfg.decoder)
        self.flow_head = FlowHead(cfg.flow_head, cfg.decoder, cfg.latent_channels)
        # "auto": FlexAttention on CUDA, SDPA with a dense boolean mask elsewhere (flex has no CPU backward).
        self.attn_backend = "auto"
        self.tokenizer = None  # attached by from_pretrained / from_components; not part of the weights

    def init_weights(self) -> None:
        self.encoder.init_weights()
        for layer in self.connector.modules():
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.time_token.init_weights()
        self.decoder.init_weights()
        self.flow_head.init_weights()

    # ---------------------------------------------------------------- pieces shared with inference

    def attention_mask(self, layout: TokenLayout, q_start: int = 0) -> AttentionMask:
        backend = self.attn_backend
        if backend == "auto":
            backend = "flex" if layout.sample_ids.is_cuda else "sdpa"
        return build_attention_mask(layout, backend=backend, q_start=q_start)

    @torch.no_grad()
    def encode_latents(
        self, visuals: list[Visual], generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Clean normalised latents (C, f, h, w) for each visual; same-shaped pixels share one VAE call."""
        out: list[torch.Tensor | None] = [v.latents for v in visuals]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, v in enumerate(visuals):
            if v.latents is None:
                pixels = v.pixels if v.pixels.ndim == 4 else v.pixels[:, None]
                groups[tuple(pixels.shape)].append(i)
        dtype = next(self.vae.parameters()).dtype
        for idx in groups.values():
            pixels = torch.stack(
                [visuals[i].pixels.reshape(3, -1, *visuals[i].pixels.shape[-2:]) for i in idx]
            )
            latents = self.vae.encode(pixels.to(dtype), generator=generator)
            for i, z in zip(idx, latents):
                out[i] = z
        return out  # type: ignore[return-value]

    def embed_visuals(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(N, C, f, h, w) noisy latents at times t (N,) → (N, 1 + f·h·w, D): timestep token + visual tokens."""
        tokens = self.connector(self.encoder(latents))  # (N, f·h·w, D)
        time_token = self.time_token(t).to(tokens.dtype)[:, None]  # (N, 1, D)
        return torch.cat([time_token, tokens], dim=1)

    def embed_sequence(
        self, input_ids: torch.Tensor, blocks: list[VisualBlock], block_embeds: list[torch.Tensor]
    ) -> torch.Tensor:
        """Text embeddings with each visual block's (1 + n, D) embeddings written at its slot."""
        embeds = self.decoder.embed(input_ids)  # (B, L, D)
        if not blocks:
            return embeds
        rows = torch.cat([torch.full((1 + b.num_tokens,), b.row) for b in blocks]).to(embeds.device)
        cols = torch.cat([torch.arange(b.start, b.start + 1 + b.num_tokens) for b in blocks]).to(
            embeds.device
        )
        values = torch.cat(block_embeds, dim=0).to(embeds.dtype)
        return embeds.index_put((rows, cols), values)

    def embed_blocks(self, noisy_latents: list[torch.Tensor], t: torch.Tensor) -> list[torch.Tensor]:
        """Embed each visual (C, f, h, w) at its time; visuals of one latent shape share a forward."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, z in enumerate(noisy_latents):
            groups[tuple(z.shape)].append(i)
        out: list[torch.Tensor | None] = [None] * len(noisy_latents)
        for idx in groups.values():
            embeds = self.embed_visuals(torch.stack([noisy_latents[i] for i in idx]), t[idx])
            for i, e in zip(idx, embeds):
                out[i] = e
        return out  # type: ignore[return-value]

    def embed_clean(self, batch: TunaBatch) -> torch.Tensor:
        """(B, L, D) embeddings of a batch whose visuals are all clean (t = 1): prompts to answer or to
        continue (understanding questions, edit sources)."""
        latents = self.encode_latents(batch.visuals)
        t = torch.ones(len(latents), device=batch.input_ids.device)
        return self.embed_sequence(batch.input_ids, batch.blocks, self.embed_blocks(latents, t))

    # ---------------------------------------------------------------- training forward

    def forward(self, batch: TunaBatch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms for a batch: {"loss", "text", "flow"}."""
        device = batch.input_ids.device
        clean = self.encode_latents(batch.visuals, generator)
        n = len(clean)
        t = torch.ones(n, device=device)
        noisy_latents, targets = list(clean), {}
        for i, (z, v) in enumerate(zip(clean, batch.visuals)):
            if v.noisy:
                t[i] = sample_time(
                    1, self.cfg.noise, tokens=z[0].numel(), generator=generator, device=device
                )[0]
                x0 = torch.randn(z.shape, generator=generator, device=device, dtype=z.dtype)
                noisy_latents[i] = add_noise(z[None], x0[None], t[i : i + 1])[0]
                targets[i] = velocity_target(z, x0)
        # Under FSDP every process must run every sharded module, in the same order, and give every
        # trainable parameter a gradient on every micro-batch: processes all-gather the modules they run
        # and reduce-scatter the gradients they have. A part this batch has no work for (no visuals, no
        # noisy block, no supervised text) runs on one dummy token, where the real one would run, and
        # enters the loss times 0.
        idle = []
        if not batch.visuals:
            idle.append(self.embed_visuals(self._dummy_latent(device), torch.ones(1, device=device)))
        embeds = self.embed_sequence(batch.input_ids, batch.blocks, self.embed_blocks(noisy_latents, t))
        mask = self.attention_mask(batch.layout)
        hidden = self.decoder(embeds, batch.position_ids, mask)  # (B, L, D)

        supervised = batch.targets != IGNORE
        logits = self.decoder.logits(hidden[supervised]) if supervised.any() else None
        if logits is None:
            idle.append(self.decoder.logits(hidden[:1, :1]))
        velocity = target = None
        noisy_blocks = [b for b in batch.blocks if b.noisy]
        if noisy_blocks:
            # Only the samples with a noisy block, each up to its last one (`flow_tokens`). Blocks are
            # numbered like visuals (block k ≥ 1 is visual k − 1), so t doubles as the table.
            rows = flow_rows(batch.layout, batch.position_ids, batch.blocks)
            velocity = self.flow_head(
                rows.gather(hidden), rows.position_ids, self.attention_mask(rows.layout),
                rows.layout.block_ids, t, rows.out_rows, rows.out_cols,
            )  # fmt: skip
            target = torch.cat([rearrange(targets[b.visual], "c f h w -> (f h w) c") for b in noisy_blocks])
        else:
            idle.append(self._idle_flow_head(hidden[:1, :1], batch.position_ids[:, :1, :1]))
        terms = tuna_loss(
            logits,
            batch.targets[supervised] if logits is not None else None,
            velocity,
            target,
            self.cfg.loss_text_weight,
            self.cfg.loss_flow_weight,
            device=device,
        )
        if idle:
            terms["loss"] = terms["loss"] + 0.0 * sum(x.float().sum() for x in idle)
        return terms

    def _dummy_latent(self, device) -> torch.Tensor:
        """One clean latent cell (1, C, 1, 1, 1), in the encoder's dtype."""
        dtype = next(self.encoder.parameters()).dtype
        return torch.zeros(1, self.cfg.latent_channels, 1, 1, 1, device=device, dtype=dtype)

    def _idle_flow_head(self, hidden: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """The flow head on one token (1, 1, D) conditioned on t = 1: every one of its parameters used."""
        one = torch.ones((1, 1), dtype=torch.long, device=hidden.device)
        at = torch.zeros(1, dtype=torch.long, device=hidden.device)
        # One token attends to itself: SDPA's causal mask on any device (no flex kernel for a 1-token shape).
        mask = AttentionMask.causal()
        return self.flow_head(hidden, position_ids, mask, one, torch.ones(1, device=hidden.device), at, at)

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_pretrained(cls, directory: str | Path, device="cpu", dtype=torch.float32) -> TunaModel:
        from tuna.model.loading import load_pretrained

        return load_pretrained(directory, device=device, dtype=dtype)

    @classmethod
    def from_components(
        cls, llm: str | Path, vision: str | Path, vae: str | Path, preset: str = "1.5b", **kw
    ):
        from tuna.model.loading import build_from_components

        return build_from_components(llm=llm, vision=vision, vae=vae, preset=preset, **kw)

    def save_pretrained(self, directory: str | Path) -> None:
        from tuna.model.loading import save_pretrained

        save_pretrained(self, directory)
