"""Pure ASGI guards that run before any parsing: the API key, then the body-size limit.

The body is read here, up to the limit, and replayed to the app: a chunked upload without a
Content-Length cannot slip past the limit, and nothing downstream ever holds more than it.
"""

from __future__ import annotations

import hmac
import json

from tuna.serve.errors import error_body


async def _send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(status, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class APIKeyMiddleware:
    def __init__(self, app, api_key: str, public: tuple[str, ...] = ()):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()
        self.public = public  # paths any GET may read without the key (static pages)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] in ("GET", "HEAD") and scope["path"] in self.public:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):  # constant time: no guessing by timing
            message = "missing or invalid API key; send 'Authorization: Bearer <key>'"
            return await _send_error(send, 401, message, {"WWW-Authenticate": "Bearer"})
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, send):
        return _send_error(
            send, 413, f"the request body is larger than the server's limit of {self.max_bytes} bytes"
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _send_error(send, 400, "the Content-Length header is not a number")
            if declared > self.max_bytes:
                return await self._too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnect notifications, as usual

        return await self.app(scope, replay, send)
