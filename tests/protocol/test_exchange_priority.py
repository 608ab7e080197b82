"""One exchange at a time per device (CoAP NSTART=1): background work gives way to operators,
a request that never left says so, and a caller that gives up ends its exchange."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
from aiocoap import Code

from lwm2m_server.protocol.errors import DeviceTimeout
from lwm2m_server.protocol.requests import ReadRequest
from tests.protocol.conftest import running
from tests.support.raw_coap import RawPeer, next_request, piggybacked, request


async def raw_device(srv, ep: str) -> RawPeer:
    """A registered device that answers nothing unless the test answers for it."""
    peer = await RawPeer.open()
    answer = await peer.ask(request(query=[f"ep={ep}", "lt=300", "lwm2m=1.1"],
                                    payload=b"</1/0>,</3/0>"), srv.coap_port)
    assert answer is not None and answer.code == Code.CREATED
    return peer


async def test_an_operator_read_goes_out_at_once_while_the_background_read_goes_unanswered(
        sqlite_url) -> None:
    async with running(sqlite_url, read_on_register=True, request_timeout=5.0) as srv:
        peer = await raw_device(srv, "mute-bg")
        try:
            await next_request(peer, "/3/0")  # the background read; the device stays silent
            started = time.monotonic()
            op = asyncio.ensure_future(srv.devices.send("mute-bg", ReadRequest("/3/0/0")))
            req = await next_request(peer, "/3/0/0", timeout=1.0)
            assert time.monotonic() - started < 1.0
            peer.send(piggybacked(req, Code.CONTENT, b"ACME", 0), srv.coap_port)
            resp = await op
            assert list(resp.values.values()) == ["ACME"]
        finally:
            peer.close()


async def test_a_request_that_could_not_be_sent_says_so_and_a_timed_out_one_frees_the_device(
        server) -> None:
    peer = await raw_device(server, "mute")
    try:
        first = asyncio.ensure_future(server.devices.send("mute", ReadRequest("/3/0/0"), timeout=2))
        await next_request(peer, "/3/0/0")
        second = asyncio.ensure_future(server.devices.send("mute", ReadRequest("/3/0/1"), timeout=1))
        with pytest.raises(DeviceTimeout, match="was not sent within 1 s: another exchange"):
            await second
        with pytest.raises(DeviceTimeout, match="did not answer within 2 s"):
            await first
        # The abandoned exchange no longer holds the device: the next request leaves at once.
        third = asyncio.ensure_future(server.devices.send("mute", ReadRequest("/3/0/2"), timeout=2))
        req = await next_request(peer, "/3/0/2", timeout=0.5)
        peer.send(piggybacked(req, Code.CONTENT, b"7", 0), server.coap_port)
        assert (await third).values
    finally:
        peer.close()


async def test_cancelled_callers_leave_no_exchange_or_task_behind(sqlite_url, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    peers: list[RawPeer] = []
    async with running(sqlite_url, request_timeout=30.0) as srv:
        for i in range(20):
            peers.append(await raw_device(srv, f"mute-{i}"))
        before = {t for t in asyncio.all_tasks()}
        callers = [asyncio.ensure_future(srv.devices.send(f"mute-{i}", ReadRequest("/3/0")))
                   for i in range(20)]
        for p in peers:
            await next_request(p, "/3/0")
        for c in callers:  # as a SIGTERM does: the callers are cancelled, then the server stops
            c.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await asyncio.sleep(0.1)
        left = [t for t in asyncio.all_tasks() - before if not t.done()
                and t is not asyncio.current_task()]
        assert left == [], left
        manager = srv._endpoint.context.request_interfaces[0].token_interface
        assert not manager._active_exchanges and not manager._backlogs
    for p in peers:
        p.close()
    gc.collect()
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
