"""HTTP ``GET /fw/{sha256}``: artifact bytes for devices that pull firmware over HTTP, with Range.

No token: the URL itself names the content by SHA-256 and the device checks what it gets.
``Range: bytes=N-`` (and ``N-M``, ``-N``) answers 206 with Content-Range, so an interrupted
download resumes where it stopped; an unsatisfiable range answers 416. A file that is not in this process's folder is fetched first
(``ArtifactStore.ensure``: from the database in a PostgreSQL cluster); when that fails the error
is logged and the answer is 503. ``install_rollout`` wires
the rollout service (CoAP /fw, engine, webhooks) and this route into a running app.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..rollout.runtime import RolloutService

__all__ = ["router", "install_rollout", "parse_range"]

router = APIRouter(tags=["firmware downloads"])

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_CHUNK = 64 * 1024

log = logging.getLogger(__name__)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive) for a single ``bytes=`` range, None for the whole file, or the
    string "unsatisfiable". Several ranges are answered with the whole file (allowed by RFC 9110)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None:
        return None  # unknown unit or a list of ranges: ignore the header
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        return "unsatisfiable"
    return start, end


def _not_found(message: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": message, "error": "not_found"})


@router.get("/fw/{sha256}", operation_id="download_fw",
            summary="Download an artifact by SHA-256 (devices; Range supported)")
@router.head("/fw/{sha256}", operation_id="head_fw",
             summary="Size and ETag of an artifact by SHA-256, without its bytes")
def download(sha256: str, request: Request) -> Response:
    service: RolloutService | None = getattr(request.app.state, "rollout", None)
    if service is None:
        return JSONResponse(status_code=503, content={"detail": "downloads are not served here",
                                                      "error": "unavailable"})
    if not _SHA_RE.fullmatch(sha256):
        return _not_found("use /fw/<sha256> with a lowercase hex SHA-256")
    path = service.artifacts.path(sha256)
    try:
        if not service.artifacts.ensure(sha256):
            return _not_found(f"no artifact {sha256}")
    except Exception as e:  # noqa: BLE001 - whatever failed, the device gets 503
        log.error("artifact %s cannot be served over HTTP: %s", sha256, e)
        return JSONResponse(status_code=503, content={
            "detail": f"artifact {sha256} cannot be served now", "error": "unavailable"})
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return _not_found(f"no artifact {sha256}")
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha256}"',
               "Cache-Control": "public, max-age=31536000, immutable"}
    rng = parse_range(request.headers.get("range"), size)
    if rng == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if isinstance(rng, tuple):
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    else:
        start, end, status = 0, size - 1, 200
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    client = request.client
    host = client.host if client else "?"
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    tracker = service.tracker

    def body() -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(start)
            left, pos = length, start
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                pos += len(chunk)
                tracker.record(sha256, host, None, pos, size, len(chunk))
                yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type="application/octet-stream")


async def install_rollout(app: Any, server: Any, settings: Any, http_port: int | None,
                          **options: Any) -> RolloutService:
    """Start the rollout service for ``server`` and serve HTTP ``/fw`` from ``app``.

    Returns the service; call ``await service.stop()`` before stopping the server.
    """
    service = RolloutService(server, settings, http_port=http_port, **options)
    app.state.rollout = service
    if not getattr(app.state, "fw_routes", False):  # a service installed again: routes once
        app.include_router(router)
        app.state.fw_routes = True
    await service.start()
    return service
