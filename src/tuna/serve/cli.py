"""`tuna serve`: load a checkpoint and run the OpenAI-compatible server with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tuna.serve.config import ServeConfig

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        model_id=args.model_name or Path(args.model).resolve().name,
        api_key=args.api_key,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
        queue_size=args.queue_size,
        request_timeout_s=args.timeout,
        max_batch_images=args.max_batch,
        default_steps=args.default_steps,
        max_steps=args.max_steps,
        max_image_side=args.max_image_side,
        default_max_tokens=min(256, args.max_tokens),
        max_tokens_limit=args.max_tokens,
        max_video_frames=args.max_video_frames,
        video_timeout_s=args.video_timeout,
        max_stored_videos=args.max_stored_videos,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from tuna.pipeline import TunaPipeline
    from tuna.serve.app import create_app

    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {args.model}")
    config = config_from_args(args)  # before loading: a bad limit fails in a second, not after minutes
    if args.host not in LOCAL_HOSTS and config.api_key is None:
        print(f"tuna serve: warning: listening on {args.host} without --api-key", file=sys.stderr)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    pipe = TunaPipeline.from_pretrained(args.model, device=args.device, dtype=dtype)
    uvicorn.run(create_app(pipe, config), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(sub) -> None:
    serve = sub.add_parser("serve", help="OpenAI-compatible HTTP server (chat, images, edits, videos)")
    serve.add_argument("--model", required=True, help="a Tuna checkpoint directory")
    serve.add_argument("--model-name", help="the id clients send as 'model' (default: the directory name)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: localhost only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key",
        default=os.environ.get("TUNA_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $TUNA_API_KEY; unset = no auth)",
    )
    serve.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    serve.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    defaults = ServeConfig()
    serve.add_argument(
        "--default-steps", type=int, default=defaults.default_steps, help="image sampling steps"
    )
    serve.add_argument("--max-steps", type=int, default=defaults.max_steps)
    serve.add_argument("--max-image-side", type=int, default=defaults.max_image_side)
    serve.add_argument("--max-tokens", type=int, default=defaults.max_tokens_limit, help="max_tokens limit")
    serve.add_argument("--queue-size", type=int, default=defaults.queue_size, help="waiting jobs before 503")
    serve.add_argument("--max-batch", type=int, default=defaults.max_batch_images, help="images per forward")
    serve.add_argument(
        "--timeout", type=float, default=defaults.request_timeout_s, help="seconds per request"
    )
    serve.add_argument("--max-video-frames", type=int, default=defaults.max_video_frames)
    serve.add_argument(
        "--video-timeout", type=float, default=defaults.video_timeout_s, help="seconds a video job may wait"
    )
    serve.add_argument(
        "--max-stored-videos", type=int, default=defaults.max_stored_videos, help="finished videos kept"
    )
    serve.add_argument("--max-body-mb", type=float, default=defaults.max_body_bytes / 2**20)
    serve.add_argument("--max-image-pixels", type=int, default=defaults.max_image_pixels)
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=cmd_serve)
