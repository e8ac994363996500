"""POST /v1/images/generations and /v1/images/edits: validated up front, run by the worker, returned as
base64 (the server keeps no files, so "url" responses are refused)."""

from __future__ import annotations

import base64
import io
import random
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from PIL import Image
from starlette.concurrency import run_in_threadpool

from tuna.media import fit_size
from tuna.serve import decode
from tuna.serve.errors import APIError
from tuna.serve.schemas import (
    SEED_MAX,
    ImageData,
    ImageGenerationRequest,
    ImagesResponse,
    OutputFormat,
    Sampler,
)
from tuna.serve.state import ServerState, State
from tuna.serve.tasks import EditJob, GenerateJob

router = APIRouter()
SIZE_PATTERN = r"^(auto|[0-9]{1,5}x[0-9]{1,5})$"
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def check_common(state: ServerState, response_format: str | None, n: int, steps: int | None) -> int:
    """Validate the fields both endpoints share; returns the step count to use."""
    if response_format == "url":
        raise APIError(
            400,
            "response_format 'url' is not supported: the server stores no images; use 'b64_json'",
            "response_format",
            "unsupported_response_format",
        )
    limit = state.config.max_images_per_request
    if n > limit:
        raise APIError(400, f"n is {n}, over the server's limit of {limit} images per request", "n")
    return resolve_steps(state, steps)


def resolve_steps(state: ServerState, steps: int | None) -> int:
    """The request's sampling steps, or the server's default; within the server's limit."""
    steps = state.config.default_steps if steps is None else steps
    if not 1 <= steps <= state.config.max_steps:
        raise APIError(400, f"steps must be between 1 and {state.config.max_steps}, got {steps}", "steps")
    return steps


def parse_size(state: ServerState, size: str | None) -> tuple[int, int]:
    """'WxH' → (width, height), checked against the VAE stride and the server's size limit."""
    if size is None or size == "auto":
        side = state.pipe.cfg.image_size
        return side, side
    width, height = (int(v) for v in size.split("x"))
    stride, limit = state.pipe.stride, min(state.config.max_image_side, 2048)
    for name, side in (("width", width), ("height", height)):
        if side <= 0 or side % stride or side > limit:
            raise APIError(
                400, f"size {size!r}: {name} must be a positive multiple of {stride} up to {limit}", "size"
            )
    return width, height


def encode_images(images: list[Image.Image], output_format: str) -> list[ImageData]:
    data = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format=PIL_FORMATS[output_format])
        data.append(ImageData(b64_json=base64.b64encode(buffer.getvalue()).decode()))
    return data


def pick_seed(seed: int | None) -> int:
    return random.randrange(2**31) if seed is None else seed


async def respond(images: list[Image.Image], output_format: str) -> ImagesResponse:
    data = await run_in_threadpool(encode_images, images, output_format)  # PNG encoding is slow-ish
    width, height = images[0].size
    return ImagesResponse(
        created=int(time.time()), data=data, output_format=output_format, size=f"{width}x{height}"
    )


@router.post("/v1/images/generations", response_model=ImagesResponse)
async def generations(body: ImageGenerationRequest, state: State):
    state.check_model(body.model, required=False)
    steps = check_common(state, body.response_format, body.n, body.steps)
    width, height = parse_size(state, body.size)
    job = GenerateJob(
        deadline=state.deadline(),
        images=body.n,
        prompt=body.prompt,
        seed=pick_seed(body.seed),
        height=height,
        width=width,
        steps=steps,
        guidance=7.5 if body.guidance is None else body.guidance,
        shift=body.shift,
        sampler=body.sampler,
        negative_prompt=body.negative_prompt,
    )
    return await respond(await state.run(job), body.output_format)


@router.post("/v1/images/edits", response_model=ImagesResponse)
async def edits(
    state: State,
    prompt: Annotated[str, Form(min_length=1)],
    image: Annotated[UploadFile | None, File(description="the image to edit (PNG, JPEG, WebP, ...)")] = None,
    image_list: Annotated[
        list[UploadFile] | None, File(alias="image[]", description="OpenAI's array form")
    ] = None,
    mask: Annotated[
        UploadFile | None, File(description="not supported: edits follow the instruction")
    ] = None,
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int, Form(ge=1)] = 1,
    size: Annotated[str | None, Form(pattern=SIZE_PATTERN, description="resize the result to 'WxH'")] = None,
    response_format: Annotated[Literal["b64_json", "url"] | None, Form()] = None,
    output_format: Annotated[OutputFormat, Form()] = "png",
    user: Annotated[str | None, Form()] = None,
    seed: Annotated[
        int | None, Form(ge=0, le=SEED_MAX, description="extension: image i uses seed + i")
    ] = None,
    steps: Annotated[int | None, Form(ge=1, description="extension: sampling steps")] = None,
    text_guidance: Annotated[float, Form(ge=0, le=50, description="extension: instruction guidance")] = 5.0,
    image_guidance: Annotated[float, Form(ge=0, le=50, description="extension: source-image guidance")] = 1.5,
    shift: Annotated[
        float | None, Form(gt=0, le=100, description="extension: timestep shift (default: the model's)")
    ] = None,
    sampler: Annotated[Sampler, Form(description="extension: ODE solver")] = "euler",
):
    state.check_model(model, required=False)
    steps = check_common(state, response_format, n, steps)
    if mask is not None:
        raise APIError(400, "mask is not supported: Tuna edits the whole image by the instruction", "mask")
    uploads = ([image] if image is not None else []) + list(image_list or [])
    if len(uploads) != 1:
        raise APIError(400, f"send exactly one image to edit (got {len(uploads)})", "image")
    out_size = parse_size(state, size) if size not in (None, "auto") else None
    data = await uploads[0].read()
    source = await run_in_threadpool(decode.decode_image, data, state.config.max_image_pixels, "image")
    job = EditJob(
        deadline=state.deadline(),
        images=n,
        image=source,
        prompt=prompt,
        seed=pick_seed(seed),
        steps=steps,
        text_guidance=text_guidance,
        image_guidance=image_guidance,
        shift=shift,
        sampler=sampler,
        size=out_size,
        work_size=fit_size(*source.size, target=state.pipe.cfg.image_size, multiple=state.pipe.stride),
    )
    return await respond(await state.run(job), output_format)
