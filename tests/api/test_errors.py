"""The one translation of protocol and API errors to HTTP codes and JSON bodies."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.engine import Engine

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import (
    DeviceError,
    DeviceNotFound,
    DeviceOffline,
    DeviceTimeout,
    InvalidRequest,
    LwM2MError,
    Queued,
)

CASES: list[tuple[Exception, int, dict[str, object]]] = [
    (DeviceNotFound("no device 'x'"), 404, {"error": "device_not_found"}),
    (DeviceOffline("device 'x' is offline"), 409, {"error": "device_offline"}),
    (DeviceTimeout("no answer"), 504, {"error": "device_timeout"}),
    (DeviceError("answered 4.04", coap_code="4.04"), 502, {"error": "device_error", "coap_code": "4.04"}),
    (DeviceError("undecodable payload"), 502, {"error": "device_error"}),
    (InvalidRequest("bad path"), 400, {"error": "invalid_request"}),
    (LwM2MError("something else"), 500, {"error": "lwm2m_error"}),
    (ValueError("not mapped"), 500, {}),
]


@pytest.fixture
async def raising(engine: Engine) -> httpx.AsyncClient:
    app = create_app(Settings(), engine=engine)

    @app.get("/boom/{i}")
    async def boom(i: int) -> None:
        raise CASES[i][0]

    @app.get("/queued")
    async def queued() -> None:
        raise Queued("q-123")

    @app.get("/path/{text}")
    async def path(text: str) -> None:
        Path.parse(text.replace("_", "/"))

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://api")


@pytest.mark.parametrize("i", range(len(CASES)))
async def test_each_error_has_its_status_and_a_json_body(raising: httpx.AsyncClient, i: int) -> None:
    exc, status, fields = CASES[i]
    r = await raising.get(f"/boom/{i}")
    assert r.status_code == status
    if fields:
        body = r.json()
        assert body["detail"] == str(exc)
        for k, v in fields.items():
            assert body[k] == v
        assert ("coap_code" in body) == ("coap_code" in fields)


async def test_queued_is_202_with_the_request_id_and_where_to_poll(raising: httpx.AsyncClient) -> None:
    r = await raising.get("/queued")
    assert r.status_code == 202
    assert r.json()["request_id"] == "q-123" and r.json()["state"] == "pending"
    assert r.headers["location"] == r.json()["poll"] == "/api/v1/requests/q-123"


async def test_a_bad_path_anywhere_is_a_400(raising: httpx.AsyncClient) -> None:
    r = await raising.get("/path/3_x")
    assert r.status_code == 400 and "not a number" in r.json()["detail"]


async def test_wrong_method_is_a_json_405(raising: httpx.AsyncClient) -> None:
    r = await raising.delete("/healthz")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
