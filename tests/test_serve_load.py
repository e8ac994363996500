"""Queueing, batching, back-pressure (503) and timeouts (504) of `tuna serve`, on a live localhost server.

A `Gate` job holds the model thread so the tests control exactly what waits in the queue.
"""

import base64
import io
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tuna.serve import ServeConfig, create_app
from tuna.serve.background import BackgroundServer
from tuna.serve.tasks import Job

BASE = dict(model_id="tiny", default_steps=2, max_steps=8, max_image_side=128, default_max_tokens=8)


@dataclass
class Gate(Job):
    """Occupies the model thread until opened (bounded: it gives up after 30 s)."""

    opened: threading.Event = field(default_factory=threading.Event)
    running: threading.Event = field(default_factory=threading.Event)

    def run(self, pipe):
        self.running.set()
        self.opened.wait(30)


def close_gate(server: BackgroundServer) -> Gate:
    gate = Gate(deadline=time.monotonic() + 60)
    worker = server.app.state.tuna.worker
    worker.submit(gate)
    assert gate.running.wait(10)
    return gate


def wait_queued(server: BackgroundServer, count: int) -> None:
    worker = server.app.state.tuna.worker
    deadline = time.monotonic() + 10
    while worker.queued < count:
        assert time.monotonic() < deadline, f"only {worker.queued} of {count} jobs queued"
        time.sleep(0.01)


def generate(url: str, **fields) -> httpx.Response:
    body = {"prompt": "a red square", "size": "64x64", "steps": 2, **fields}
    return httpx.post(f"{url}/v1/images/generations", json=body, timeout=60)


def pixels(response: httpx.Response, i: int = 0) -> np.ndarray:
    data = base64.b64decode(response.json()["data"][i]["b64_json"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_32_concurrent_clients_complete_without_errors(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE))) as server:
        image = io.BytesIO()
        Image.new("RGB", (64, 64), (0, 90, 200)).save(image, "PNG")

        def one_client(i: int) -> float:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=60)
            start = time.perf_counter()
            kind = i % 4
            if kind in (0, 1):  # half the clients generate images: these batch together
                result = client.images.generate(prompt=f"shape {i}", size="64x64", extra_body={"seed": i})
                assert len(result.data) == 1
            elif kind == 2:
                reply = client.chat.completions.create(
                    model="tiny", messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=8
                )
                assert reply.usage.completion_tokens <= 8
            elif i % 8 == 3:
                stream = client.chat.completions.create(
                    model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True
                )
                assert [c for c in stream][-1].choices[0].finish_reason in ("stop", "length")
            else:
                result = client.images.edit(image=("a.png", image.getvalue(), "image/png"), prompt="bluer")
                assert len(result.data) == 1
            return time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            futures = [pool.submit(one_client, i) for i in range(32)]
            latencies = sorted(f.result(timeout=60) for f in futures)  # .result re-raises any client error
        wall = time.perf_counter() - start
        worker = server.app.state.tuna.worker
        print(
            f"\n32 clients: {wall:.2f} s wall, {32 / wall:.1f} req/s, latency p50 {statistics.median(latencies):.3f} s"
            f" p95 {latencies[int(0.95 * 31)]:.3f} s max {latencies[-1]:.3f} s;"
            f" generation batches {worker.batches_run} (largest {worker.largest_batch} images)"
        )
        assert worker.largest_batch > 1  # 16 compatible generation requests did not run one by one


def test_compatible_generations_share_one_batched_call(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE))) as server:
        worker = server.app.state.tuna.worker
        gate = close_gate(server)
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(generate, server.url, seed=5)
            wait_queued(server, 1)
            other_size = pool.submit(generate, server.url, seed=5, size="32x32")
            wait_queued(server, 2)
            second = pool.submit(generate, server.url, seed=9, n=2)
            wait_queued(server, 3)
            before = worker.batches_run
            gate.opened.set()
            responses = [f.result(timeout=60) for f in (first, other_size, second)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert worker.batches_run - before == 2 and worker.largest_batch == 3  # 1 + 2 images, then 32x32
        # a row of a batch equals the same request run alone
        for response, seed in ((responses[0], 5), (responses[2], 9), (responses[2], 10)):
            alone = np.asarray(pipe.generate("a red square", 64, 64, steps=2, seed=seed)).astype(int)
            index = 1 if seed == 10 else 0
            assert np.abs(pixels(response, index) - alone).max() <= 1


def edit(url: str, image: Image.Image, **fields) -> httpx.Response:
    data = io.BytesIO()
    image.save(data, "PNG")
    form = {"prompt": "make it blue", "steps": "2", **{k: str(v) for k, v in fields.items()}}
    return httpx.post(f"{url}/v1/images/edits", files={"image": ("in.png", data.getvalue(), "image/png")},
                      data=form, timeout=60)  # fmt: skip


def test_compatible_edits_share_one_batched_call(pipe):
    square, wide = Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (96, 48), (30, 30, 200))
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE))) as server:
        worker = server.app.state.tuna.worker
        gate = close_gate(server)
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(edit, server.url, square, seed=5)
            wait_queued(server, 1)
            other_size = pool.submit(edit, server.url, wide, seed=5)
            wait_queued(server, 2)
            second = pool.submit(edit, server.url, square, seed=9, n=2, prompt="a green circle")
            wait_queued(server, 3)
            before = worker.batches_run
            gate.opened.set()
            responses = [f.result(timeout=60) for f in (first, other_size, second)]
        assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
        assert (
            worker.batches_run - before == 2 and worker.largest_batch == 3
        )  # 1 + 2 edits, then the wide one
        for response, index, prompt, seed in ((responses[0], 0, "make it blue", 5),
                                              (responses[2], 1, "a green circle", 10)):  # fmt: skip
            alone = np.asarray(pipe.edit(square, prompt, steps=2, seed=seed)).astype(int)
            assert np.abs(pixels(response, index) - alone).max() <= 1


