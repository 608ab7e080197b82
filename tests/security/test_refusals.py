"""What the server refuses, and that a refusal changes nothing: wrong key, unknown identity,
identity/endpoint mismatch, plain CoAP for an endpoint with credentials, replayed and garbage
DTLS records. Each is logged once with its reason; a legitimate DTLS device keeps being served."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiocoap
import pytest

from lwm2m_server.sim.dtls import DTLS_ERRORS, add_dtls_client, set_psk

from .conftest import KEY, SecureEnv, eventually

# What a client sees when the server refuses its handshake: an alert, or no answer at all.
REFUSED = (asyncio.TimeoutError, aiocoap.error.Error, *DTLS_ERRORS)


async def client(uri: str | None = None, identity: bytes = b"", key: bytes = b"") -> aiocoap.Context:
    """A bare CoAP client (plain, or DTLS-PSK for ``uri``)."""
    ctx = await aiocoap.Context.create_client_context()
    if uri is not None:
        await add_dtls_client(ctx, lambda: True)
        set_psk(ctx, uri, identity, key)
    return ctx


async def register(ctx: aiocoap.Context, uri: str, endpoint: str, timeout: float = 8.0) -> Any:
    msg = aiocoap.Message(code=aiocoap.POST, uri=f"{uri}/rd", payload=b"</1/0>,</3/0>",
                          content_format=40)
    msg.opt.uri_query = (f"ep={endpoint}", "lt=60", "lwm2m=1.1")
    return await asyncio.wait_for(ctx.request(msg).response, timeout)


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


async def nothing_stored(senv: SecureEnv, endpoint: str) -> None:
    assert senv.server.registrations.get(endpoint) is None
    assert not senv.kinds("registered", endpoint)
    assert all(r.endpoint != endpoint for r in await senv.server.store.load_registrations())


@pytest.fixture
async def bystander(senv: SecureEnv) -> Any:
    """A legitimate DTLS device that must keep being served through every attack."""
    senv.provision("good-1", "good-1-id")
    dev = await senv.device("good-1", psk_identity="good-1-id", psk_key=KEY)

    async def still_served() -> None:
        r = await senv.api.get("/api/v1/devices/good-1/data/3/0/3")
        assert r.status_code == 200 and r.json()["values"]["/3/0/3"] == dev.firmware_version, r.text
    return still_served


async def test_wrong_key_fails_the_handshake_logged_once_nothing_stored(
        senv: SecureEnv, bystander: Any, caplog: pytest.LogCaptureFixture) -> None:
    senv.provision("victim", "victim-id")
    ctx = await client(senv.coaps_uri, b"victim-id", bytes(16))
    try:
        with pytest.raises(REFUSED):
            await register(ctx, senv.coaps_uri, "victim")
    finally:
        await ctx.shutdown()
    await eventually(lambda: senv.server._endpoint.dtls.stats.failed_handshakes == 1)
    (line,) = warnings(caplog, "victim-id")
    assert "wrong key" in line
    await nothing_stored(senv, "victim")
    await bystander()


async def test_unknown_identity_fails_the_handshake_logged_once(
        senv: SecureEnv, bystander: Any, caplog: pytest.LogCaptureFixture) -> None:
    ctx = await client(senv.coaps_uri, b"nobody-id", KEY)
    try:
        with pytest.raises(REFUSED):
            await register(ctx, senv.coaps_uri, "nobody")
    finally:
        await ctx.shutdown()
    await eventually(lambda: senv.server._endpoint.dtls.stats.failed_handshakes == 1)
    (line,) = warnings(caplog, "nobody-id")
    assert "unknown PSK identity" in line
    await nothing_stored(senv, "nobody")
    await bystander()


async def test_identity_may_not_register_or_update_as_another_endpoint(
        senv: SecureEnv, bystander: Any, caplog: pytest.LogCaptureFixture) -> None:
    senv.provision("mallory", "mallory-id")
    ctx = await client(senv.coaps_uri, b"mallory-id", KEY)
    try:
        resp = await register(ctx, senv.coaps_uri, "good-1")
        assert resp.code == aiocoap.FORBIDDEN
        assert b"belongs to endpoint 'mallory', not 'good-1'" in resp.payload
        # Nor Update or De-register good-1's registration by its id.
        rid = senv.server.registrations.get("good-1").registration_id
        for code in (aiocoap.POST, aiocoap.DELETE):
            resp = await asyncio.wait_for(ctx.request(aiocoap.Message(
                code=code, uri=f"{senv.coaps_uri}/rd/{rid}")).response, 8)
            assert resp.code == aiocoap.FORBIDDEN, resp
            assert b"mallory-id" in resp.payload
        # Nor Send data in its name (Send is matched by address: this session is not good-1's).
        resp = await asyncio.wait_for(ctx.request(aiocoap.Message(
            code=aiocoap.POST, uri=f"{senv.coaps_uri}/dp", payload=b"\x80",
            content_format=112)).response, 8)
        assert not resp.code.is_successful()
    finally:
        await ctx.shutdown()
    assert senv.server.registrations.get("good-1").security == "psk"
    (line,) = warnings(caplog, "belongs to endpoint 'mallory'")
    assert line.startswith("POST /rd from 127.0.0.1:") and "refused" in line
    assert len(warnings(caplog, "may not Update")) == 1
    assert len(warnings(caplog, "may not De-register")) == 1
    await nothing_stored(senv, "mallory")
    await bystander()


async def test_plain_coap_is_refused_for_an_endpoint_with_credentials(
        senv: SecureEnv, bystander: Any, caplog: pytest.LogCaptureFixture) -> None:
    ctx = await client()
    try:
        # The attack of the issue: a plain Register under a secure device's name.
        resp = await register(ctx, senv.coap_uri, "good-1")
        assert resp.code == aiocoap.FORBIDDEN
        assert b"has credentials: register over DTLS" in resp.payload
        # A plain Update of the DTLS registration (registration ids leak in logs and events).
        rid = senv.server.registrations.get("good-1").registration_id
        resp = await asyncio.wait_for(ctx.request(aiocoap.Message(
            code=aiocoap.POST, uri=f"{senv.coap_uri}/rd/{rid}")).response, 8)
        assert resp.code == aiocoap.FORBIDDEN and b"channel it registered on" in resp.payload
        # An endpoint without credentials still registers over plain CoAP ("optional").
        resp = await register(ctx, senv.coap_uri, "plain-1")
        assert resp.code == aiocoap.CREATED
    finally:
        await ctx.shutdown()
    assert senv.server.registrations.get("plain-1").security == "none"
    reg = senv.server.registrations.get("good-1")
    assert reg.security == "psk" and len(senv.kinds("registered", "good-1")) == 1
    assert len(warnings(caplog, "has credentials: register over DTLS")) == 1
    await bystander()


class _Relay(asyncio.DatagramProtocol):
    """A UDP relay between one client and the server that keeps what the client sent."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.client: tuple[str, int] | None = None
        self.sent: list[bytes] = []
        self.transport: Any = None
        self.upstream: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        self.sent.append(data)
        self.upstream.sendto(data)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.relay.client is not None:
            self.relay.transport.sendto(data, self.relay.client)


