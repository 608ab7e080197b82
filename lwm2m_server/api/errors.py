"""The one place that turns errors into HTTP answers: protocol errors, bad paths and values, auth.

Every error answer is JSON ``{"detail": <message>, "error": <kind>, ...}``; a device's CoAP
error code travels as ``"coap_code"``, a queued request as ``{"request_id": ...}`` with 202.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..model import NodeError, PathError, ValueTypeError
from ..protocol.errors import (
    DeviceError,
    DeviceNotFound,
    DeviceOffline,
    DeviceTimeout,
    InvalidRequest,
    LwM2MError,
    Queued,
)

__all__ = ["ApiError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Unavailable",
           "install_error_handlers", "error_body", "queued_response"]

REQUESTS_PREFIX = "/api/v1/requests"


class ApiError(Exception):
    """Base of the HTTP layer's own errors; ``status`` is the HTTP status code."""

    status = 500
    kind = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.message = message
        self.headers = headers
        self.extra = extra
        super().__init__(message)


class BadRequest(ApiError):
    status = 400
    kind = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    kind = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status = 403
    kind = "forbidden"


class NotFound(ApiError):
    status = 404
    kind = "not_found"


class Unavailable(ApiError):
    status = 503
    kind = "unavailable"


_PROTOCOL_KINDS: dict[type[LwM2MError], str] = {
    DeviceNotFound: "device_not_found",
    DeviceOffline: "device_offline",
    DeviceTimeout: "device_timeout",
    DeviceError: "device_error",
    InvalidRequest: "invalid_request",
}


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"detail": message, "error": kind, **{k: v for k, v in extra.items() if v is not None}}


def queued_response(request_id: str, message: str) -> JSONResponse:
    """202 with the queued request's id and where to poll it."""
    poll = f"{REQUESTS_PREFIX}/{request_id}"
    return JSONResponse(status_code=202, headers={"Location": poll},
                        content={"request_id": request_id, "state": "pending", "poll": poll,
                                 "detail": message})


def _snake(name: str) -> str:
    """``RequestNotFound`` -> ``request_not_found`` (``LwM2M`` stays one word)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace("LwM2M", "Lwm2m")).lower()


def _protocol_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LwM2MError)
    if isinstance(exc, Queued):
        return queued_response(exc.request_id, exc.message)
    kind = next((k for cls, k in _PROTOCOL_KINDS.items() if isinstance(exc, cls)),
                _snake(type(exc).__name__))
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    # Only a device's own answer carries a CoAP code worth showing; InvalidRequest has one too,
    # but that is what the server would answer a device, not what a device said.
    coap_code = exc.coap_code if isinstance(exc, DeviceError) else None
    return JSONResponse(status_code=status, content=error_body(kind, exc.message, coap_code=coap_code))


def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(status_code=exc.status, headers=exc.headers,
                        content=error_body(exc.kind, exc.message, **exc.extra))


def _value_error(_: Request, exc: Exception) -> JSONResponse:
    # Paths, values and node trees built from the caller's input.
    return JSONResponse(status_code=400, content=error_body("invalid_request", str(exc)))


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": e.get("msg", "")}
              for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse(status_code=400, content=error_body("invalid_request", summary, errors=errors))


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code,
                                                                               "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return JSONResponse(status_code=exc.status_code, headers=headers or None,
                        content=error_body(kind, str(exc.detail)))


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations on ``app`` (called once by the app factory)."""
    app.add_exception_handler(LwM2MError, _protocol_error)
    app.add_exception_handler(ApiError, _api_error)
    for cls in (PathError, ValueTypeError, NodeError):
        app.add_exception_handler(cls, _value_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
