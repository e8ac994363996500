"""Shared by the `tuna serve` tests: the tiny model they serve, its limits, and request helpers."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
import torch
from PIL import Image

from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.pipeline import TunaPipeline
from tuna.serve import ServeConfig, create_app
from tuna.serve.background import BackgroundServer
from tuna.tokenizer import small_tokenizer

# Tight limits keep every request cheap and make the limit errors reachable.
CONFIG = dict(
    model_id="tiny",
    default_steps=2,
    max_steps=8,
    max_image_side=128,
    default_max_tokens=6,
    max_tokens_limit=16,
    max_body_bytes=1_000_000,
    max_image_pixels=512 * 512,
)


def tiny_pipe() -> TunaPipeline:
    torch.manual_seed(0)
    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    with torch.no_grad():  # open the adaLN-Zero gates so images depend on the prompt and seed
        for p in model.flow_head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.tokenizer = small_tokenizer()
    return TunaPipeline(model)


def png_bytes(size=(40, 30), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def post(server: BackgroundServer, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=60, **kwargs)


# Fixtures of the serve tests (registered for every test module by conftest's `pytest_plugins`; a module
# that defines its own `pipe` or `server` uses that one). Module scope: one model and server per file.
@pytest.fixture(scope="module")
def pipe():
    return tiny_pipe()


@pytest.fixture(scope="module")
def server(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**CONFIG))) as running:
        yield running


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
