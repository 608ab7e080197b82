"""Request bodies under control: authenticate before reading one, and cap its size (413).

FastAPI reads and parses a request body before it solves the route's dependencies, so a token
check in a dependency comes after the whole body is in memory. ``BodyLimits`` is a plain ASGI
middleware in front of the app that, for every request that carries a body:

- under ``/api/``: checks the bearer token first (401 without reading a byte of the body);
- refuses a declared ``Content-Length`` over the limit at once, and counts the bytes of a
  streamed (chunked) body as they arrive, failing with 413 as soon as they pass the limit.

The limit is ``LWM2M_MAX_JSON_BODY`` for everything except artifact uploads, which enforce their
own larger limit while streaming into the store (api/artifacts.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_body

__all__ = ["BodyLimits", "BodyTooLarge", "PREAUTHENTICATED", "DEFAULT_MAX_JSON_BODY"]

DEFAULT_MAX_JSON_BODY = 1024 * 1024
# The scope["state"] key under which the middleware leaves the token it checked, so the route's
# scope check does not look it up a second time.
PREAUTHENTICATED = "preauthenticated_token"
# (request, scheme, token) -> the verified token; raises the API's 401/403 error otherwise.
Authenticate = Callable[[Request, str, str], Any]
_UPLOAD_ROUTES = {("POST", "/api/v1/artifacts")}


class BodyTooLarge(HTTPException):
    """A body passed the limit while it was being read (FastAPI passes HTTPExceptions through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes "
                              "(LWM2M_MAX_JSON_BODY)")


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


async def _answer(send: Send, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
            (b"connection", b"close")]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


class BodyLimits:
    """See the module docstring; ``max_json_body`` defaults to the app's settings."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate,
                 max_json_body: int | None = None) -> None:
        self.app = app
        self.authenticate = authenticate  # deps.authenticate_bearer, handed over by the app
        self.max_json_body = max_json_body

    def _limit(self, scope: Scope) -> int | None:
        if (scope["method"], scope["path"].rstrip("/")) in _UPLOAD_ROUTES:
            return None  # the upload route streams into the store under its own limit
        if self.max_json_body is not None:
            return self.max_json_body
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return int(getattr(settings, "max_json_body", DEFAULT_MAX_JSON_BODY))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/api/"):
            refused = await self._authenticate(scope, headers)
            if refused is not None:
                await _answer(send, refused.status, error_body(refused.kind, refused.message),
                              refused.headers)
                return
        limit = self._limit(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            too_large = BodyTooLarge(limit)
            await _answer(send, 413, error_body("too_large", str(too_large.detail)))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)

    async def _authenticate(self, scope: Scope, headers: dict[bytes, bytes]) -> ApiError | None:
        """None when the bearer token is valid (kept in the scope's state), else the error."""
        scheme, credentials = get_authorization_scheme_param(
            headers.get(b"authorization", b"").decode("latin-1"))
        request = Request(scope)
        try:
            token = await run_in_threadpool(self.authenticate, request, scheme, credentials)
        except ApiError as e:
            return e
        scope.setdefault("state", {})[PREAUTHENTICATED] = token
        return None
