"""/healthz, /metrics, OpenAPI and the bootstrap admin token."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings

from .conftest import bearer


async def test_healthz_needs_no_token_and_checks_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "ok"


async def test_metrics_is_prometheus_text_and_counts_http_requests(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/tokens")  # a 401
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE lwm2m_requests_total counter" in r.text
    assert "lwm2m_registered_devices" in r.text
    assert 'lwm2m_http_requests_total{method="GET",status="4xx"}' in r.text


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/tokens" in spec["paths"] and "/healthz" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_bootstrap_admin_token_from_settings_has_every_scope(engine: Engine) -> None:
    secret = "s" * 40
    app = create_app(Settings(admin_token=secret), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        assert (await c.get("/api/v1/tokens", headers=bearer(secret))).status_code == 200
        assert (await c.get("/api/v1/tokens", headers=bearer(secret + "x"))).status_code == 401
