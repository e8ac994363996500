"""`tuna train CONFIG [--steps N] [--out DIR] [--save-every N] [--resume] [--data KIND=PATH[:WEIGHT]] [key=value …]`.

Wired into the `tuna` command by `register(subparsers)`; `python -m tuna.train …` runs it alone (and
under torchrun: `torchrun --nproc_per_node 8 -m tuna.train stage2 …`).
"""

from __future__ import annotations

import argparse
import dataclasses

from tuna.train.config import DEFAULT_WEIGHTS, KINDS, MixEntry, TrainConfig, with_overrides
from tuna.train.presets import PRESETS, describe, get_train_preset


def parse_data(specs: list[str], preset: tuple[MixEntry, ...]) -> tuple[MixEntry, ...]:
    """`KIND=PATH[:WEIGHT]` → mixture entries. A kind keeps the preset's weight and start/stop steps."""
    entries = []
    for spec in specs:
        kind, sep, rest = spec.partition("=")
        if not sep or kind not in KINDS or not rest:
            raise ValueError(f"--data {spec!r} must look like KIND=PATH[:WEIGHT] with KIND one of {KINDS}")
        path, weight = rest, None
        head, colon, tail = rest.rpartition(":")
        if colon and head:
            try:
                path, weight = head, float(tail)
            except ValueError:
                path = rest  # a colon in the path itself
        like = next((e for e in preset if e.kind == kind), MixEntry(kind, DEFAULT_WEIGHTS[kind]))
        entries.append(dataclasses.replace(like, path=path, weight=like.weight if weight is None else weight))
    return tuple(entries)


def configure(args: argparse.Namespace) -> TrainConfig:
    cfg = get_train_preset(args.config)
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    if args.save_every is not None:
        cfg = dataclasses.replace(cfg, save_every=args.save_every)
    if args.data:
        cfg = dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, mixture=parse_data(args.data, cfg.data.mixture))
        )
    return with_overrides(cfg, args.overrides)


def options_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuna train CONFIG", add_help=False)
    p.add_argument("overrides", nargs="*", help="key=value config overrides (dotted: optim.lr=3e-4)")
    p.add_argument("--steps", type=int, help="total optimiser steps")
    p.add_argument("--out", help="run directory (default runs/CONFIG)")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--data", action="append", default=[], metavar="KIND=PATH[:WEIGHT]",
                   help=f"a jsonl file or webdataset directory; KIND in {', '.join(KINDS)} (repeatable)")  # fmt: skip
    return p


def cmd_train(args: argparse.Namespace) -> int:
    if args.list or args.config is None:
        for name in PRESETS:
            print(f"{name:<16} {describe(get_train_preset(name))}")
        return 0
    # Options and key=value overrides may be interleaved after CONFIG, which one argparse pass cannot
    # take (positionals are consumed in one go): they are parsed here, from the remainder.
    try:
        options = options_parser().parse_intermixed_args(args.rest)
    except SystemExit as exit_:
        raise ValueError(f"bad arguments {args.rest}") from exit_
    options.config = args.config
    cfg = configure(options)
    from tuna.train.loop import train  # heavy imports only when training

    train(cfg, options.out or f"runs/{cfg.name}", resume=options.resume)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a preset (tuna train --list shows them)",
        usage="tuna train CONFIG [--steps N] [--out DIR] [--save-every N] [--resume] "
        "[--data KIND=PATH[:WEIGHT]] [key=value ...]",
        epilog=options_parser().format_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--list", action="store_true", help="list the training presets")
    p.add_argument("config", nargs="?", help="training preset name")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)
