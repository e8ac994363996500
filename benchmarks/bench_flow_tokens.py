"""Training step with the flow head on the tokens it needs (tuna.model.flow_tokens) against the whole batch.

    .venv/bin/python benchmarks/bench_flow_tokens.py [--preset shapes_stage2] [--batches 8]
        [--device cpu|cuda] [key=value ...]      (key=value: training config overrides, e.g. init=DIR)

On the same micro-batches of the preset's mixture, times forward + backward of the whole model twice per
batch, alternating: as trained (`flow_rows`: each sample with a noisy block, up to its last one) and with
the flow head over every slot of the packed rows (the former way). Prints the share of slots the head
sees, seconds per step for each and the speed-up, and checks the two give the same loss.
"""

from __future__ import annotations

import argparse
import time

import torch

import tuna.model.tuna as tuna_module
from tuna.data.pipeline import build_stream
from tuna.model.flow_tokens import FlowRows, flow_rows, visual_token_index
from tuna.train.build import build_model
from tuna.train.config import with_overrides
from tuna.train.objectives import TunaObjective
from tuna.train.presets import get_train_preset


def whole_batch_rows(layout, position_ids, blocks) -> FlowRows:
    """Every slot of the batch, as the flow head ran before `flow_rows`."""
    b, length = layout.sample_ids.shape
    rows, cols = visual_token_index([x for x in blocks if x.noisy], layout.sample_ids.device)
    index = torch.arange(b * length, device=layout.sample_ids.device).view(b, length)
    return FlowRows(index, layout, position_ids, rows, cols)


def timed_step(model, batch, seed: int, device: torch.device) -> tuple[float, float]:
    """(seconds, loss) of one forward + backward."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    terms = model(batch, torch.Generator(device).manual_seed(seed))
    terms["loss"].backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - began, float(terms["loss"].detach())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes_stage2")
    parser.add_argument("--batches", type=int, default=8, help="micro-batches timed (after one warm-up)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cfg = with_overrides(get_train_preset(args.preset), args.overrides)
    model = build_model(cfg).to(device).train()
    objective = TunaObjective(model, cfg.data.pack_len)
    encode = lambda text: model.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    stream = build_stream(cfg.data.mixture, cfg.data, encode, model.cfg.tokens, model.cfg.vae, cfg.seed)

    modes = {"gathered": flow_rows, "whole": whole_batch_rows}
    seconds = {mode: 0.0 for mode in modes}
    seen = slots = 0
    for step in range(args.batches + 1):
        (samples,), _, _ = stream.micro_batches(step, [0], cfg.data.micro_batch)
        batch, _ = objective.batch(samples, device)
        if any(b.noisy for b in batch.blocks):
            rows = flow_rows(batch.layout, batch.position_ids, batch.blocks)
            seen, slots = seen + rows.index.numel(), slots + batch.layout.sample_ids.numel()
        losses = {}
        for mode, select in modes.items():
            tuna_module.flow_rows = select
            spent, losses[mode] = timed_step(model, batch, step, device)
            if step:  # step 0 warms up
                seconds[mode] += spent
        tuna_module.flow_rows = flow_rows
        if abs(losses["gathered"] - losses["whole"]) > 1e-4 * max(1.0, abs(losses["whole"])):
            print(f"MISMATCH at batch {step}: loss {losses}")
            return 1
    per_step = {mode: s / args.batches for mode, s in seconds.items()}
    print(
        f"{args.preset} on {device}, {args.batches} micro-batches of {cfg.data.micro_batch} samples: the flow "
        f"head sees {seen / max(1, slots):.2f} of the slots; forward + backward {per_step['gathered']:.3f} s "
        f"(whole batch {per_step['whole']:.3f} s), {per_step['whole'] / per_step['gathered']:.2f}× faster; "
        "same losses"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
