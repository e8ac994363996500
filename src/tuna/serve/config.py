"""Server limits and defaults, in one place so the CLI, the app and the docs agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    model_id: str = "tuna"  # the name clients put in "model"; unknown names are refused (404)
    api_key: str | None = None  # when set, every request needs "Authorization: Bearer <key>"
    max_body_bytes: int = 32 * 1024 * 1024  # larger request bodies get 413 before they are parsed
    max_image_pixels: int = 4096 * 4096  # uploaded images above this are refused before decoding
    max_video_bytes: int = 16 * 1024 * 1024  # decoded size of a video data URL
    queue_size: int = 64  # jobs waiting for the model; a full queue answers 503 + Retry-After
    request_timeout_s: float = 300.0  # queueing + running; past it the client gets 504
    max_batch_images: int = 8  # images generated in one forward pass when requests are compatible
    default_steps: int = 50  # sampling steps when an image request does not say
    max_steps: int = 200
    max_image_side: int = 2048  # generated images; also a multiple of the VAE stride
    max_images_per_request: int = 10  # "n", as in OpenAI's API
    default_max_tokens: int = 256
    max_tokens_limit: int = 4096
    max_video_frames: int = 129  # frames of a generated video (1 + 4k)
    video_timeout_s: float = 3600.0  # a video job not started within this fails with code "timeout"
    max_stored_videos: int = 100  # finished videos kept for download; the oldest go first

    def __post_init__(self) -> None:
        positive = (
            "max_body_bytes",
            "max_image_pixels",
            "max_video_bytes",
            "queue_size",
            "request_timeout_s",
            "max_batch_images",
            "default_steps",
            "max_steps",
            "max_image_side",
            "max_images_per_request",
            "default_max_tokens",
            "max_tokens_limit",
            "max_video_frames",
            "video_timeout_s",
            "max_stored_videos",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.default_steps > self.max_steps:
            raise ValueError(f"default_steps ({self.default_steps}) exceeds max_steps ({self.max_steps})")
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) exceeds max_tokens_limit ({self.max_tokens_limit})"
            )
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty (leave it unset to disable authentication)")