def chat(url: str, text: str, **fields) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": text}], "max_tokens": 6, **fields}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def test_greedy_chats_share_one_batched_call(pipe):
    texts = ["hello", "what shape is red?", "a much longer question about circles and squares"]
    limits = [6, 3, 8]
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE))) as server:
        worker = server.app.state.tuna.worker
        gate = close_gate(server)
        with ThreadPoolExecutor(4) as pool:
            greedy = []
            for i, text in enumerate(texts):  # different token limits share the batch too
                greedy.append(
                    pool.submit(chat, server.url, text, stop=["zz"] if i == 1 else None, max_tokens=limits[i])
                )
                wait_queued(server, i + 1)
            sampled = pool.submit(chat, server.url, "hello", temperature=0.8, seed=1)  # decodes alone
            wait_queued(server, 4)
            before = worker.batches_run
            gate.opened.set()
            replies = [f.result(timeout=60) for f in greedy]
            assert sampled.result(timeout=60).status_code == 200
        assert [r.status_code for r in replies] == [200] * 3
        assert worker.batches_run - before == 1 and worker.largest_batch == 3
        for reply, text, limit in zip(replies, texts, limits):
            alone = pipe.chat([{"role": "user", "content": text}], max_new_tokens=limit)
            assert reply.json()["choices"][0]["message"]["content"] == alone
            assert reply.json()["usage"]["completion_tokens"] <= limit


def test_a_full_queue_answers_503_with_retry_after(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE, queue_size=2))) as server:
        gate = close_gate(server)
        with ThreadPoolExecutor(2) as pool:
            waiting = [pool.submit(generate, server.url, seed=i) for i in range(2)]
            wait_queued(server, 2)
            refused = generate(server.url)
            body = {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "stream": True}
            refused_stream = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10)
            gate.opened.set()
            assert [f.result(timeout=60).status_code for f in waiting] == [200, 200]
        for response in (refused, refused_stream):
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert "busy" in response.json()["error"]["message"]
        assert generate(server.url).status_code == 200  # and it recovers


def test_requests_past_the_timeout_get_504_and_cost_no_model_time(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE, request_timeout_s=0.5))) as server:
        gate = close_gate(server)
        chat = {"model": "tiny", "messages": [{"role": "user", "content": "x"}]}
        started = time.perf_counter()
        timed_out = [
            httpx.post(f"{server.url}/v1/chat/completions", json=chat, timeout=10),
            httpx.post(f"{server.url}/v1/chat/completions", json={**chat, "stream": True}, timeout=10),
            generate(server.url),
        ]
        assert time.perf_counter() - started < 5
        for response in timed_out:
            assert response.status_code == 504, response.text
            assert "0.5 s" in response.json()["error"]["message"]
        worker = server.app.state.tuna.worker
        before = worker.batches_run
        gate.opened.set()
        assert generate(server.url).status_code == 200
        assert worker.batches_run == before + 1  # the expired generation was dropped, not run


def test_a_bad_request_does_not_fail_the_batch_it_joined(pipe):
    with BackgroundServer(create_app(pipe, ServeConfig(**BASE))) as server:
        gate = close_gate(server)
        with ThreadPoolExecutor(2) as pool:
            good = pool.submit(generate, server.url, seed=1)
            wait_queued(server, 1)
            too_long = pool.submit(generate, server.url, prompt="ab" * 3000)  # over the context
            wait_queued(server, 2)
            gate.opened.set()
            assert good.result(timeout=60).status_code == 200
            refused = too_long.result(timeout=60)
        assert refused.status_code == 400 and "context" in refused.json()["error"]["message"]


def test_a_batch_stops_between_steps_once_every_client_has_gone(pipe):
    from tuna.serve.tasks import GenerateJob, JobCancelled
    from tuna.serve.worker import Worker

    steps_run = []

    class Spy:  # the pipeline; after its first step every client of the batch leaves
        def generate(self, *args, on_step, **kwargs):
            def spy(done, total):
                steps_run.append(done)
                if done == 1:
                    jobs[1].cancelled.set()
                    if leave_all:
                        jobs[0].cancelled.set()
                on_step(done, total)

            return pipe.generate(*args, on_step=spy, **kwargs)

    for leave_all in (False, True):
        steps_run.clear()
        jobs = [GenerateJob(deadline=time.monotonic() + 60, prompt=p, height=32, width=32, steps=4)
                for p in ("a", "b")]  # fmt: skip
        for job in jobs:
            assert job.future.set_running_or_notify_cancel()
        Worker(Spy(), queue_size=4, max_batch_images=4)._run(jobs)
        if leave_all:  # nobody wants the result: stop after the step that saw them go
            assert steps_run == [1]
            for job in jobs:
                with pytest.raises(JobCancelled):
                    job.future.result(0)
        else:  # one client still waits: the batch runs to the end for it
            assert steps_run == [1, 2, 3, 4] and len(jobs[0].future.result(0)) == 1
