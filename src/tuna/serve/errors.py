"""OpenAI-shaped error bodies, and the exception handlers that guarantee bad input never becomes a 500."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("tuna.serve")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    503: "server_overloaded",
    504: "timeout",
}


class APIError(Exception):
    """An error the client should see as-is: status, message and optional OpenAI `param`/`code`."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def sse_error(err: APIError) -> bytes:
    """An error once a stream has started (the status line is already sent): one SSE event."""
    return f"data: {json.dumps(error_body(err.status, err.message, err.param, err.code))}\n\n".encode()


def _describe(errors: list[dict]) -> tuple[str, str | None]:
    """Pydantic's error list → one readable sentence naming the offending field."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}", None
    if where is None:  # the body as a whole: empty, not an object, or not sent as JSON
        return (
            f"the request body must be a JSON object sent as Content-Type: application/json ({first['msg']})",
            None,
        )
    if first.get("type") == "extra_forbidden":
        return f"unknown field '{where}' (see docs/serving.md for the supported fields)", where
    message = f"{where}: {first['msg']}" if where else first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message, where


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, err: APIError) -> JSONResponse:
        return error_response(err.status, err.message, err.param, err.code, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        # OpenAI answers schema problems with 400, not FastAPI's 422
        message, param = _describe(list(err.errors()))
        return error_response(400, message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        # A genuine server bug: log it fully, tell the client as little as is useful.
        log.exception("unhandled error")
        return error_response(500, f"internal server error ({type(err).__name__}); see the server log")
