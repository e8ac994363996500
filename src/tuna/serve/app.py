"""The FastAPI application: routes, guards and the worker's lifetime."""

from __future__ import annotations

import tempfile
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

from tuna.serve import chat, images, videos
from tuna.serve.config import ServeConfig
from tuna.serve.errors import install_handlers
from tuna.serve.middleware import APIKeyMiddleware, BodyLimitMiddleware
from tuna.serve.schemas import ErrorResponse, Health, ModelCard, ModelList
from tuna.serve.state import ServerState, State
from tuna.serve.worker import Worker

# Every status a client may get, declared so the OpenAPI schema (and clients generated from it) know them.
ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "invalid request: the message names the field"),
        (401, "missing or wrong API key"),
        (404, "unknown model"),
        (413, "request body over the size limit"),
        (503, "queue full: retry after the Retry-After header's seconds"),
        (504, "the request did not finish within the timeout"),
    )
}

misc = APIRouter()
# Static: no data of the server's, so it is served without the API key (the page asks for it).
PLAYGROUND = resources.files("tuna.serve").joinpath("playground.html").read_text(encoding="utf-8")


@misc.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground() -> HTMLResponse:
    """A page that calls this API from the browser: chat (streamed), text-to-image, edit, text-to-video."""
    return HTMLResponse(PLAYGROUND)


@misc.get("/health", response_model=Health)
async def health(state: State) -> Health:
    return Health(model=state.config.model_id, queued=state.worker.queued, queue_size=state.config.queue_size)


@misc.get("/v1/models", response_model=ModelList)
async def models(state: State) -> ModelList:
    return ModelList(data=[ModelCard(id=state.config.model_id, created=state.started)])


@misc.get("/v1/models/{model_id}", response_model=ModelCard)
async def model(model_id: str, state: State) -> ModelCard:
    state.check_model(model_id)
    return ModelCard(id=model_id, created=state.started)


def create_app(pipe, config: ServeConfig | None = None) -> FastAPI:
    """An app serving `pipe` (a TunaPipeline); the worker thread starts and stops with the app."""
    config = config or ServeConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker = Worker(pipe, config.queue_size, config.max_batch_images)
        with tempfile.TemporaryDirectory(prefix="tuna-serve-") as scratch:
            store = videos.VideoStore(config.max_stored_videos)
            app.state.tuna = ServerState(config, worker, Path(scratch), int(time.time()), store)
            worker.start()
            try:
                yield
            finally:
                worker.stop()

    app = FastAPI(
        title="Tuna",
        description="OpenAI-compatible chat, image and video endpoints for a Tuna model (see docs/serving.md)",
        version="1",
        lifespan=lifespan,
    )
    install_handlers(app)
    for router in (chat.router, images.router, videos.router, misc):
        app.include_router(router, responses=ERRORS)
    # Starlette runs the last-added middleware first: authentication, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    if config.api_key is not None:
        app.add_middleware(APIKeyMiddleware, api_key=config.api_key, public=("/",))
    return app
