"""`make demo`: every task end to end on the built-in default.

Until the trained tuna-shapes checkpoint ships, the default is the `tiny` preset with RANDOM weights:
the training step, the sampled image and the decoded answer are real computations, and their content
is noise by construction. The demo says so plainly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tuna import prompts
from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.sampling.text import stream_text
from tuna.sampling.visual import sample_latents
from tuna.sequence import Visual, build_batch
from tuna.tokenizer import small_tokenizer
from tuna.train.freeze import apply_freezing


def to_image(pixels: torch.Tensor) -> Image.Image:
    """(3, H, W) in [-1, 1] → PIL."""
    array = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def from_image(image: Image.Image) -> torch.Tensor:
    """PIL → (3, 1, H, W) in [-1, 1]."""
    array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32))
    return (array / 127.5 - 1).permute(2, 0, 1)[:, None]


def red_square(size: int = 64) -> Image.Image:
    array = np.full((size, size, 3), 255, dtype=np.uint8)
    array[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (220, 30, 30)
    return Image.fromarray(array)


def run_demo(out: str | Path, seed: int = 0) -> int:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    print("Tuna demo — preset 'tiny' with RANDOM weights (the trained tuna-shapes model is not shipped yet):")
    print("every step below really runs; the image and the answer are noise until the model is trained.\n")
    cfg = get_preset("tiny")
    tokenizer = small_tokenizer()
    model = TunaModel(cfg)
    model.init_weights()
    model.tokenizer = tokenizer
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731

    # 1. One stage-2 training step on a captioning + text-to-image batch.
    image = red_square()
    pixels = from_image(image)
    samples = [
        prompts.captioning(encode, Visual(pixels=pixels), "a red square in the middle"),
        prompts.text_to_visual(encode, "a red square in the middle", Visual(pixels=pixels, noisy=True)),
    ]
    batch = build_batch(samples, cfg.tokens, cfg.vae)
    apply_freezing(model, stage=2)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    start = time.perf_counter()
    losses = model(batch, generator=torch.Generator().manual_seed(seed))
    losses["loss"].backward()
    optimizer.step()
    print(
        f"[train]  one step in {time.perf_counter() - start:.2f} s: loss {losses['loss']:.4f} "
        f"(text {losses['text']:.4f}, flow {losses['flow']:.4f})"
    )
    model.eval()

    # 2. Text-to-image: 64×64, 20 Euler steps, CFG 4 (prompt keys/values computed once).
    start = time.perf_counter()
    prompt = prompts.conversation(encode, [("user", ["a blue circle"])], add_generation_prompt=True)
    negative = prompts.conversation(encode, [("user", [""])], add_generation_prompt=True)
    grid = model.vae.latent_shape(1, 64, 64)
    latents = sample_latents(model, [prompt], [negative], grid, steps=20, cfg_scale=4.0, seeds=[seed])
    generated = to_image(model.vae.decode(latents)[0, :, 0])
    generated.save(out / "t2i.png")
    print(f"[t2i]    'a blue circle' → {out / 't2i.png'} in {time.perf_counter() - start:.2f} s")

    # 3. Understanding: a question about the image, greedy KV-cached decoding.
    start = time.perf_counter()
    question = prompts.conversation(
        encode, [("user", [Visual(pixels=pixels), "What shape is red?"])], add_generation_prompt=True
    )
    qbatch = build_batch([question], cfg.tokens, cfg.vae)
    latents = model.encode_latents(qbatch.visuals)
    embeds = model.embed_sequence(
        qbatch.input_ids, qbatch.blocks, model.embed_blocks(latents, torch.ones(len(latents)))
    )
    ids = list(stream_text(model, embeds, qbatch.position_ids, qbatch.layout, 16, {cfg.tokens.im_end_id}))
    answer = tokenizer.decode(ids, skip_special_tokens=True)
    print(f"[chat]   'What shape is red?' → {answer!r} in {time.perf_counter() - start:.2f} s")
    image.save(out / "question.png")
    (out / "answer.txt").write_text(answer + "\n")
    print(f"\nWrote {out}/t2i.png, {out}/question.png and {out}/answer.txt.")
    return 0
