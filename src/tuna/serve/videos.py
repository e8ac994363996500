"""Text-to-video as jobs, shaped like OpenAI's Videos API.

A video takes far longer than an HTTP request should stay open (minutes on a CPU), so `POST /v1/videos`
answers at once with a job; the client polls `GET /v1/videos/{id}` (OpenAI's client: `videos.poll`)
and downloads `GET /v1/videos/{id}/content` once it is completed. The MP4s live in the server's scratch
directory until deleted, evicted (the oldest finished ones beyond `max_stored_videos`) or the server stops.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from tuna.serve.errors import APIError
from tuna.serve.images import parse_size, resolve_steps
from tuna.serve.schemas import ErrorResponse, Video, VideoCreateRequest, VideoDeleted, VideoError, VideoList
from tuna.serve.state import ServerState, State
from tuna.serve.tasks import JobCancelled, JobTimeout, VideoJob

router = APIRouter()
POLL_AFTER_MS = "1000"  # what `openai-poll-after-ms` tells the client's poll helper
NOT_READY = {409: {"model": ErrorResponse, "description": "the video is not completed yet, or it failed"}}
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass
class VideoRecord:
    job: VideoJob
    id: str
    model: str
    created_at: int
    size: str
    completed_at: int | None = None

    def status(self) -> str:
        future = self.job.future
        if future.done():  # nothing calls future.cancel(): a job ends with a result or an exception
            return "failed" if future.exception() is not None else "completed"
        return "in_progress" if future.running() else "queued"

    def view(self) -> Video:
        status, job = self.status(), self.job
        error = failure(job.future.exception()) if status == "failed" else None
        return Video(
            id=self.id, model=self.model, status=status, progress=100 if status == "completed" else job.progress,
            created_at=self.created_at, completed_at=self.completed_at, prompt=job.prompt,
            seconds=f"{job.frames / job.fps:g}", size=self.size, error=error, frames=job.frames, fps=job.fps,
        )  # fmt: skip


def failure(err: BaseException) -> VideoError:
    if isinstance(err, JobTimeout):
        return VideoError(code="timeout", message="the video waited past the server's video_timeout_s")
    if isinstance(err, JobCancelled):
        return VideoError(code="cancelled", message="the video was deleted before it was generated")
    if isinstance(err, (ValueError, FileNotFoundError)):
        return VideoError(code="invalid_request", message=str(err))
    return VideoError(
        code="server_error", message=f"generation failed ({type(err).__name__}); see the server log"
    )


@dataclass
class VideoStore:
    """The server's video jobs, oldest first; thread-safe (the worker settles jobs from its thread)."""

    limit: int
    records: dict[str, VideoRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: VideoRecord) -> None:
        with self.lock:
            finished = [r for r in self.records.values() if r.job.future.done()]
            while len(self.records) >= self.limit and finished:
                self._forget(finished.pop(0))
            if len(self.records) >= self.limit:
                raise APIError(
                    503, f"{self.limit} videos are already queued or generating; retry later",
                    code="queue_full", headers={"Retry-After": "60"},
                )  # fmt: skip
            self.records[record.id] = record
        record.job.future.add_done_callback(lambda _: self._settled(record))

    def get(self, video_id: str) -> VideoRecord:
        with self.lock:
            record = self.records.get(video_id)
        if record is None:
            raise APIError(404, f"no video with id {video_id!r}", "video_id", "video_not_found")
        return record

    def delete(self, video_id: str) -> None:
        record = self.get(video_id)
        with self.lock:
            self._forget(record)

    def listing(self) -> list[VideoRecord]:
        with self.lock:
            return list(self.records.values())

    def _settled(self, record: VideoRecord) -> None:
        record.completed_at = int(time.time())
        with self.lock:
            if record.id not in self.records:  # deleted while it ran: nobody will fetch its files
                _remove_files(record.job)

    def _forget(self, record: VideoRecord) -> None:
        """Drop a record (under the lock): cancel it if it has not run, delete its files if it has."""
        self.records.pop(record.id, None)
        record.job.cancelled.set()
        if record.job.future.done():
            _remove_files(record.job)


def _remove_files(job: VideoJob) -> None:
    for path in (job.video_path, job.thumbnail_path):
        if path is not None:
            path.unlink(missing_ok=True)


