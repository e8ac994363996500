"""The training loop: `train(cfg, out, resume)`. Short and linear; each piece lives in its own module.

Batch arithmetic: a step consumes `global_batch` samples as global_batch / micro_batch micro-batches,
dealt round-robin to the processes. Each micro-batch's loss is its own token mean, and the step's
gradient is the mean over all micro-batches — so 1 process with 2 accumulation steps and 2 processes
with 1 each compute the same thing. Every random draw (flow times and noise) comes from a generator
seeded by (seed, step, micro-batch), never from global RNG state, which is what makes resume exact.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from tuna.data.pipeline import build_stream
from tuna.data.prefetch import default_workers, prefetched_steps
from tuna.train.build import build_model, build_model_on_meta, materialize
from tuna.train.checkpoint import FORMATS, clean_partial, latest_checkpoint, load_checkpoint, save_checkpoint
from tuna.train.config import TrainConfig
from tuna.train.export import export
from tuna.train.freeze import apply_freezing
from tuna.train.metrics import MetricsLogger
from tuna.train.objectives import TunaObjective, VAEObjective
from tuna.train.optim import EMA, build_optimizer, build_scheduler, clip_grad_norm
from tuna.train.parallelize import Dist, all_reduce_sum, finish_distributed, init_distributed, parallelize
from tuna.train.samples import write_samples

log = logging.getLogger(__name__)


def micro_seed(seed: int, step: int, micro: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro]).generate_state(1)[0])


def micro_ids(cfg: TrainConfig, dist_info: Dist) -> list[int]:
    data = cfg.data
    if data.global_batch % data.micro_batch:
        raise ValueError(
            f"data.global_batch {data.global_batch} must be a multiple of data.micro_batch {data.micro_batch}"
        )
    count = data.global_batch // data.micro_batch
    if count % dist_info.world:
        raise ValueError(
            f"{count} micro-batches per step (global_batch / micro_batch) do not split over {dist_info.world} processes"
        )
    return list(range(dist_info.rank, count, dist_info.world))


def train(cfg: TrainConfig, out: str | Path, resume: bool = False) -> list[dict]:
    """Run (or continue) training; returns the metrics rows of the steps run by this call."""
    out = Path(out)
    if cfg.vae_train != "all" and cfg.stage != 0:
        raise ValueError(f"vae_train={cfg.vae_train!r} applies to stage 0 only (this is stage {cfg.stage})")
    if cfg.checkpoint_format not in FORMATS:
        raise ValueError(f"checkpoint_format must be one of {FORMATS}, got {cfg.checkpoint_format!r}")
    d = init_distributed()
    torch.manual_seed(cfg.seed)
    mine = micro_ids(cfg, d)
    if d.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(_to_json(cfg))
        clean_partial(out / "checkpoints")

    # Stage 0 trains only the VAE, and exports the rest of the model as it was: it keeps a real model.
    on_meta = d.world > 1 and cfg.stage > 0
    model, full_state = build_model_on_meta(cfg, d) if on_meta else (build_model(cfg), None)
    apply_freezing(model, cfg.stage, cfg.trainable)
    objective = (
        VAEObjective(model, cfg.vae_kl_weight, cfg.vae_train, cfg.vae_edge_weight)
        if cfg.stage == 0
        else TunaObjective(model, cfg.data.pack_len)
    )
    trained = objective.module(model)
    if not on_meta:
        trained.to(d.device)
        model.to(d.device)
    parallelize(trained, d, cfg.activation_checkpointing)
    if on_meta:
        materialize(model, trained, full_state, d.device)
        del full_state
    optimizer = build_optimizer(trained, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.steps, cfg.optim)
    ema = EMA(trained, cfg.ema_decay) if cfg.ema_decay > 0 else None
    encode = lambda text: model.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    stream = build_stream(cfg.data.mixture, cfg.data, encode, model.cfg.tokens, model.cfg.vae, cfg.seed)

    start = 0
    latest = latest_checkpoint(out / "checkpoints") if resume else None
    if latest is not None:
        start, data_state = load_checkpoint(latest, trained, optimizer, scheduler, ema, d)
        stream.load_state(data_state)
        if d.is_main:
            print(f"resuming from {latest} (step {start})")
    elif resume and d.is_main:
        print(f"--resume: no checkpoint in {out / 'checkpoints'}; starting from step 0")

    logger = MetricsLogger(out, d.is_main, start, cfg.steps, cfg.log_every)
    params = [p for p in trained.parameters() if p.requires_grad]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cfg.bf16 and d.device.type == "cuda"
        else contextlib.nullcontext()
    )
    rows = []
    workers = default_workers(d.device) if cfg.data.workers is None else cfg.data.workers
    steps_data = prefetched_steps(stream, start, cfg.steps, mine, cfg.data.micro_batch, workers)
    try:
        for step in range(start, cfg.steps):
            began = time.perf_counter()
            trained.train()
            loaded = next(steps_data)
            stream.consume(loaded)
            batches, read, bad = loaded.batches, loaded.read, loaded.bad
            sums, tokens = dict.fromkeys(objective.terms, 0.0), 0
            for m, samples in zip(mine, batches):
                batch, n_tokens = objective.batch(samples, d.device)
                generator = torch.Generator(d.device).manual_seed(micro_seed(cfg.seed, step, m))
                with autocast:
                    terms = trained(batch, generator)
                (terms["loss"] / len(mine)).backward()
                for k in sums:
                    sums[k] += float(terms[k].detach())
                tokens += n_tokens
            grad_norm = clip_grad_norm(params, cfg.optim.grad_clip)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(trained)

            totals = all_reduce_sum([*sums.values(), tokens, read, bad], d)
            n_micro = cfg.data.global_batch // cfg.data.micro_batch
            stream.account(int(totals[-2]), int(totals[-1]))
            elapsed = time.perf_counter() - began
            row = {"step": step + 1, **{k: v / n_micro for k, v in zip(sums, totals)}}
            row.update(lr=lr, grad_norm=grad_norm, tokens=int(totals[-3]), tokens_per_s=totals[-3] / elapsed,
                       step_time_s=elapsed, bad_records=stream.state.bad)  # fmt: skip
            logger.log(row)
            rows.append(row)
            done = step + 1
            if done % cfg.save_every == 0 or done == cfg.steps:
                save_checkpoint(out / "checkpoints", done, trained, optimizer, scheduler, ema,
                                stream.state.to_dict(), d, cfg.keep_last, cfg.checkpoint_format == "sharded")  # fmt: skip
            if cfg.sample_every and done % cfg.sample_every == 0 and cfg.stage > 0:
                write_samples(model, trained, out / "samples" / f"step_{done:08d}", d)
    finally:
        steps_data.close()  # stops the loading workers
        logger.close()

    stats_images = []
    # Latent statistics over fresh images (later records than training reached). A decoder fine-tune
    # keeps the encoder, hence the statistics every later stage was trained with.
    if cfg.stage == 0 and cfg.vae_train == "all":
        stats = build_stream(
            cfg.data.mixture, cfg.data, encode, model.cfg.tokens, model.cfg.vae, cfg.seed + 1
        )
        step = 0
        while len(stats_images) < cfg.vae_stats_samples:
            (samples,), _, _ = stats.micro_batches(step, [0], stats.global_batch)
            stats_images += [
                s.pixels for seg in samples for s in seg if getattr(s, "pixels", None) is not None
            ]
            step += 1
        stats_images = stats_images[: cfg.vae_stats_samples]
    for path in export(out, model, trained, ema, d, cfg.stage, stats_images):
        print(f"saved {path}")
    finish_distributed(d)
    return rows


def _to_json(cfg: TrainConfig) -> str:
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(cfg), indent=2)
