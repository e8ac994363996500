"""Tuna benchmarks (issue #7): training step, T2I, understanding, VAE — with Hugging Face baselines.

    python -m benchmarks.run --preset 1.5b --device cuda --dtype bf16     # real sizes, one GPU
    python -m benchmarks.run --smoke                                      # tiny preset on CPU (CI)

Random weights at real sizes; results go to benchmarks/results/<preset>-<device>.json. --smoke shrinks
images, steps and iterations so every code path runs in seconds; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.flops import attention_flops, count_linear_flops, measure_matmul_peak
from benchmarks.timing import peak_memory_gib, timed
from tuna import prompts
from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.sampling.text import decode_batch
from tuna.sampling.visual import sample_latents
from tuna.sequence import Text, Visual, build_batch
from tuna.train.freeze import apply_freezing


@dataclass
class Setup:
    image: int  # image side in pixels
    steps: int  # denoising steps
    iters: int  # timed iterations
    question_tokens: int
    decode_tokens: int
    video_frames: int


REAL = Setup(image=512, steps=50, iters=5, question_tokens=64, decode_tokens=128, video_frames=17)
SMOKE = Setup(image=32, steps=2, iters=1, question_tokens=8, decode_tokens=4, video_frames=5)


def build(preset: str, device: torch.device, dtype: torch.dtype) -> TunaModel:
    with torch.device(device):
        model = TunaModel(get_preset(preset))
    model.init_weights()
    with (
        torch.no_grad()
    ):  # open the adaLN-Zero gates: a zero head would let kernels skip nothing, but be safe
        for p in model.flow_head.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    return model.to(dtype=dtype)


def rand_ids(n: int, vocab: int) -> list[int]:
    return torch.randint(100, vocab, (n,)).tolist()


def bench_train(model, s: Setup, device, dtype) -> dict:
    """Stage-2 step on one packed row of mixed tasks: captioning, T2I, editing."""
    cfg = model.cfg
    img = lambda: Visual(pixels=torch.rand(3, 1, s.image, s.image) * 2 - 1)  # noqa: E731
    ids = lambda n: Text(rand_ids(n, cfg.decoder.vocab_size))  # noqa: E731
    samples = [
        [img(), Text(rand_ids(64, cfg.decoder.vocab_size), supervised=True)],
        [ids(64), Visual(pixels=img().pixels, noisy=True)],
        [ids(32), img(), Visual(pixels=img().pixels, noisy=True)],
    ]
    batch = build_batch(samples, cfg.tokens, cfg.vae, pack_len=10**6).to(device)
    apply_freezing(model, 2)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        with autocast:
            loss = model(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with count_linear_flops() as linear, torch.no_grad(), autocast:
        model(batch)
    flops = 3 * (linear[0] + attention_flops(model, batch))
    seconds = timed(step, device, s.iters)
    tokens = batch.input_ids.numel()
    return {"tokens": tokens, "step_s": seconds, "tokens_per_s": tokens / seconds, "flops_per_step": flops,
            "achieved_tflops": flops / seconds / 1e12, "peak_memory_gib": peak_memory_gib(device)}  # fmt: skip


def bench_t2i(model, tokenizer, s: Setup, device) -> dict:
    model.eval()
    encode = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    prompt = prompts.conversation(
        encode, [("user", ["a photo of a red cube on a blue sphere"])], add_generation_prompt=True
    )
    negative = prompts.conversation(encode, [("user", [""])], add_generation_prompt=True)
    grid = model.vae.latent_shape(1, s.image, s.image)
    out = {}
    for batch in (1, 4):
        for reuse in (True, False):

            def run():
                latents = sample_latents(model, [prompt] * batch, [negative] * batch, grid, s.steps, 7.5, 3.0,
                                         list(range(batch)), reuse_prefix=reuse)  # fmt: skip
                model.vae.decode(latents.to(next(model.vae.parameters()).dtype))

            out[f"batch{batch}_{'prefix_cache' if reuse else 'recompute'}_s_per_image"] = (
                timed(run, device, s.iters, 0) / batch
            )
    return out


def bench_understanding(model, s: Setup, device) -> dict:
    model.eval()
    cfg = model.cfg
    out = {}
    for rows in (1, 8):
        samples = [
            [
                Visual(pixels=torch.rand(3, 1, s.image, s.image) * 2 - 1),
                Text(rand_ids(s.question_tokens, cfg.decoder.vocab_size)),
            ]
        ] * rows
        batch = build_batch(samples, cfg.tokens, cfg.vae).to(device)
        with torch.no_grad():
            latents = model.encode_latents(batch.visuals)
            embeds = model.embed_sequence(
                batch.input_ids, batch.blocks, model.embed_blocks(latents, torch.ones(rows, device=device))
            )
            mask = model.attention_mask(batch.layout)
            if rows == 1:
                out["prefill_ms"] = 1000 * timed(
                    lambda: model.decoder(embeds, batch.position_ids, mask), device, s.iters
                )
            seconds = timed(
                lambda: decode_batch(model, embeds, batch.position_ids, batch.layout, s.decode_tokens, set()),
                device,
                s.iters,
                0,
            )
        out[f"decode_batch{rows}_tokens_per_s"] = rows * s.decode_tokens / seconds
    return out


def bench_vae(model, s: Setup, device, dtype) -> dict:
    vae = model.vae
    out = {}
    for name, frames in (("image", 1), (f"video{s.video_frames}", s.video_frames)):
        x = torch.rand(1, 3, frames, s.image, s.image, device=device, dtype=dtype) * 2 - 1
        z = vae.encode(x)
        out[f"{name}_encode_ms"] = 1000 * timed(lambda: vae.encode(x), device, s.iters)
        out[f"{name}_decode_ms"] = 1000 * timed(lambda: vae.decode(z), device, s.iters)
    return out


def bench_hf_baseline(model, s: Setup, device, dtype) -> dict:
    """transformers' Qwen2ForCausalLM on the same decoder shapes: SDPA training, generate decoding."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    d = model.cfg.decoder
    config = Qwen2Config(vocab_size=d.vocab_size, hidden_size=d.hidden_size, intermediate_size=d.intermediate_size,
                         num_hidden_layers=d.num_layers, num_attention_heads=d.num_heads, num_key_value_heads=d.num_kv_heads,
                         tie_word_embeddings=d.tie_word_embeddings, rope_theta=d.rope_theta)  # fmt: skip
    with torch.device(device):
        hf = Qwen2ForCausalLM(config).to(dtype)
    hf.config._attn_implementation = "sdpa"
    tokens = 3 * (s.image // 16) ** 2 + 200
    ids = torch.randint(0, d.vocab_size, (1, tokens), device=device)
    mask = torch.ones(1, 1, tokens, tokens, dtype=torch.bool, device=device).tril()
    optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-5)

    def step():
        hf(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    out = {"train_tokens_per_s": tokens / timed(step, device, s.iters)}
    hf.eval()
    prompt = torch.randint(0, d.vocab_size, (1, s.question_tokens), device=device)
    for cache in ("dynamic", "static"):
        kw = {"cache_implementation": "static"} if cache == "static" else {}
        run = lambda: hf.generate(
            prompt, max_new_tokens=s.decode_tokens, min_new_tokens=s.decode_tokens, do_sample=False, **kw
        )  # noqa: E731
        out[f"decode_batch1_{cache}_tokens_per_s"] = s.decode_tokens / timed(run, device, s.iters)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="1.5b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--smoke", action="store_true", help="tiny preset, CPU, fp32, minimal sizes")
    parser.add_argument("--only", default="train,t2i,understanding,vae,hf", help="comma-separated benchmarks")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset, args.device, args.dtype = "tiny", "cpu", "fp32"
    setup = SMOKE if args.smoke else REAL
    device, dtype = torch.device(args.device), {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    from tuna.tokenizer import qwen25_tokenizer, small_tokenizer

    model = build(args.preset, device, dtype)
    tokenizer = small_tokenizer() if args.preset == "tiny" else qwen25_tokenizer()
    only = set(args.only.split(","))
    results: dict = {"preset": args.preset, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                     "dtype": args.dtype, "torch": torch.__version__, "smoke": args.smoke, "setup": setup.__dict__}  # fmt: skip
    if device.type == "cuda" and not args.smoke:
        results["matmul_peak_tflops"] = measure_matmul_peak(device, dtype) / 1e12
    if "train" in only:
        results["train"] = bench_train(model, setup, device, dtype)
        if "matmul_peak_tflops" in results:
            results["train"]["mfu"] = results["train"]["achieved_tflops"] / results["matmul_peak_tflops"]
    if "t2i" in only:
        results["t2i"] = bench_t2i(model, tokenizer, setup, device)
    if "understanding" in only:
        results["understanding"] = bench_understanding(model, setup, device)
    if "vae" in only:
        results["vae"] = bench_vae(model, setup, device, dtype)
    if "hf" in only:
        results["hf_baseline"] = bench_hf_baseline(model, setup, device, dtype)
    out = Path(args.out) / f"{args.preset}-{device.type}{'-smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
