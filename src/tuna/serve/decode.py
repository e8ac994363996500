"""Untrusted bytes → PIL images / video files, checked before anything large is allocated.

An image's header is read first and its pixel count checked against the limit, so a small file that
claims a huge size (a decompression bomb) is refused without being decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import tempfile
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tuna.serve.errors import APIError

DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)


def data_url_bytes(url: str, kind: str, param: str, max_bytes: int) -> bytes:
    """The payload of a base64 data URL; any other URL is refused (the server never fetches)."""
    if url.startswith(("http://", "https://")):
        raise APIError(
            400,
            f"{kind} URLs are not fetched (the server has no network access); "
            f"send the {kind} inline as a base64 data URL (data:{kind}/...;base64,...)",
            param,
            "url_not_supported",
        )
    match = DATA_URL.match(url)
    if not match:
        raise APIError(400, f"{kind}_url must be a base64 data URL (data:{kind}/...;base64,...)", param)
    mime = match["mime"] or ""
    if mime and not mime.startswith(f"{kind}/") and mime != "application/octet-stream":
        raise APIError(400, f"{kind}_url has media type {mime!r}, expected {kind}/*", param)
    if len(match["data"]) * 3 // 4 > max_bytes:
        raise APIError(413, f"the {kind} is larger than the server's limit of {max_bytes} bytes", param)
    try:
        return base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError) as err:
        raise APIError(400, f"{kind}_url is not valid base64: {err}", param) from err


def decode_image(data: bytes, max_pixels: int, param: str) -> Image.Image:
    """Bytes → RGB image; refuses non-images and images over `max_pixels` before decoding them."""
    try:
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise APIError(400, f"{param}: not a readable image (PNG, JPEG, WebP, ...)", param) from err
    except Image.DecompressionBombError as err:  # PIL's own guard, before ours for the biggest claims
        raise APIError(400, f"{param}: the image is too large to decode safely ({err})", param) from err
    width, height = image.size
    if width < 1 or height < 1:
        raise APIError(400, f"{param}: the image has an empty size {width}x{height}", param)
    if width * height > max_pixels:
        raise APIError(
            400,
            f"{param}: the image is {width}x{height} = {width * height} pixels, over the server's limit of {max_pixels}",
            param,
            "image_too_large",
        )
    try:
        image.load()
        return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # truncated or corrupt data after a valid header
        raise APIError(400, f"{param}: the image could not be decoded ({err})", param) from err


def video_file(data: bytes, directory: str | Path, param: str, max_pixels: int) -> Path:
    """Write video bytes to a temporary file (PyAV reads files) after checking the stream's frame size."""
    import av

    handle = tempfile.NamedTemporaryFile(dir=directory, suffix=".video", delete=False)
    with handle:
        handle.write(data)
    path = Path(handle.name)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise APIError(400, f"{param} has no video stream", param)
            stream = container.streams.video[0]
            pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
    except APIError:
        path.unlink(missing_ok=True)
        raise
    except Exception as err:  # PyAV raises many error types for garbage input
        path.unlink(missing_ok=True)
        raise APIError(400, f"{param} is not a readable video: {err}", param) from err
    if pixels > max_pixels:
        path.unlink(missing_ok=True)
        raise APIError(400, f"{param} frames are over the server's limit of {max_pixels} pixels", param)
    return path
