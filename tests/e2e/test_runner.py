"""The Runner's start-to-stop cycle: socket options, graceful stop with an open event stream,
restart keeping registrations."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from lwm2m_server.runner import Runner, RunnerError, bind_http_socket
from tests.support.lwm2m_client import LwM2MTestClient

from .conftest import e2e_settings, start_stack, stop_stack


def test_http_socket_disables_nagle_so_small_answers_are_not_delayed() -> None:
    sock = bind_http_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_unknown_http_host_is_a_clear_start_error() -> None:
    with pytest.raises(RunnerError, match="HTTP host"):
        bind_http_socket("no-such-host.invalid", 0)


async def test_stop_ends_open_event_streams_and_closes_both_ports(tmp_path: Path) -> None:
    stack = await start_stack(f"sqlite:///{tmp_path / 'r.db'}")
    port = stack.runner.http_port
    async with stack.http.stream("GET", "/api/v1/events/stream", headers=stack.auth("read")) as s:
        lines = s.aiter_lines()
        assert await anext(lines) == ": connected"
        async with asyncio.timeout(8):
            await stack.runner.stop()
            rest = [line async for line in lines]
    assert all(not line or line.startswith(":") for line in rest)
    await stack.http.aclose()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"http://127.0.0.1:{port}/healthz")
    await stack.runner.stop()  # twice is fine


async def test_restart_keeps_a_registration_whose_lifetime_has_not_passed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keep.db'}"
    stack = await start_stack(db)
    client = LwM2MTestClient("keeper", {"/3/0/0": "ACME"}, lifetime=300)
    await client.start()
    try:
        await client.register(stack.coap_port)
        await stop_stack(stack)
        runner = Runner(e2e_settings(db))
        await runner.start()
        try:
            reg = runner.server.registrations.get("keeper")
            assert reg is not None and reg.online and reg.lifetime == 300
        finally:
            await runner.stop()
    finally:
        await client.stop()
