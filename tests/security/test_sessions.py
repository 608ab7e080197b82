"""DTLS sessions over time: a device that reboots and handshakes again from the same port, the
session cap, and coaps on IPv6."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiocoap
import pytest

from .conftest import KEY, SecureEnv, eventually
from .test_refusals import client, register


class RawDtls(asyncio.DatagramProtocol):
    """A DTLS-PSK client on a socket we bind ourselves (so a "reboot" can reuse its port)."""

    def __init__(self, identity: bytes) -> None:
        self.identity = identity
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: Any) -> None:
        from DTLSSocket import dtls

        self.transport = transport
        self.dtls = dtls.DTLS(read=self._read, write=self._write, event=self._event,
                              pskId=self.identity, pskStore={self.identity: KEY})
        self.conn = self.dtls.connect("::1", 1234)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.dtls.handleMessage(self.conn, data)

    def _write(self, _addr: Any, data: bytes) -> int:
        self.transport.sendto(data)
        return len(data)

    def _read(self, _addr: Any, data: bytes) -> int:
        self.answers.put_nowait(data)
        return len(data)

    def _event(self, level: int, code: int) -> None:
        if code == 0x01DE and not self.connected.done():
            self.connected.set_result(None)

    async def register(self, endpoint: str, mid: int) -> int:
        """Send a Register; the answer's code byte (0x41 = 2.01)."""
        from bench.dtls_bench import coap_register

        self.dtls.write(self.conn, coap_register(mid, endpoint))
        answer = await asyncio.wait_for(self.answers.get(), 10)
        return answer[1]


async def open_raw(server: tuple[str, int], port: int, identity: bytes) -> tuple[Any, RawDtls]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.connect(server)
    return await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: RawDtls(identity), sock=sock)


async def test_device_rebooting_on_the_same_port_gets_a_new_session(senv: SecureEnv) -> None:
    senv.provision("reboot-1", "reboot-1-id")
    server = ("127.0.0.1", senv.server.coaps_port)
    t1, c1 = await open_raw(server, 0, b"reboot-1-id")
    port = t1.get_extra_info("socket").getsockname()[1]
    await asyncio.wait_for(c1.connected, 10)
    assert await c1.register("reboot-1", 1) == 0x41
    first = senv.server.registrations.get("reboot-1").registration_id
    t1.close()  # power loss: no close_notify; the server still holds the old session
    t2, c2 = await open_raw(server, port, b"reboot-1-id")
    try:
        await asyncio.wait_for(c2.connected, 10)
        assert await c2.register("reboot-1", 2) == 0x41
        reg = senv.server.registrations.get("reboot-1")
        assert reg.registration_id != first and reg.address == ("127.0.0.1", port)
        # The server's requests reach the device through the new session.
        dtls = senv.server._endpoint.dtls
        assert dtls._connections[("127.0.0.1", port)].connected
        assert senv.server.registrations.peer("reboot-1") is dtls._connections[("127.0.0.1", port)]
    finally:
        t2.close()


async def test_session_cap_drops_the_least_recently_active(senv: SecureEnv) -> None:
    dtls = senv.server._endpoint.dtls
    dtls.max_sockets = 2
    senv.provision("cap", "cap-id")
    server = ("127.0.0.1", senv.server.coaps_port)
    opened = []
    try:
        for _ in range(3):
            t, c = await open_raw(server, 0, b"cap-id")
            opened.append(t)
            await asyncio.wait_for(c.connected, 10)
        await eventually(lambda: dtls.stats.evicted_sessions == 1)
        assert len(dtls._connections) == 2
    finally:
        for t in opened:
            t.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_coaps_on_a_dual_stack_bind_serves_ipv6_and_ipv4(tmp_path: Any, signing_key: Any,
                                                              example_model_wasm: bytes) -> None:
    from .conftest import start_secure, stop_secure

    env = await start_secure(tmp_path, signing_key, example_model_wasm, coap_host="::")
    try:
        env.provision("v6", "v6-id")
        env.provision("v4", "v4-id")
        for host, ep in (("[::1]", "v6"), ("127.0.0.1", "v4")):
            uri = f"coaps://{host}:{env.server.coaps_port}"
            ctx = await client(uri, f"{ep}-id".encode(), KEY)
            try:
                resp = await register(ctx, uri, ep)
            finally:
                await ctx.shutdown()
            assert resp.code == aiocoap.CREATED, (host, resp)
            assert env.server.registrations.get(ep).security == "psk"
        assert env.server.registrations.get("v4").address[0] == "127.0.0.1"
        assert env.server.registrations.get("v6").address[0] == "::1"
    finally:
        await stop_secure(env)
