"""``GET /healthz`` (liveness and database check) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from .. import __version__
from ..metrics import METRICS, Counter

__all__ = ["router", "HTTP_REQUESTS"]

router = APIRouter(tags=["health"])

HTTP_REQUESTS = METRICS.register(Counter(
    "lwm2m_http_requests_total", "REST API requests answered, by method and status class",
    ("method", "status")))


@router.get("/healthz", summary="Liveness: process, CoAP endpoint and database")
def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    body: dict[str, Any] = {"status": "ok", "version": __version__}
    status = 200
    server = state.server
    if server is not None:
        body["coap_port"] = getattr(server, "coap_port", None)
        try:
            body["registered_devices"] = len(server.registrations)
        except Exception as e:  # noqa: BLE001 - report, do not crash the probe
            body["status"], status = "degraded", 503
            body["registrations"] = f"error: {type(e).__name__}"
    if state.engine is not None:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            body["database"] = "ok"
        except Exception as e:  # noqa: BLE001
            body["status"], status = "degraded", 503
            body["database"] = f"error: {type(e).__name__}"
    return JSONResponse(body, status_code=status)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
def metrics() -> PlainTextResponse:
    return PlainTextResponse(METRICS.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
