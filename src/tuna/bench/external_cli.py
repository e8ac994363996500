"""`tuna bench geneval | dpg | vbench | edits | qa`: a checkpoint's outputs for public benchmarks.

The generation commands write files in the layout each benchmark's own scorer reads (the scorers need
detector / VQA models and run in their own environments); `qa` answers and scores here. Every command
reads and checks its input before the model loads, and a stopped run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT_HELP = "output directory; a stopped run continues in it (a run with other settings needs its own)"
IMAGE_SCORERS = {
    "geneval": "geneval/evaluation/evaluate_images.py {out} --outfile results.jsonl --model-path DETECTOR_DIR",
    "dpg": "dpg_bench/compute_dpg_bench.py --image-root-path {out} --resolution {size} --pic-num {n}",
}


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="model directory")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])


def _sampling_args(p: argparse.ArgumentParser, seed_help: str, batch: int) -> None:
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--shift", type=float, default=None, help="default: the model's own")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--batch-size", type=int, default=batch, help="outputs per batched call")


def register_external(kinds: Any) -> None:
    for name, source, what in (
        ("geneval", "--metadata", "GenEval's evaluation_metadata.jsonl"),
        ("dpg", "--prompts", "DPG-Bench's prompts/ directory (ID.txt files)"),
    ):
        e = kinds.add_parser(
            name,
            help=f"write images for {'GenEval' if name == 'geneval' else 'DPG-Bench'} in the layout its own "
            "scorer reads (tuna.bench.external)",
        )
        _model_args(e)
        e.add_argument(source, dest="source", type=Path, required=True, help=what)
        e.add_argument("--out", type=Path, required=True, help=OUT_HELP)
        e.add_argument("--n", type=int, default=4, help="images per prompt (both benchmarks' default: 4)")
        e.add_argument("--size", type=int, default=None, help="image side (default: the model's image_size)")
        e.add_argument("--cfg", type=float, default=7.5)
        _sampling_args(e, "image k of prompt i uses seed + i·n + k", 8)
        e.set_defaults(func=run_images)

    v = kinds.add_parser("vbench", help="write videos for VBench, named PROMPT-K.mp4 (tuna.bench.vbench)")
    _model_args(v)
    v.add_argument("--prompts", type=Path, required=True, help="a VBench prompt list (one prompt a line)")
    v.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    v.add_argument("--n", type=int, default=5, help="videos per prompt (VBench: 5)")
    v.add_argument("--frames", type=int, default=None, help="1 + 4k frames (default: the model's)")
    v.add_argument("--size", type=int, default=None, help="frame side (default: the model's image_size)")
    v.add_argument("--fps", type=int, default=8)
    v.add_argument("--cfg", type=float, default=7.5)
    _sampling_args(v, "video k of prompt i uses seed + i·n + k", 1)
    v.set_defaults(func=run_vbench)

    d = kinds.add_parser(
        "edits", help="edit a jsonl of (image, instruction) requests into the files an editing benchmark "
        "reads, each at its own output path (tuna.bench.edits)",
    )  # fmt: skip
    _model_args(d)
    d.add_argument(
        "--data", type=Path, required=True, help="requests: jsonl of raw_image, instruction, output"
    )
    d.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    d.add_argument("--text-cfg", type=float, default=5.0)
    d.add_argument("--image-cfg", type=float, default=1.5)
    _sampling_args(d, "request i uses seed + i", 8)
    d.set_defaults(func=run_edits)

    q = kinds.add_parser(
        "qa",
        help="answer a jsonl of questions about images or videos (the `und` training format) and score "
        "them against the answers it holds (tuna.bench.qa)",
    )
    _model_args(q)
    q.add_argument("--data", type=Path, required=True, help="questions: jsonl, LLaVA conversations")
    q.add_argument("--out", type=Path, required=True, help="answers jsonl (a stopped run continues)")
    q.add_argument("--max-new-tokens", type=int, default=64)
    q.add_argument("--batch-size", type=int, default=8, help="questions per batched greedy decode")
    q.add_argument("--frames", type=int, default=None, help="video frames (default: the model's)")
    q.add_argument("--json", type=Path, help="write the summary here")
    q.set_defaults(func=run_qa)


def _pipeline(args: argparse.Namespace):
    import torch

    from tuna.pipeline import TunaPipeline

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    return TunaPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)


def _model_size(args: argparse.Namespace) -> None:
    from tuna.bench.cli import resolve_size  # the bench's own rule: the model's image_size

    resolve_size(args)


def run_images(args: argparse.Namespace) -> int:
    from tuna.bench.external import read_dpg_prompts, read_geneval_metadata, write_dpg, write_geneval

    geneval = args.bench == "geneval"
    prompts = read_geneval_metadata(args.source) if geneval else read_dpg_prompts(args.source)
    _model_size(args)
    pipe = _pipeline(args)

    def generate(texts: list[str], seeds: list[int]):
        return pipe.generate(texts, args.size, args.size, args.steps, args.cfg, args.shift, seeds=seeds)

    write = write_geneval if geneval else write_dpg
    written, kept = write(generate, prompts, args.out, args.n, args.seed, args.batch_size, progress=True)
    scorer = IMAGE_SCORERS[args.bench].format(out=args.out, size=args.size, n=args.n)
    print(f"prompts written: {written}, already complete: {kept}, in {args.out}; score with {scorer}")
    return 0


def run_vbench(args: argparse.Namespace) -> int:
    from tuna.bench.vbench import read_vbench_prompts, write_vbench

    prompts = read_vbench_prompts(args.prompts)
    _model_size(args)
    pipe = _pipeline(args)
    frames = pipe.cfg.video_frames if args.frames is None else args.frames

    def generate(texts: list[str], seeds: list[int]):
        return pipe.generate(
            texts, args.size, args.size, args.steps, args.cfg, args.shift, seeds=seeds, frames=frames
        )

    written, kept = write_vbench(
        generate, prompts, args.out, args.n, args.seed, args.batch_size, args.fps, progress=True
    )
    print(f"prompts written: {written}, already complete: {kept}, in {args.out}; score with "
          f"vbench evaluate --videos_path {args.out} --dimension DIMENSION")  # fmt: skip
    return 0


def run_edits(args: argparse.Namespace) -> int:
    from tuna.bench.edits import read_edit_requests, write_edits

    requests = read_edit_requests(args.data)
    pipe = _pipeline(args)

    def edit(images, instructions, seeds):
        return pipe.edit(images, instructions, steps=args.steps, text_cfg=args.text_cfg, image_cfg=args.image_cfg,
                         shift=args.shift, seeds=seeds)  # fmt: skip

    written, kept = write_edits(edit, requests, args.out, args.seed, args.batch_size, progress=True)
    print(f"edits written: {written}, already there: {kept}, in {args.out}")
    return 0


def run_qa(args: argparse.Namespace) -> int:
    from tuna.bench.qa import answer_questions, read_questions

    questions = read_questions(args.data)
    pipe = _pipeline(args)

    def answer(conversations):
        return pipe.chat_batch(conversations, max_new_tokens=args.max_new_tokens, video_frames=args.frames)

    summary = answer_questions(answer, questions, args.out, args.batch_size, progress=True)
    accuracy = "n/a" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
    print(f"accuracy {accuracy} over {summary['scored']} questions with a reference "
          f"({summary['answered']} answered, {summary['answered_now']} now); answers in {args.out}")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({**summary, "model": str(args.model), "data": str(args.data)}, indent=2)
        )
    return 0
