"""Webhook URLs: internal targets refused unless the operator allows them; credentials never shown."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from lwm2m_server.events import EventBus, new_event
from lwm2m_server.rollout.webhooks import WebhookDispatcher, create_webhook
from tests.api.conftest import bearer

INTERNAL = ["http://127.0.0.1:8080/hook", "http://127.1/hook", "http://2130706433/hook",
            "http://0x7f000001/hook", "http://0.0.0.0/hook", "http://localhost:9000/hook",
            "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://10.1.2.3/hook",
            "http://192.168.0.10/hook", "http://172.16.5.5/hook", "http://169.254.169.254/latest",
            "http://[fe80::1]/hook", "http://100.64.0.1/hook", "http://[fd00::1]/hook",
            "http://[::]/hook", "http://224.0.0.1/hook"]


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_webhook_targets_are_refused_by_default(client, tokens, url) -> None:
    r = await client.post("/api/v1/webhooks", json={"url": url}, headers=bearer(tokens["deploy"]))
    assert r.status_code == 422, r.text
    assert "internal address" in r.json()["detail"]
    assert "LWM2M_WEBHOOK_ALLOW_PRIVATE" in r.json()["detail"]
    assert (await client.get("/api/v1/webhooks", headers=bearer(tokens["deploy"]))).json() == []


async def test_internal_targets_are_allowed_when_the_operator_says_so(engine, tokens) -> None:
    app = create_app(Settings(environment="development", webhook_allow_private=True),
                     server=None, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        r = await c.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"},
                         headers=bearer(tokens["deploy"]))
    assert r.status_code == 201, r.text


async def test_credentials_in_a_webhook_url_are_never_shown_back(client, tokens) -> None:
    url = "https://alice:s3cret-pass@93.184.215.14/hooks/lwm2m"  # a public address, not contacted
    r = await client.post("/api/v1/webhooks", json={"url": url}, headers=bearer(tokens["deploy"]))
    assert r.status_code == 201, r.text
    assert "s3cret" not in r.text and "alice" not in r.text
    assert r.json()["url"] == "https://***@93.184.215.14/hooks/lwm2m"
    listed = await client.get("/api/v1/webhooks", headers=bearer(tokens["deploy"]))
    assert "s3cret" not in listed.text and "alice" not in listed.text
    refused = await client.post("/api/v1/webhooks", json={"url": "http://bob:pw123456@127.0.0.1/x"},
                                headers=bearer(tokens["deploy"]))
    assert refused.status_code == 422 and "pw123456" not in refused.text


async def test_delivery_is_refused_when_the_target_is_internal_and_not_allowed(engine) -> None:
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(1024))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    row, _ = create_webhook(engine, f"http://127.0.0.1:{port}/hook", allow_private=True)
    event = new_event("deployment", None, state="running")
    try:
        refusing = WebhookDispatcher(engine, EventBus(), attempts=2, backoff=0.01)
        await refusing.start()
        assert await refusing.deliver(row, event) is False
        await refusing.stop()
        assert hits == []
        allowing = WebhookDispatcher(engine, EventBus(), attempts=2, backoff=0.01,
                                     allow_private=True)
        await allowing.start()
        assert await allowing.deliver(row, event) is True
        await allowing.stop()
        assert len(hits) == 1
    finally:
        server.close()
        await server.wait_closed()
