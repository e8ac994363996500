"""POST /v1/chat/completions: OpenAI chat messages → pipeline messages → a completion or an SSE stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tuna.serve import decode
from tuna.serve.errors import APIError, log, sse_error
from tuna.serve.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ImagePart,
    TextPart,
    Usage,
)
from tuna.serve.state import ServerState, State
from tuna.serve.tasks import ChatJob, ChatResult

router = APIRouter()
DONE = object()  # end of a stream's deltas


def convert_messages(state: ServerState, messages: list[ChatMessage], job: ChatJob) -> list[dict]:
    """Decode inline media now (so bad media is a 400 before queueing); videos become temp files."""
    config = state.config
    out = []
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        if isinstance(message.content, str):
            out.append({"role": role, "content": message.content})
            continue
        parts = []
        for j, part in enumerate(message.content):
            param = f"messages.{i}.content.{j}"
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                data = decode.data_url_bytes(part.image_url.url, "image", param, config.max_body_bytes)
                image = decode.decode_image(data, config.max_image_pixels, param)
                parts.append({"type": "image", "image": image})
            else:
                data = decode.data_url_bytes(part.video_url.url, "video", param, config.max_video_bytes)
                path = decode.video_file(data, state.scratch, param, config.max_image_pixels)
                job.cleanup.append(path)
                parts.append({"type": "video", "video": str(path)})
        out.append({"role": role, "content": parts})
    return out


def make_job(state: ServerState, body: ChatRequest) -> ChatJob:
    config = state.config
    max_tokens = body.max_completion_tokens or body.max_tokens or config.default_max_tokens
    if max_tokens > config.max_tokens_limit:
        raise APIError(
            400,
            f"max_tokens is {max_tokens}, over the server's limit of {config.max_tokens_limit}",
            "max_tokens",
        )
    frames, temporal = body.video_frames, state.pipe.cfg.vae.scale_factor_temporal
    if frames is not None and (frames - 1) % temporal:
        raise APIError(400, f"video_frames must be 1 + {temporal}k, got {frames}", "video_frames")
    return ChatJob(
        deadline=state.deadline(),
        max_tokens=max_tokens,
        temperature=0.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        video_frames=frames,
        stops=body.stop,
    )


def usage(result: ChatResult) -> Usage:
    total = result.prompt_tokens + result.completion_tokens
    return Usage(
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens, total_tokens=total
    )


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "a completion, or SSE chunks"}},
)
async def chat_completions(body: ChatRequest, state: State):
    state.check_model(body.model)
    job = make_job(state, body)
    try:
        job.messages = await run_in_threadpool(convert_messages, state, body.messages, job)
    except BaseException:
        for path in job.cleanup:
            path.unlink(missing_ok=True)
        raise
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not body.stream:
        result: ChatResult = await state.run(job)
        choice = Choice(
            index=0, message=AssistantMessage(content=result.text), finish_reason=result.finish_reason
        )
        return ChatCompletion(
            id=completion_id,
            created=created,
            model=state.config.model_id,
            choices=[choice],
            usage=usage(result),
        )

    loop, deltas = asyncio.get_running_loop(), asyncio.Queue()
    job.emit = lambda text: loop.call_soon_threadsafe(deltas.put_nowait, text)
    job.future.add_done_callback(lambda _: loop.call_soon_threadsafe(deltas.put_nowait, DONE))
    state.submit(job)
    # Wait for the first delta before answering, so that queueing timeouts and input errors the
    # pipeline finds still get a proper status code instead of an error inside a 200 stream.
    first = await state.wait(job, deltas.get())
    if first is DONE:
        await state.wait(job, asyncio.wrap_future(job.future))  # raises the job's error, if any
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def sse(choices: list[ChunkChoice], tokens: Usage | None = None) -> bytes:
        payload = ChatCompletionChunk(
            id=completion_id, created=created, model=state.config.model_id, choices=choices, usage=tokens
        )
        return f"data: {payload.model_dump_json(exclude_none=True)}\n\n".encode()

    def delta(content: str | None = None, role: str | None = None, finish: str | None = None) -> list:
        return [ChunkChoice(index=0, delta=Delta(role=role, content=content), finish_reason=finish)]

    async def events() -> AsyncIterator[bytes]:
        try:
            yield sse(delta("", role="assistant"))
            item = first
            while item is not DONE:
                yield sse(delta(item))
                item = await state.wait(job, deltas.get())
            result: ChatResult = await state.wait(job, asyncio.wrap_future(job.future))
            yield sse(delta(finish=result.finish_reason))
            if include_usage:  # OpenAI's form: one more chunk, with no choices
                yield sse([], usage(result))
        except APIError as err:
            yield sse_error(err)
        except Exception as err:  # a server bug mid-stream: the status line is sent, so report it inline
            log.error("chat stream failed", exc_info=err)
            yield sse_error(
                APIError(500, f"internal server error ({type(err).__name__}); see the server log")
            )
        finally:
            job.cancelled.set()  # no-op when finished; stops decoding when the client has gone
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
