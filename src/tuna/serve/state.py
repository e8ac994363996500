"""What every route needs: the config, the worker, a scratch directory, and job submission/awaiting
with the error mapping (queue full → 503, deadline → 504, bad input found by the pipeline → 400)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from tuna.serve.config import ServeConfig
from tuna.serve.errors import APIError
from tuna.serve.tasks import Job, JobCancelled, JobTimeout
from tuna.serve.worker import QueueFull, Worker

if TYPE_CHECKING:
    from tuna.serve.videos import VideoStore


@dataclass
class ServerState:
    config: ServeConfig
    worker: Worker
    scratch: Path  # temporary files (videos for PyAV), deleted with the server
    started: int  # unix time, for the model card
    videos: VideoStore  # text-to-video jobs and their files

    @property
    def pipe(self):
        return self.worker.pipe

    def deadline(self) -> float:
        return time.monotonic() + self.config.request_timeout_s

    def check_model(self, model: str | None, required: bool = True) -> None:
        if model is None and not required:
            return
        if model != self.config.model_id:
            raise APIError(
                404,
                f"the model {model!r} does not exist; this server serves {self.config.model_id!r}",
                "model",
                "model_not_found",
            )

    def submit(self, job: Job) -> None:
        try:
            self.worker.submit(job)
        except QueueFull as err:
            for path in job.cleanup:  # the worker never sees this job, so it cannot delete its files
                path.unlink(missing_ok=True)
            raise APIError(
                503, str(err), code="queue_full", headers={"Retry-After": str(err.retry_after)}
            ) from err

    async def run(self, job: Job):
        """Submit a job and wait for its result, within its deadline."""
        self.submit(job)
        return await self.wait(job, asyncio.wrap_future(job.future))

    async def wait(self, job: Job, awaitable):
        try:
            return await asyncio.wait_for(awaitable, max(0.0, job.deadline - time.monotonic()))
        except (TimeoutError, asyncio.TimeoutError, JobTimeout) as err:
            job.cancelled.set()  # a running chat stops at its next token
            raise timeout_error(self.config) from err
        except asyncio.CancelledError:
            job.cancelled.set()  # the client disconnected
            raise
        except (ValueError, FileNotFoundError) as err:
            raise APIError(400, str(err)) from err
        except QueueFull as err:  # the server shut down while the job waited
            raise APIError(503, "the server is shutting down", headers={"Retry-After": "1"}) from err
        except JobCancelled as err:
            raise APIError(499, "the request was cancelled") from err


def timeout_error(config: ServeConfig) -> APIError:
    return APIError(
        504,
        f"the request did not finish within the server's {config.request_timeout_s:g} s limit",
        code="timeout",
    )


def get_state(request: Request) -> ServerState:
    return request.app.state.tuna


State = Annotated[ServerState, Depends(get_state)]  # a route parameter of this type receives the state
