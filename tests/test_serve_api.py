"""`tuna serve` chat, images and edits through the real openai client against a live localhost server
(tiny random model): answers equal the pipeline's, bad input gets a clear 4xx, the API key guards every route.
Video jobs are in test_serve_videos.py."""

import argparse
import base64
import io
import struct
import zlib

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from serve_helpers import CONFIG, data_url, png_bytes, post
from tuna.media import write_video
from tuna.serve import ServeConfig, create_app
from tuna.serve.background import BackgroundServer
from tuna.serve.cli import config_from_args, register
from tuna.serve.tasks import StopFilter


def decoded(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height: a decompression bomb as far as the header says."""
    data = png_bytes((1, 1))
    ihdr = data[16:29]
    patched = struct.pack(">II", width, height) + ihdr[8:]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + patched) & 0xFFFFFFFF)
    return data[:16] + patched + crc + data[33:]


# ------------------------------------------------------------------ happy paths


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"


def test_chat_with_an_image_matches_the_pipeline(pipe, client):
    image = png_bytes()
    content = [
        {"type": "image_url", "image_url": {"url": data_url(image)}},
        {"type": "text", "text": "What?"},
    ]
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": content}], max_tokens=5, temperature=0
    )
    pil = Image.open(io.BytesIO(image))
    expected = pipe.chat(
        [{"role": "user", "content": [{"type": "image", "image": pil}, {"type": "text", "text": "What?"}]}],
        max_new_tokens=5,
    )
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.prompt_tokens > 10 and 0 <= usage.completion_tokens <= 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streaming_chat_equals_the_plain_answer(client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    plain = client.chat.completions.create(model="tiny", messages=messages, max_completion_tokens=6, seed=1)
    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=messages,
            max_completion_tokens=6,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens


def test_raw_stream_ends_with_done(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_chat_about_a_video(server, client, tmp_path):
    frames = [Image.new("RGB", (64, 64), (40 * i, 80, 120)) for i in range(5)]
    video = write_video(frames, tmp_path / "clip.mp4").read_bytes()
    content = [
        {"type": "video_url", "video_url": {"url": data_url(video, "video/mp4")}},
        {"type": "text", "text": "What happens?"},
    ]
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": content}], extra_body={"video_frames": 5}
    )
    assert reply.usage.prompt_tokens > 10
    assert not any(server.app.state.tuna.scratch.iterdir())  # the temporary video file is gone


def test_stop_filter_cuts_at_stop_strings_across_pieces():
    stop = StopFilter(["END", "xy"])
    out = "".join(stop.feed(p) for p in ["ab", "cE", "N", "Dzz"])
    assert out == "abc" and stop.stopped
    keep = StopFilter(["END"])
    assert "".join(keep.feed(p) for p in ["aE", "Nb"]) + keep.flush() == "aENb" and not keep.stopped


def test_usage_never_counts_more_tokens_than_were_allowed():
    # A random model's bytes may not be UTF-8: each comes back as U+FFFD, which a byte-level tokenizer
    # re-encodes as 3 tokens; usage must still stay within max_tokens.
    from tuna.serve.tasks import ChatJob

    class BytePipe:
        def encode(self, text):
            return list(text.encode())

    job = ChatJob(deadline=0.0, max_tokens=4)
    result = job.result(BytePipe(), 7, "\ufffd" * 4, "\ufffd" * 4, stopped=False)
    assert (result.completion_tokens, result.finish_reason) == (4, "length")
    short = job.result(BytePipe(), 7, "ab", "ab", stopped=False)
    assert (short.completion_tokens, short.finish_reason) == (2, "stop")


def test_image_generation_equals_the_pipeline(pipe, client):
    result = client.images.generate(
        prompt="a red square", size="64x48", n=2, extra_body={"steps": 2, "seed": 7, "guidance": 3.0}
    )
    assert result.size == "64x48" and len(result.data) == 2
    for i, item in enumerate(result.data):
        expected = pipe.generate("a red square", 48, 64, steps=2, cfg_scale=3.0, seed=7 + i)
        assert np.abs(decoded(item.b64_json).astype(int) - np.asarray(expected).astype(int)).max() <= 1
    assert not np.array_equal(decoded(result.data[0].b64_json), decoded(result.data[1].b64_json))


def test_image_edit_multipart(pipe, client):
    image = png_bytes((64, 64))
    result = client.images.edit(
        image=("in.png", image, "image/png"),
        prompt="make it blue",
        n=1,
        size="32x32",
        extra_body={"steps": 2, "seed": 3, "output_format": "webp"},
    )
    assert result.size == "32x32"
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))).format == "WEBP"


# ------------------------------------------------------------------ bad input: 4xx with a clear message


def chat_body(**fields):
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}


def image_message(url: str) -> dict:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}


def video_message(url: str) -> dict:
    return {"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}]}


BAD_JSON = [
    (
        "chat",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        "not valid JSON",
    ),
    ("chat", {"json": chat_body(model="gpt-4o")}, 404, "does not exist"),
    ("chat", {"json": chat_body(temperature=-1)}, 400, "temperature"),
    ("chat", {"json": chat_body(max_tokens=10_000)}, 400, "max_tokens"),
    ("chat", {"json": chat_body(tools=[])}, 400, "unknown field 'tools'"),
    ("chat", {"json": chat_body(messages=[])}, 400, "messages"),
    ("chat", {"json": chat_body(video_frames=4)}, 400, "video_frames"),
    ("chat", {"json": chat_body(messages=[image_message("https://example.com/a.png")])}, 400, "no network"),
    (
        "chat",
        {"json": chat_body(messages=[image_message("data:image/png;base64,AAAA")])},
        400,
        "not a readable image",
    ),
    (
        "chat",
        {"json": chat_body(messages=[video_message("data:video/mp4;base64,AAAA")])},
        400,
        "not a readable video",
    ),
    ("chat", {"json": chat_body(messages=[image_message(data_url(png_claiming(5000, 5000)))])}, 400, "limit"),
    (
        "chat",
        {"json": chat_body(messages=[image_message(data_url(png_claiming(10**5, 10**5)))])},
        400,
        "image",
    ),
    ("chat", {"content": b"x" * 1_100_000, "headers": {"content-type": "application/json"}}, 413, "limit"),
    ("chat", {"json": chat_body(messages=[{"role": "user", "content": "ab" * 3000}])}, 400, "context"),
    ("gen", {"json": {"prompt": "ab" * 3000}}, 400, "context"),
    ("gen", {"json": {"prompt": "x", "size": "65x64"}}, 400, "multiple of 16"),
    ("gen", {"json": {"prompt": "x", "size": "4096x4096"}}, 400, "up to 128"),
    ("gen", {"json": {"prompt": "x", "steps": -3}}, 400, "steps"),
    ("gen", {"json": {"prompt": "x", "steps": 9}}, 400, "between 1 and 8"),
    ("gen", {"json": {"prompt": "x", "response_format": "url"}}, 400, "b64_json"),
    ("gen", {"json": {"prompt": "x", "n": 11}}, 400, "limit of 10"),
    ("gen", {"json": {"prompt": "x", "model": "dall-e-3"}}, 404, "does not exist"),
]


@pytest.mark.parametrize(("route", "request_kwargs", "status", "words"), BAD_JSON)
def test_bad_json_requests_get_clear_4xx(server, route, request_kwargs, status, words):
    path = {"chat": "/v1/chat/completions", "gen": "/v1/images/generations"}[route]
    response = post(server, path, **request_kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"]


@pytest.mark.parametrize(
    ("files", "data", "words"),
    [
        ({"image": ("a.txt", b"hello, not an image", "text/plain")}, {"prompt": "x"}, "not a readable image"),
        ({"image": ("bomb.png", png_claiming(10**5, 10**5), "image/png")}, {"prompt": "x"}, "image"),
        ({"image": ("a.png", png_bytes(), "image/png")}, {"prompt": "x", "steps": "-1"}, "steps"),
        ({"image": ("a.png", png_bytes(), "image/png")}, {"prompt": "x", "size": "30x30"}, "multiple of 16"),
        ({}, {"prompt": "x"}, "exactly one image"),
        (
            {"image": ("a.png", png_bytes(), "image/png"), "mask": ("m.png", png_bytes(), "image/png")},
            {"prompt": "x"},
            "mask",
        ),
    ],
)
def test_bad_edits_get_clear_400(server, files, data, words):
    response = post(server, "/v1/images/edits", files=files, data=data)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]["message"]


def test_openai_client_sees_the_error(client):
    with pytest.raises(openai.BadRequestError, match="multiple of 16"):
        client.images.generate(prompt="x", size="100x100")


# ------------------------------------------------------------------ authentication and the CLI


def test_api_key_is_required_on_every_route(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**CONFIG, api_key="s3cret"))) as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            for path in ("/health", "/v1/models", "/openapi.json"):
                response = httpx.get(f"{server.url}{path}", headers=headers)
                assert response.status_code == 401 and "API key" in response.json()["error"]["message"]
            assert post(server, "/v1/chat/completions", json=chat_body(), headers=headers).status_code == 401
        good = openai.OpenAI(base_url=f"{server.url}/v1", api_key="s3cret", max_retries=0)
        assert good.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0).models.list()


def test_cli_registers_serve_with_local_defaults(tmp_path):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--model", str(tmp_path / "ckpt"), "--default-steps", "4"])
    assert (args.host, args.port, args.func.__name__) == ("127.0.0.1", 8000, "cmd_serve")
    config = config_from_args(args)
    assert config.model_id == "ckpt" and config.default_steps == 4
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        args.func(args)
    with pytest.raises(ValueError, match="queue_size"):
        config_from_args(parser.parse_args(["serve", "--model", "m", "--queue-size", "0"]))
