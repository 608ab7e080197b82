"""Webhook URLs: internal targets refused unless the operator allows them; credentials never shown."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from lwm2m_server.events import EventBus, new_event
from lwm2m_server.rollout.webhooks import WebhookDispatcher, create_webhook, pinned
from tests.api.conftest import bearer

INTERNAL = ["http://127.0.0.1:8080/hook", "http://127.1/hook", "http://2130706433/hook",
            "http://0x7f000001/hook", "http://0.0.0.0/hook", "http://localhost:9000/hook",
            "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://10.1.2.3/hook",
            "http://192.168.0.10/hook", "http://172.16.5.5/hook", "http://169.254.169.254/latest",
            "http://[fe80::1]/hook", "http://100.64.0.1/hook", "http://[fd00::1]/hook",
            "http://[::]/hook", "http://224.0.0.1/hook"]


@contextlib.asynccontextmanager
async def receiver(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[int, list[bytes]]]:
    """An HTTP(S) server on 127.0.0.1 that answers 200 to anything: its port and the requests
    it got (the first 4,096 bytes of each)."""
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(4096))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1], hits
    finally:
        server.close()
        await server.wait_closed()


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
    async with receiver() as (port, hits):
        row, _ = create_webhook(engine, f"http://127.0.0.1:{port}/hook", allow_private=True)
        event = new_event("deployment", None, state="running")
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


def test_pinned_urls_keep_the_name_for_host_and_tls_and_connect_to_the_checked_address() -> None:
    url, host, ext = pinned("https://alice:pw@hooks.example.com:8443/x?y=1",
                            ["2001:db8::7", "93.184.215.14"])
    assert url == "https://alice:pw@93.184.215.14:8443/x?y=1"  # IPv4 first
    assert host == {"Host": "hooks.example.com:8443"}
    assert ext == {"sni_hostname": "hooks.example.com"}
    url, host, ext = pinned("http://hooks.example.com/x", ["2001:db8::7"])
    assert (url, host, ext) == ("http://[2001:db8::7]/x", {"Host": "hooks.example.com"}, {})
    for literal in ("http://93.184.215.14/x", "http://[2001:db8::7]:81/x"):
        assert pinned(literal, ["93.184.215.14"]) == (literal, {}, {})
    assert pinned("http://hooks.example.com/x", []) == ("http://hooks.example.com/x", {}, {})


async def test_delivery_connects_to_the_address_it_checked_not_to_a_new_lookup(
        engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is checked, then resolved again by the HTTP client to somewhere
    else. Here the check's resolver (standing in for DNS) says 127.0.0.1 and the name resolves
    nowhere for anyone else: the POST arrives only because it goes to the checked address."""
    from lwm2m_server.rollout import webhooks

    name = "receiver.invalid"  # RFC 2606: never resolves
    resolved: list[str] = []

    def resolve(host: str, _port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]
    monkeypatch.setattr(webhooks, "_resolve", resolve)
    monkeypatch.setattr(webhooks, "internal_address", lambda ip: False)  # "a public address"
    async with receiver() as (port, requests):
        row, _ = create_webhook(engine, f"http://{name}:{port}/hook")
        dispatcher = WebhookDispatcher(engine, EventBus(), attempts=1, backoff=0.01)
        await dispatcher.start()
        assert await dispatcher.deliver(row, new_event("deployment", None, state="running"))
        await dispatcher.stop()
    assert resolved == [name, name]  # at creation and at delivery
    head = requests[0].split(b"\r\n\r\n", 1)[0].lower()
    assert f"host: {name}:{port}".encode() in head.split(b"\r\n")


def _certificate(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files in ``folder``."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_delivery_to_the_checked_address_sends_the_name_for_tls(
        engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pinned to an address, an https delivery still names the host in TLS: the receiver's
    certificate (for the name only) is accepted, and the receiver sees the name as SNI."""
    from lwm2m_server.rollout import webhooks

    name = "receiver.invalid"
    cert, key = _certificate(name, tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_tls.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)  # type: ignore[assignment]
    monkeypatch.setattr(webhooks, "_resolve", lambda host, _port: ["127.0.0.1"])
    monkeypatch.setattr(webhooks, "internal_address", lambda ip: False)
    async with receiver(server_tls) as (port, hits):
        row, _ = create_webhook(engine, f"https://{name}:{port}/hook")
        dispatcher = WebhookDispatcher(engine, EventBus(), attempts=1, backoff=0.01)
        try:
            await dispatcher.start()
            await dispatcher._client.aclose()  # trust the test certificate, nothing else changes
            dispatcher._client = httpx.AsyncClient(
                verify=ssl.create_default_context(cafile=str(cert)), follow_redirects=False)
            assert await dispatcher.deliver(row, new_event("deployment", None, state="running"))
        finally:
            await dispatcher.stop()
    assert sni == [name] and len(hits) == 1
