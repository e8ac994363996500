"""Samples every N steps: a generated image (`sample_latents` + VAE decode) and a greedy text answer.

Collective under FSDP (every process runs the same forwards); the main process writes the files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tuna import prompts
from tuna.data.formats import Formatter
from tuna.data.shapes.world import ShapesWorld, WorldConfig
from tuna.media import pixels_to_images
from tuna.sampling.text import stream_text
from tuna.sampling.visual import sample_latents
from tuna.sequence import Visual, build_batch
from tuna.train.parallelize import Dist

PROMPT = "a red circle to the left of a blue square"
QUESTION = "Describe the image."


@torch.no_grad()
def write_samples(model, trained: nn.Module, out: Path, d: Dist, size: int = 64, steps: int = 20) -> None:
    cfg, tok = model.cfg, model.tokenizer
    encode = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    unshard = getattr(trained, "unshard", None)  # FSDP root: gather the root group once for all calls
    if unshard is not None:
        unshard()
    model.eval()
    try:
        prompt = prompts.conversation(encode, [("user", [PROMPT])], add_generation_prompt=True)
        grid = model.vae.latent_shape(1, size, size)
        latents = sample_latents(model, [prompt], None, grid, steps=steps, cfg_scale=1.0, seeds=[0])
        image = pixels_to_images(model.vae.decode(latents)[0])[0]
        shapes = ShapesWorld(seed=0, split="val", config=WorldConfig(height=size, width=size)).sample(
            "caption", 0
        )
        fmt = Formatter(encode, size, cfg.vae.scale_factor_spatial, 1)
        question = prompts.conversation(
            encode,
            [("user", [Visual(pixels=fmt.pixels(shapes.image)), QUESTION])],
            add_generation_prompt=True,
        )
        batch = build_batch([question], cfg.tokens, cfg.vae).to(next(model.decoder.parameters()).device)
        latents = model.encode_latents(batch.visuals)
        t = torch.ones(len(latents), device=batch.input_ids.device)
        embeds = model.embed_sequence(batch.input_ids, batch.blocks, model.embed_blocks(latents, t))
        ids = list(stream_text(model, embeds, batch.position_ids, batch.layout, 32, {cfg.tokens.im_end_id}))
        answer = tok.decode(ids, skip_special_tokens=True)
    finally:
        model.train()
        if unshard is not None:
            trained.reshard()
    if d.is_main:
        out.mkdir(parents=True, exist_ok=True)
        image.save(out / "t2i.png")
        shapes.image.save(out / "question.png")
        (out / "answers.txt").write_text(
            f"T2I prompt: {PROMPT}\nQ: {QUESTION}\nA: {answer}\nTruth: {shapes.caption}\n"
        )
