"""A simulated device resolves the server's address once per socket, not once per Block2 request.

Real UDP on 127.0.0.1: a /fw server (the production ``FwResource``) serves a 5-block file, and
a device socket downloads it while the event loop's ``getaddrinfo`` counts the lookups aiocoap
makes for requests built from a URI.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path as FsPath
from typing import Any

import aiocoap
import aiocoap.resource
import pytest

from lwm2m_server.coap.fw import FwResource
from lwm2m_server.sim.device import _cache_resolution, _exclusive_udp_context
from lwm2m_server.sim.transfer import Faults, fetch_package

SIZE = 5 * 1024 - 100  # five 1024-byte blocks


async def _fw_server(folder: FsPath, data: bytes) -> tuple[aiocoap.Context, str]:
    sha = hashlib.sha256(data).hexdigest()
    (folder / sha).write_bytes(data)
    site = aiocoap.resource.Site()
    site.add_resource(["fw"], FwResource(lambda s: folder / s))
    ctx = await _exclusive_udp_context(site, "test.fw")
    port = ctx.request_interfaces[0].token_interface.message_interface.transport \
        .get_extra_info("socket").getsockname()[1]  # type: ignore[attr-defined]
    return ctx, f"coap://127.0.0.1:{port}/fw/{sha}"


async def _download_counting_lookups(tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch,
                                     cached: bool) -> int:
    data = os.urandom(SIZE)
    server, uri = await _fw_server(tmp_path, data)
    client = await _exclusive_udp_context(aiocoap.resource.Site(), "test.device")
    if cached:
        _cache_resolution(client.request_interfaces[0].token_interface.message_interface)  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    original = loop.getaddrinfo
    calls: list[Any] = []

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[:2])
        return await original(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    try:
        got = await fetch_package(uri, client, 1 << 20, Faults())
        again = await fetch_package(uri, client, 1 << 20, Faults())
    finally:
        monkeypatch.undo()
        await client.shutdown()
        await server.shutdown()
    assert got == data and again == data
    return len(calls)


async def test_device_socket_looks_the_server_up_once_for_two_block2_downloads(
        tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = await _download_counting_lookups(tmp_path, monkeypatch, cached=True)
    assert lookups == 1


async def test_plain_aiocoap_socket_looks_the_server_up_for_every_block(
        tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the cache saves: without it, every block request is a lookup (10 blocks here).
    lookups = await _download_counting_lookups(tmp_path, monkeypatch, cached=False)
    assert lookups == 10
