"""Training and inference agree end to end: `tuna train` on a two-example world (two pictures, each with
its caption), then the pipeline generates each caption's own picture and captions each picture.

The losses alone cannot show this: a model fits its training loss whatever the samplers do. Checked by
breaking one side on purpose: inference without the system turn training had → the captions fail;
generated blocks placed 40 positions past where training put them (a prompt-cache bug) → the pictures
fail. Not caught: the flow time itself (with two 4 × 4-latent pictures the noise level shows in x_t,
so even a reversed t samples them); tests/test_sampling.py checks that the sampler's velocity is the
training forward's prediction at the same x_t and t.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pytest
import torch
from PIL import Image, ImageDraw

from tuna import media
from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.pipeline import TunaPipeline
from tuna.prompts import CAPTION_PROMPT
from tuna.sampling.visual import sample_latents
from tuna.tokenizer import small_tokenizer
from tuna.train.config import MixEntry
from tuna.train.loop import train
from tuna.train.objectives import latent_stats
from tuna.train.presets import get_train_preset

SIDE = 64  # the tiny preset's size: 4 × 4 latents


def picture(color: tuple[int, int, int], shape: str) -> Image.Image:
    image = Image.new("RGB", (SIDE, SIDE), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    if shape == "square":
        draw.rectangle([8, 8, 36, 36], fill=color)
    else:
        draw.ellipse([26, 26, 58, 58], fill=color)
    return image


WORLD = {"a red square": picture((220, 40, 40), "square"), "a blue circle": picture((40, 60, 220), "circle")}


def fresh_model_with_latent_stats(directory):
    """The tiny preset with its (random) VAE's latent statistics measured on the world, as stage 0 would:
    flow matching assumes latents of about unit variance."""
    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    mean, std = latent_stats(
        model.vae.autoencoder, [media.image_to_pixels(im, SIDE, 16) for im in WORLD.values()]
    )
    model.cfg = dataclasses.replace(
        model.cfg, vae=dataclasses.replace(model.cfg.vae, latents_mean=mean, latents_std=std)
    )
    model.vae.reset_latent_stats()
    model.save_pretrained(directory)


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_examples")
    records = []
    for i, (caption, image) in enumerate(WORLD.items()):
        image.save(root / f"{i}.png")
        records.append({"image": str(root / f"{i}.png"), "caption": caption})
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    fresh_model_with_latent_stats(root / "init")
    base = get_train_preset("tiny")
    cfg = replace(
        base,
        init=str(root / "init"),
        tokenizer="checkpoint",
        steps=400,
        save_every=10**6,
        optim=replace(base.optim, lr=3e-3, warmup_steps=10),
        data=replace(
            base.data,
            mixture=(MixEntry("t2i", 0.6, str(data)), MixEntry("caption", 0.4, str(data))),
            cond_dropout=0.0,
        ),
    )
    rows = train(cfg, root / "run")
    return TunaPipeline.from_pretrained(root / "run" / "final"), rows


def test_training_fits_both_tasks(learnt):
    _, rows = learnt
    first, last = rows[0], rows[-1]
    assert last["flow"] < 0.2 * first["flow"] and last["text"] < 0.1 * first["text"]


def test_each_prompt_generates_its_own_picture(learnt):
    pipe, _ = learnt
    prompts = list(WORLD)
    pixels = torch.stack([media.image_to_pixels(WORLD[p], SIDE, 16) for p in prompts])
    with torch.no_grad():
        targets = pipe.model.vae.encode(pixels).flatten(1)
    rows = [pipe.prompt_segments(p) for p in prompts]
    for seeds in ([0, 1], [7, 8]):
        latents = sample_latents(pipe.model, rows, None, (1, 4, 4), steps=30, cfg_scale=1.0, seeds=seeds)
        distance = torch.cdist(latents.flatten(1), targets) / targets.norm(dim=1)  # [generated, target]
        own, other = distance.diag(), distance.flip(1).diag()
        assert (own < 0.5).all() and (own < 0.5 * other).all(), distance


def test_each_picture_gets_its_own_caption(learnt):
    pipe, _ = learnt
    for caption, image in WORLD.items():
        reply = pipe.chat([{"role": "user", "content": [{"type": "image", "image": image},
                                                        {"type": "text", "text": CAPTION_PROMPT}]}])  # fmt: skip
        assert reply == caption
