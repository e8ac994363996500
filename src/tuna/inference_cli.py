"""`tuna chat | generate | edit | video`: the pipeline from the shell."""

from __future__ import annotations

import argparse
import sys


def _pipeline(args: argparse.Namespace):
    import torch

    from tuna.pipeline import TunaPipeline

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    return TunaPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)


def cmd_chat(args: argparse.Namespace) -> int:
    content: list[dict] = []
    if args.image:
        content.append({"type": "image", "image": args.image})
    if args.video:
        content.append({"type": "video", "video": args.video})
    content.append({"type": "text", "text": args.question})
    pipe = _pipeline(args)
    for piece in pipe.chat_stream(
        [{"role": "user", "content": content}],
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        video_frames=args.frames,
    ):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _sampling(args: argparse.Namespace) -> dict:
    return {
        "steps": args.steps,
        "shift": args.shift,
        "sampler": args.sampler,
        "seed": args.seed,
        "progress": True,
    }


def cmd_generate(args: argparse.Namespace) -> int:
    image = _pipeline(args).generate(
        args.prompt,
        args.height,
        args.width,
        cfg_scale=args.cfg,
        negative_prompt=args.negative,
        **_sampling(args),
    )
    image.save(args.out)
    print(args.out)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    image = _pipeline(args).edit(
        args.image, args.instruction, text_cfg=args.text_cfg, image_cfg=args.image_cfg, **_sampling(args)
    )
    image.save(args.out)
    print(args.out)
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from tuna.media import write_video

    if not args.out.lower().endswith((".mp4", ".gif")):
        raise ValueError(f"--out must end in .mp4 or .gif, got {args.out}")
    frames = _pipeline(args).generate_video(
        args.prompt,
        args.frames,
        args.height,
        args.width,
        cfg_scale=args.cfg,
        negative_prompt=args.negative,
        **_sampling(args),
    )
    print(write_video(frames, args.out, fps=args.fps))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a Tuna checkpoint directory")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--seed", type=int, default=0)


def _sampler_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--shift",
        type=float,
        default=None,
        help="time shift of the schedule (default: the one the model trained with)",
    )
    parser.add_argument("--sampler", default="euler", choices=["euler", "heun", "midpoint"])
    parser.add_argument("--out", required=True)


def register(sub) -> None:
    chat = sub.add_parser("chat", help="answer a question, optionally about an image or a video")
    _common(chat)
    chat.add_argument("question")
    chat.add_argument("--image")
    chat.add_argument("--video")
    chat.add_argument("--frames", type=int, default=None, help="frames sampled evenly from --video (1 + 4k)")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.set_defaults(func=cmd_chat)

    gen = sub.add_parser("generate", help="text-to-image")
    _common(gen)
    gen.add_argument("prompt")
    gen.add_argument("--height", type=int)
    gen.add_argument("--width", type=int)
    gen.add_argument("--cfg", type=float, default=7.5)
    gen.add_argument("--negative", default="")
    _sampler_args(gen)
    gen.set_defaults(func=cmd_generate)

    edit = sub.add_parser("edit", help="edit an image by an instruction")
    _common(edit)
    edit.add_argument("instruction")
    edit.add_argument("--image", required=True)
    edit.add_argument("--text-cfg", type=float, default=5.0)
    edit.add_argument("--image-cfg", type=float, default=1.5)
    _sampler_args(edit)
    edit.set_defaults(func=cmd_edit)

    video = sub.add_parser("video", help="text-to-video (.mp4 or .gif)")
    _common(video)
    video.add_argument("prompt")
    video.add_argument("--frames", type=int)
    video.add_argument("--height", type=int)
    video.add_argument("--width", type=int)
    video.add_argument("--cfg", type=float, default=7.5)
    video.add_argument("--negative", default="")
    video.add_argument("--fps", type=int, default=8)
    _sampler_args(video)
    video.set_defaults(func=cmd_video)
