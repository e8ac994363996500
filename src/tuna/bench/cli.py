"""`tuna bench shapes ...`: register with the lead's argparse main via `register(subparsers)`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tuna.bench.controls import CONTROLS, make_control
from tuna.bench.external_cli import register_external
from tuna.bench.items import BENCH_TASKS, BenchItem, build_items, load_prompt_items
from tuna.bench.protocol import TunaTasks, load_tasks
from tuna.bench.report import format_table, write_html, write_json
from tuna.bench.runner import BenchConfig, run_bench
from tuna.data.shapes.world import WorldConfig
from tuna.model.loading import read_config

DEFAULT_N = 120  # items per task: 20 per T2I category / VQA type, 30 per video QA type
CONTROL_SIZE = 128  # the side controls (no model) render at
SIZE_HELP = f"image side (multiple of 16; default: the model's own image_size, {CONTROL_SIZE} for controls)"


def resolve_size(args: argparse.Namespace) -> None:
    """--size left out: the side the model was trained at (its config, read without loading weights)."""
    if args.size is None:
        args.size = read_config(args.model).image_size if args.model is not None else CONTROL_SIZE


def _tasks_arg(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in BENCH_TASKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown tasks {bad or text!r}; choose from {','.join(BENCH_TASKS)}"
        )
    return names


def register(subparsers: Any) -> argparse.ArgumentParser:
    bench = subparsers.add_parser("bench", help="benchmarks with programmatic scoring")
    kinds = bench.add_subparsers(dest="bench", required=True)
    p = kinds.add_parser(
        "shapes", help="ShapesBench: T2I, VQA, editing, T2V and video QA on the shapes world"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", type=Path, help="model directory, loaded with tuna.pipeline.TunaPipeline")
    who.add_argument(
        "--control", choices=CONTROLS, help="score a control instead of a model (scorer honesty)"
    )
    p.add_argument(
        "--tasks",
        type=_tasks_arg,
        default=list(BENCH_TASKS),
        help="comma-separated subset of " + ",".join(BENCH_TASKS),
    )
    p.add_argument("--n", type=int, default=DEFAULT_N, help="items per task")
    p.add_argument("--seed", type=int, default=0, help="world seed of the test items, and generation seed")
    p.add_argument(
        "--prompts", type=Path, help="JSONL of user generation prompts+specs; scores T2I on them only"
    )
    p.add_argument("--size", type=int, default=None, help=SIZE_HELP)
    p.add_argument("--frames", type=int, default=17, help="video frames (1 + 4k)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=50, help="denoising steps (--model)")
    p.add_argument("--cfg", type=float, default=7.5, help="text guidance for T2I/T2V (--model)")
    p.add_argument(
        "--shift",
        type=float,
        default=None,
        help="time shift of the sampling schedule (>1: more steps near noise; default: the model's own)",
    )
    p.add_argument("--text-cfg", type=float, default=5.0, help="text guidance for editing (--model)")
    p.add_argument("--image-cfg", type=float, default=1.5, help="image guidance for editing (--model)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (--model; fp32 on any device)")
    p.add_argument("--json", type=Path, help="write scores here")
    p.add_argument("--report", type=Path, help="write an HTML report into this directory")
    p.set_defaults(func=run_shapes)
    d = kinds.add_parser(
        "diagnose",
        help="where a model fails: T2I (the VAE's ceiling, the flow head's denoising error, resampling from "
        "partly noised true latents; tuna.bench.diagnose) or understanding (answer surprisal per question "
        "kind, attribute probes of the latents and the encoder; tuna.bench.understand)",
    )
    d.add_argument("--task", choices=("t2i", "understanding"), default="t2i")
    d.add_argument("--model", type=Path, required=True, help="model directory")
    d.add_argument(
        "--n", type=int, default=40,
        help="T2I test scenes; understanding: items per QA task (VQA, video QA) and probe test scenes "
        "(3n train scenes)",
    )  # fmt: skip
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", type=int, default=None, help=SIZE_HELP)
    d.add_argument("--frames", type=int, default=17, help="video frames of video questions (1 + 4k)")
    d.add_argument("--steps", type=int, default=40, help="Euler steps for a full t = 0 → 1 resampling")
    d.add_argument("--cfg", type=float, default=7.5, help="text guidance")
    d.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    d.set_defaults(func=run_diagnose)
    register_external(kinds)
    return p


def run_shapes(args: argparse.Namespace) -> int:
    resolve_size(args)
    world = WorldConfig(height=args.size, width=args.size, frames=args.frames)
    if args.prompts is not None:
        items: dict[str, list[BenchItem]] = {"t2i": list(load_prompt_items(args.prompts, args.seed, world))}
    else:
        items = {task: build_items(task, args.seed, args.n, world) for task in args.tasks}
    tasks: TunaTasks = (
        load_tasks(
            args.model,
            {
                "steps": args.steps,
                "cfg_scale": args.cfg,
                "shift": args.shift,
                "text_cfg": args.text_cfg,
                "image_cfg": args.image_cfg,
            },
            args.device,
        )
        if args.model is not None
        else make_control(args.control, [it for v in items.values() for it in v], args.seed)
    )
    cfg = BenchConfig(args.size, args.size, args.frames, args.seed, args.batch_size)
    results = run_bench(tasks, items, cfg)
    print(format_table(results))
    meta = {
        "model": str(args.model) if args.model else None,
        "control": args.control,
        "n": args.n,
        "seed": args.seed,
        "size": args.size,
        "frames": args.frames,
        "prompts": str(args.prompts) if args.prompts else None,
        "sampling": {  # shift None: the model's own (its config's noise schedule)
            "steps": args.steps,
            "cfg": args.cfg,
            "shift": args.shift,
            "text_cfg": args.text_cfg,
            "image_cfg": args.image_cfg,
        }
        if args.model
        else None,
    }
    if args.json:
        write_json(args.json, results, meta)
    if args.report:
        print(f"report: {write_html(args.report, results, meta)}", file=sys.stderr)
    return 0


def run_diagnose(args: argparse.Namespace) -> int:
    from tuna.bench.diagnose import diagnose, prompt_velocity
    from tuna.pipeline import TunaPipeline

    # Items first: a bad --n or size is reported before the model's slow load.
    resolve_size(args)
    world = WorldConfig(height=args.size, width=args.size, frames=args.frames)
    tasks = ("vqa", "video_qa") if args.task == "understanding" else ("t2i",)
    items = {task: build_items(task, args.seed, args.n, world) for task in tasks}
    pipe = TunaPipeline.from_pretrained(args.model, device=args.device)
    if args.task == "understanding":
        return run_understanding(pipe, items, world, args.seed)
    prompts = [it.prompt for it in items["t2i"]]
    guided, conditional = prompt_velocity(pipe, prompts, args.cfg), prompt_velocity(pipe, prompts, 1.0)
    found = diagnose(
        pipe.model.vae,
        guided,
        items["t2i"],
        args.steps,
        args.seed,
        conditional=conditional,
        device=pipe.device,
    )
    print(found.table())
    return 0


def run_understanding(pipe, items: dict[str, list], world: WorldConfig, seed: int) -> int:
    from tuna.bench.understand import UnderstandingDiagnosis, attribute_probes, surprisal_by_kind
    from tuna.data.shapes.world import ShapesWorld

    scored = {task: surprisal_by_kind(pipe, task_items) for task, task_items in items.items()}
    surprisal = {task: by_kind for task, (by_kind, _) in scored.items()}
    by_scene_size = {task: by_size for task, (_, by_size) in scored.items()}
    # Probes: fitted on 3n train-split scenes, scored on the n VQA items' own (test-split) scenes.
    train = [ShapesWorld(seed, "train", world).sample("vqa", i) for i in range(3 * len(items["vqa"]))]
    probes, objects = attribute_probes(
        pipe.model,
        ([pipe.image_visual(s.image) for s in train], [s.scene for s in train]),
        ([pipe.image_visual(it.media) for it in items["vqa"]], [it.scene for it in items["vqa"]]),
    )
    print(UnderstandingDiagnosis(surprisal, probes, objects, by_scene_size).table())
    return 0
