"""A simulated device's block GETs without aiocoap's requests (sim/rawget.py), against a scripted
UDP server on 127.0.0.1: piggybacked and separate answers, retransmission, Reset, deadline;
and a real download from the server's /fw that never reaches aiocoap on either side."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lwm2m_server.coap.rawmsg import (ACK, CON, CONTENT, NON, OPT_BLOCK2, OPT_URI_PATH,
                                      RawMessage, encode_message, parse_message)
from lwm2m_server.sim.device import _exclusive_udp_context
from lwm2m_server.sim.rawget import RawGets, RawResetError
from lwm2m_server.sim.transfer import Faults, fetch_package
from tests.support.fw import serving_fw

Script = Callable[[RawMessage, "Scripted"], None]


class Scripted(asyncio.DatagramProtocol):
    """A UDP peer that hands every request it receives to ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[RawMessage] = []
        self.transport: Any = None
        self.addr: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        msg = parse_message(data)
        assert msg is not None
        self.requests.append(msg)
        self.addr = addr
        self.script(msg, self)

    def send(self, data: bytes) -> None:
        self.transport.sendto(data, self.addr)


@pytest.fixture
async def client():
    """RawGets on an aiocoap socket, wired as a simulated device wires it."""
    ctx = await _exclusive_udp_context(None, "test.rawget")
    mi = ctx.request_interfaces[0].token_interface.message_interface
    raw = RawGets(mi)
    orig = mi.datagram_msg_received
    to_aiocoap: list[bytes] = []

    def receive(data: bytes, ancdata: Any, flags: int, address: Any) -> None:
        if not raw.take(data, address):
            to_aiocoap.append(data)
            orig(data, ancdata, flags, address)
    mi.datagram_msg_received = receive
    try:
        yield raw, to_aiocoap
    finally:
        await ctx.shutdown()


@contextlib.asynccontextmanager
async def serve(script: Script) -> AsyncIterator[tuple[Scripted, int]]:
    """A scripted peer on a free port, closed on leaving: (the peer, its port)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: Scripted(script),
                                                           local_addr=("127.0.0.1", 0))
    try:
        yield proto, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def content(req: RawMessage, payload: bytes, mtype: int = ACK, mid: int | None = None) -> bytes:
    return encode_message(mtype, CONTENT, req.mid if mid is None else mid, req.token,
                          [(OPT_BLOCK2, bytes([0x06]))], payload)


async def test_a_piggybacked_answer_ends_the_exchange(client) -> None:  # type: ignore[no-untyped-def]
    raw, to_aiocoap = client
    async with serve(lambda req, p: p.send(content(req, b"block"))) as (peer, port):
        got = await raw.get("127.0.0.1", port, ("fw", "x"), 0x06, timeout=2)
    assert got.code == CONTENT and got.payload == b"block"
    req = peer.requests[0]
    assert req.mtype == CON and req.code == 1 and len(req.token) == 4
    assert req.options == [(OPT_URI_PATH, b"fw"), (OPT_URI_PATH, b"x"), (OPT_BLOCK2, b"\x06")]
    assert to_aiocoap == []


async def test_a_separate_confirmable_answer_is_acknowledged(client) -> None:  # type: ignore[no-untyped-def]
    raw, _ = client

    def script(req: RawMessage, p: Scripted) -> None:
        if req.code == 1:
            p.send(encode_message(ACK, 0, req.mid, b"", []))  # empty ACK: the answer comes later
            asyncio.get_running_loop().call_later(
                0.2, p.send, content(req, b"late", mtype=CON, mid=(req.mid + 100) & 0xFFFF))
    async with serve(script) as (peer, port):
        got = await raw.get("127.0.0.1", port, ("a",), None, timeout=3)
        await asyncio.sleep(0.1)
    assert got.payload == b"late" and got.mtype == CON
    ack = peer.requests[-1]
    assert ack.mtype == ACK and ack.code == 0 and ack.mid == (peer.requests[0].mid + 100) & 0xFFFF
    assert len(peer.requests) == 2  # the request once (its ACK stopped retransmissions), our ACK


async def test_a_lost_request_is_retransmitted_with_the_same_message_id(client) -> None:  # type: ignore[no-untyped-def]
    raw, _ = client

    def script(req: RawMessage, p: Scripted) -> None:
        if len(p.requests) > 1:  # the first one is "lost"
            p.send(content(req, b"again"))
    async with serve(script) as (peer, port):
        got = await raw.get("127.0.0.1", port, ("a",), None, timeout=5)
    assert got.payload == b"again"
    first, second = peer.requests
    assert (first.mid, first.token) == (second.mid, second.token)


async def test_a_reset_and_silence_end_in_errors(client) -> None:  # type: ignore[no-untyped-def]
    raw, _ = client
    async with serve(lambda req, p: p.send(encode_message(3, 0, req.mid, b"", []))) as (_, port):
        with pytest.raises(RawResetError):  # a Reset
            await raw.get("127.0.0.1", port, ("a",), None, timeout=2)
    async with serve(lambda req, p: None) as (_, port):
        with pytest.raises(TimeoutError):
            await raw.get("127.0.0.1", port, ("a",), None, timeout=0.3)


async def test_answers_of_other_exchanges_go_to_aiocoap(client) -> None:  # type: ignore[no-untyped-def]
    raw, to_aiocoap = client

    def script(req: RawMessage, p: Scripted) -> None:
        p.send(content(req, b"x", mtype=NON, mid=7)[:4] + os.urandom(4))  # not our token
        p.send(content(req, b"mine"))
    async with serve(script) as (_, port):
        got = await raw.get("127.0.0.1", port, ("a",), None, timeout=2)
        await asyncio.sleep(0.05)
    assert got.payload == b"mine" and len(to_aiocoap) == 1


async def test_a_download_from_the_server_never_reaches_aiocoap_on_either_side(tmp_path, client) -> None:  # type: ignore[no-untyped-def]
    raw, to_aiocoap = client
    data = os.urandom(10_000)
    async with serving_fw(tmp_path, data) as (server, resource, sha):
        got = await fetch_package(f"coap://127.0.0.1:{server.coap_port}/fw/{sha}", None,  # type: ignore[arg-type]
                                  1 << 20, Faults(), raw=raw)
    assert got == data
    assert resource.rendered == 0 and to_aiocoap == []


def test_only_plain_coap_uris_to_an_address_take_the_raw_path() -> None:
    from lwm2m_server.sim.transfer import _raw_asker

    raw = RawGets(object())
    assert _raw_asker("coap://127.0.0.1:5683/fw/ab", raw, 1.0) is not None
    assert _raw_asker("coap://[::1]/fw/ab", raw, 1.0) is not None
    for uri in ("coaps://127.0.0.1/fw/ab",          # DTLS: aiocoap's session
                "coap://server.example/fw/ab",     # a host name: aiocoap sends Uri-Host
                "coap://127.0.0.1/fw/ab?x=1"):     # a query
        assert _raw_asker(uri, raw, 1.0) is None, uri
