"""Training-data throughput: steps of a preset's mixture loaded per second, by number of loading workers.

    .venv/bin/python benchmarks/bench_data_loading.py [--preset shapes_stage2] [--batch 64] [--steps 40]
        [--workers 0 2 8] [--size 256]

A GPU trains tuna-shapes faster than one process renders, tokenises and packs its samples; `data.workers`
(tuna.data.prefetch) loads the next steps in other processes. This prints, per worker count, the steps per
second the loader delivers (without any model) and checks that every count yields the same samples.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from tuna.config import get_preset
from tuna.data.pipeline import build_stream
from tuna.data.prefetch import prefetched_steps
from tuna.data.shapes.corpus import shapes_corpus
from tuna.sequence import Visual
from tuna.tokenizer import small_tokenizer
from tuna.train.presets import get_train_preset


def fingerprint(loaded) -> float:
    """A number that changes with any sample's pixels."""
    return sum(
        float(s.pixels.double().sum())
        for batch in loaded.batches
        for sample in batch
        for s in sample
        if isinstance(s, Visual)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes_stage2")
    parser.add_argument("--batch", type=int, default=64, help="global batch (one micro-batch)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="canvas side (the GPU recipe trains at 256); default the preset's",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    cfg = get_train_preset(args.preset)
    data = dataclasses.replace(cfg.data, global_batch=args.batch, micro_batch=args.batch)
    if args.size:  # as scripts/train_tuna_shapes_gpu.sh sizes stages 1–3
        side = args.size
        data = dataclasses.replace(
            data, shapes_size=side, image_size=side, pack_len=5 * (side // 16) ** 2 + 256
        )
    model_cfg = get_preset(cfg.model)
    tokenizer = small_tokenizer(shapes_corpus(), vocab_size=model_cfg.decoder.vocab_size)  # tuna-shapes'
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    prints = None
    print(f"{args.preset}: {args.batch} samples a step at {data.image_size}², {args.steps} steps")
    for workers in args.workers:
        stream = build_stream(data.mixture, data, encode, model_cfg.tokens, model_cfg.vae, cfg.seed)
        steps = prefetched_steps(stream, 0, args.steps, [0], args.batch, workers)
        first = next(steps)  # worker start-up is not throughput
        began = time.perf_counter()
        rest = list(steps)
        rate = len(rest) / (time.perf_counter() - began)
        got = [fingerprint(s) for s in [first, *rest]]
        prints = prints or got
        same = "same samples" if got == prints else "DIFFERENT SAMPLES"
        print(f"workers {workers}: {rate:6.2f} steps/s ({rate * args.batch:7.1f} samples/s); {same}")
        if got != prints:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
