"""The `tuna` command. Each subcommand is a short, linear `main(args)`."""

from __future__ import annotations

import argparse
import json
import sys


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


COMPONENTS = ("vae", "encoder", "connector", "time_token", "decoder", "flow_head")


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from tuna.config import get_preset
    from tuna.model.tuna import TunaModel

    cfg = get_preset(args.preset)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = TunaModel(cfg)
    counts = {name: count_parameters(getattr(model, name)) for name in COMPONENTS}
    counts["total"] = count_parameters(model)
    if args.json:
        print(json.dumps({"preset": cfg.name, "parameters": counts, "config": cfg.to_dict()}, indent=2))
    else:
        print(f"Tuna preset {cfg.name!r}")
        for name, n in counts.items():
            print(f"  {name:<11} {n:>15,}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tuna.demo import run_demo

    return run_demo(args.out, seed=args.seed, model=args.model, steps=args.steps, bench_n=args.bench_n)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuna", description="Tuna: a native unified multimodal model")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="parameter counts of a preset, built on the meta device")
    info.add_argument("--preset", default="1.5b", help="tiny | 1.5b | 7b")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="run every task end to end on the built-in default")
    demo.add_argument("--out", default="demo", help="output directory")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--model", default=None, help="checkpoint directory (default: checkpoints/tuna-shapes)")
    demo.add_argument("--steps", type=int, default=25, help="denoising steps")
    demo.add_argument("--bench-n", type=int, default=8, help="ShapesBench items per task in the summary")
    demo.set_defaults(func=cmd_demo)

    from tuna.bench.cli import register as register_bench
    from tuna.data.shapes.cli import register as register_data
    from tuna.inference_cli import register as register_inference
    from tuna.serve.cli import register as register_serve
    from tuna.train.cli import register as register_train

    for register in (register_inference, register_train, register_serve, register_data, register_bench):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"tuna {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