async def test_replayed_and_garbage_records_are_dropped_and_logged_once(
        senv: SecureEnv, bystander: Any, caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    server = ("127.0.0.1", senv.server.coaps_port)
    relay = _Relay(server)
    await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    up_transport, _ = await loop.create_datagram_endpoint(lambda: _Upstream(relay),
                                                          remote_addr=server)
    relay.upstream = up_transport
    relay_uri = f"coaps://127.0.0.1:{relay.transport.get_extra_info('sockname')[1]}"
    senv.provision("replayed", "replayed-id")
    ctx = await client(relay_uri, b"replayed-id", KEY)
    try:
        resp = await register(ctx, relay_uri, "replayed")
        assert resp.code == aiocoap.CREATED
        first = senv.server.registrations.get("replayed")
        # Replay everything the device sent (handshake and the Register record) a few times.
        for _ in range(3):
            for data in relay.sent:
                up_transport.sendto(data)
        # Garbage: an application-data record with a bad MAC on the session, and records
        # from an address that has no session.
        up_transport.sendto(bytes([23, 0xFE, 0xFD]) + os.urandom(60))
        stray_transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                 remote_addr=server)
        for _ in range(20):
            stray_transport.sendto(bytes([23, 0xFE, 0xFD]) + os.urandom(40))
            stray_transport.sendto(os.urandom(30))
        await eventually(lambda: senv.server._endpoint.dtls.stats.dropped_records >= 40)
        await asyncio.sleep(0.5)
        stray_transport.close()
        # The replays registered nothing again: one registration, the same id.
        assert len(senv.kinds("registered", "replayed")) == 1
        assert senv.server.registrations.get("replayed").registration_id == first.registration_id
        # The session still works after the garbage.
        resp = await asyncio.wait_for(ctx.request(aiocoap.Message(
            code=aiocoap.POST, uri=f"{relay_uri}/rd/{first.registration_id}")).response, 8)
        assert resp.code == aiocoap.CHANGED
    finally:
        await ctx.shutdown()
        up_transport.close()
        relay.transport.close()
    assert len(warnings(caplog, "no ClientHello first")) == 1  # 40 records, one line
    await bystander()


async def test_security_required_refuses_every_plain_registration(
        tmp_path: Any, signing_key: Any, example_model_wasm: bytes) -> None:
    from .conftest import start_secure, stop_secure

    env = await start_secure(tmp_path, signing_key, example_model_wasm, security="required")
    try:
        ctx = await client()
        try:
            resp = await register(ctx, env.coap_uri, "anyone")
        finally:
            await ctx.shutdown()
        assert resp.code == aiocoap.FORBIDDEN and b"DTLS only" in resp.payload
        await nothing_stored(env, "anyone")
        env.provision("req-1", "req-1-id")
        await env.device("req-1", psk_identity="req-1-id", psk_key=KEY)
        assert env.server.registrations.get("req-1").security == "psk"
    finally:
        await stop_secure(env)
