"""The playground page at `GET /`: served without the key, and every call it makes is one the API takes."""

import re
import shutil
import subprocess

import httpx
import pytest

from serve_helpers import CONFIG
from tuna.serve import ServeConfig, create_app
from tuna.serve.app import PLAYGROUND
from tuna.serve.background import BackgroundServer
from tuna.serve.schemas import ChatRequest, ImageGenerationRequest, VideoCreateRequest

SCRIPT = PLAYGROUND.split("<script>", 1)[1].split("</script>", 1)[0]


def test_the_page_is_public_and_the_api_is_not(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**CONFIG, api_key="s3cret"))) as server:
        page = httpx.get(f"{server.url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Tuna playground" in page.text
        assert httpx.post(f"{server.url}/", json={}).status_code == 401  # only GET / is public
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        assert httpx.get(f"{server.url}/", params={"x": 1}).status_code == 200


def test_every_call_of_the_page_is_a_route_of_the_api(pipe):
    paths = create_app(pipe, ServeConfig(**CONFIG)).openapi()["paths"]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    calls = re.findall(r'call\("(GET|POST|DELETE)", "([^"]+)"', SCRIPT)
    assert {path for _, path in calls} >= {"/v1/models", "/v1/chat/completions", "/v1/images/generations",
                                           "/v1/images/edits", "/v1/videos", "/v1/videos/"}  # fmt: skip
    for method, path in calls:
        if path.endswith("/"):  # an id follows: a route with a parameter there
            assert any(m == method and p.startswith(path + "{") for m, p in routes), (method, path)
        else:
            assert (method, path) in routes, (method, path)


def test_the_fields_the_page_sends_are_the_api_fields():
    # The request models are strict (an unknown field is a 400), so a renamed field would break the page.
    bodies = re.findall(r"withoutNulls\(\{(.*?)\}\)", SCRIPT, flags=re.S)
    sent = [set(re.findall(r"(\w+):", body)) for body in bodies]
    image, video = sent
    assert image == {"model", "prompt", "n", "size", "steps", "guidance", "seed"}
    assert image <= set(ImageGenerationRequest.model_fields)
    assert video <= set(VideoCreateRequest.model_fields) and "frames" in video
    chat = set(re.findall(r"(\w+):", SCRIPT.split('"/v1/chat/completions", {', 1)[1].split("});", 1)[0]))
    assert (
        {"model", "messages", "max_tokens", "stream"} <= chat <= set(ChatRequest.model_fields) | {"messages"}
    )
    form = set(re.findall(r'form\.append\("(\w+)"', SCRIPT)) | set(re.findall(r'\["(\w+)", "edit-', SCRIPT))
    assert form == {"image", "prompt", "steps", "text_guidance", "image_guidance", "seed"}


def test_the_edit_form_fields_are_the_endpoints_parameters(pipe):
    schema = create_app(pipe, ServeConfig(**CONFIG)).openapi()
    body = schema["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]["multipart/form-data"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    params = set(schema["components"]["schemas"][name]["properties"])
    assert {"image", "prompt", "steps", "text_guidance", "image_guidance", "seed"} <= params


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the page's script")
def test_the_pages_script_parses(tmp_path):
    script = tmp_path / "playground.js"
    script.write_text(SCRIPT)
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