async def read_request(request: Request) -> VideoCreateRequest:
    """The body as JSON or form fields; validation problems become the usual 400s."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            fields = json.loads(await request.body())
        except ValueError as err:
            raise APIError(400, f"the request body is not valid JSON: {err}") from err
    elif kind in FORMS:
        form = await request.form()
        fields = {}
        for key in form:
            values = form.getlist(key)
            if key != "input_reference" and (len(values) != 1 or isinstance(values[0], UploadFile)):
                raise APIError(400, f"form field {key!r} must be sent once, as text", key)
            fields[key] = values[0]
    else:
        raise APIError(
            415, f"send the video request as application/json or multipart/form-data, not {kind!r}"
        )
    if not isinstance(fields, dict):
        raise APIError(400, "the request body must be a JSON object")
    if "input_reference" in fields:
        raise APIError(400, "input_reference is not supported: Tuna generates videos from the prompt alone",
                       "input_reference")  # fmt: skip
    try:
        return VideoCreateRequest.model_validate(fields)
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from err


def video_frames(state: ServerState, body: VideoCreateRequest) -> int:
    """Frames from `frames`, `seconds` × `fps`, or the model's default; always 1 + 4k (the VAE's stride)."""
    stride, limit = state.pipe.cfg.vae.scale_factor_temporal, state.config.max_video_frames
    if body.frames is not None and body.seconds is not None:
        raise APIError(400, "give seconds or frames, not both", "frames")
    if body.frames is not None:
        frames, param = body.frames, "frames"
        if (frames - 1) % stride:
            raise APIError(400, f"frames must be 1 + {stride}k (1, {1 + stride}, {1 + 2 * stride}, ...), got {frames}",
                           "frames")  # fmt: skip
    elif body.seconds is not None:
        frames, param = 1 + stride * max(1, round((float(body.seconds) * body.fps - 1) / stride)), "seconds"
    else:
        frames, param = state.pipe.cfg.video_frames, "frames"
    if frames > limit:
        raise APIError(400, f"{frames} frames is over the server's limit of {limit} frames", param)
    return frames


CREATE_BODY = {
    "required": True,
    "content": {
        kind: {"schema": VideoCreateRequest.model_json_schema()}
        for kind in ("application/json", "multipart/form-data")
    },
}


@router.post("/v1/videos", response_model=Video, openapi_extra={"requestBody": CREATE_BODY})
async def create(request: Request, state: State) -> Video:
    body = await read_request(request)
    state.check_model(body.model, required=False)
    frames = video_frames(state, body)
    width, height = parse_size(state, body.size)
    try:  # a prompt the model cannot take is a 400 now, not a failed job later
        await run_in_threadpool(state.pipe.prompt_segments, body.prompt)
    except ValueError as err:
        raise APIError(400, str(err), "prompt") from err
    video_id = f"video_{uuid.uuid4().hex}"
    job = VideoJob(
        deadline=time.monotonic() + state.config.video_timeout_s,
        prompt=body.prompt, frames=frames, height=height, width=width, fps=body.fps,
        seed=random.randrange(2**31) if body.seed is None else body.seed,
        steps=resolve_steps(state, body.steps), guidance=7.5 if body.guidance is None else body.guidance,
        shift=body.shift, sampler=body.sampler, negative_prompt=body.negative_prompt,
        video_path=state.scratch / f"{video_id}.mp4", thumbnail_path=state.scratch / f"{video_id}.webp",
    )  # fmt: skip
    record = VideoRecord(job, video_id, state.config.model_id, int(time.time()), f"{width}x{height}")
    state.videos.add(record)
    try:
        state.submit(job)
    except APIError:
        state.videos.delete(video_id)
        raise
    return record.view()


@router.get("/v1/videos", response_model=VideoList)
async def list_videos(
    state: State,
    after: Annotated[str | None, Query(description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> VideoList:
    records = state.videos.listing()
    if order == "desc":
        records.reverse()
    if after is not None:
        ids = [r.id for r in records]
        if after not in ids:
            raise APIError(400, f"after: no video with id {after!r}", "after")
        records = records[ids.index(after) + 1 :]
    page = [r.view() for r in records[:limit]]
    return VideoList(
        data=page, first_id=page[0].id if page else None, last_id=page[-1].id if page else None,
        has_more=len(records) > limit,
    )  # fmt: skip


@router.get("/v1/videos/{video_id}", response_model=Video)
async def retrieve(video_id: str, state: State, response: Response) -> Video:
    view = state.videos.get(video_id).view()
    if view.status in ("queued", "in_progress"):
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return view


@router.get(
    "/v1/videos/{video_id}/content",
    responses={
        200: {"content": {"video/mp4": {}, "image/webp": {}}, "description": "the MP4, or its first frame"},
        **NOT_READY,
    },
    response_class=FileResponse,
)
async def content(
    video_id: str, state: State, variant: Annotated[Literal["video", "thumbnail"], Query()] = "video"
) -> FileResponse:
    record = state.videos.get(video_id)
    status = record.status()
    if status != "completed":
        raise APIError(409, f"video {video_id} is {status}, not completed: nothing to download yet", "video_id",
                       "video_not_ready")  # fmt: skip
    path: Path = record.job.video_path if variant == "video" else record.job.thumbnail_path
    if not path.is_file():  # deleted or evicted between the lookup and now
        raise APIError(404, f"no video with id {video_id!r}", "video_id", "video_not_found")
    media = "video/mp4" if variant == "video" else "image/webp"
    return FileResponse(path, media_type=media, filename=f"{video_id}{path.suffix}")


@router.delete("/v1/videos/{video_id}", response_model=VideoDeleted)
async def delete(video_id: str, state: State) -> VideoDeleted:
    state.videos.delete(video_id)
    return VideoDeleted(id=video_id)
