"""The cheaper path of Register and Update through aiocoap: no repr of the request, no
block-wise wrapper without Block options, duplicate answers kept encoded; and what still takes
the full path (Block1, mounted resources) keeps working."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from typing import Any

from aiocoap import Code, Message
from aiocoap.numbers.types import Type
from aiocoap.resource import Resource
from aiocoap.transports.udp6 import UDP6EndpointAddress

from lwm2m_server.coap.datagrams import DRAIN
from lwm2m_server.coap.endpoint import GC_YOUNG_THRESHOLD, tune_garbage_collector
from lwm2m_server.store.repository import MemoryStore
from tests.protocol.conftest import running
from tests.support.raw_coap import RawPeer, request


async def test_register_and_update_build_no_repr_of_the_request_or_its_address(server, monkeypatch) -> None:
    reprs: list[str] = []
    for cls in (Message, UDP6EndpointAddress):
        original = cls.__repr__
        monkeypatch.setattr(cls, "__repr__", lambda self, original=original: reprs.append("r") or original(self))
    peer = await RawPeer.open()
    try:
        created = await peer.ask(request(query=["ep=hot-1", "lt=60"], payload=b"</3/0>"), server.coap_port)
        assert created is not None and created.code == Code.CREATED
        changed = await peer.ask(request(path=tuple(created.opt.location_path)), server.coap_port)
        assert changed is not None and changed.code == Code.CHANGED
    finally:
        peer.close()
    assert reprs == []


async def test_the_answer_kept_for_duplicates_is_the_encoded_datagram(server) -> None:
    peer = await RawPeer.open()
    try:
        msg = request(query=["ep=hot-2", "lt=60"], payload=b"</3/0>")
        first = await peer.ask(msg, server.coap_port)
        assert first is not None and first.code == Code.CREATED
        manager = server._endpoint.context.request_interfaces[0].token_interface
        kept = [v for (remote, mid), v in manager._recent_messages._entries.items() if mid == msg.mid]
        assert len(kept) == 1 and isinstance(kept[0][1], bytes)
        again = await peer.ask(msg, server.coap_port)  # a retransmission: the same bytes again
        assert again is not None
        assert (again.code, again.mtype, again.mid, again.token, again.opt.location_path) == (
            first.code, first.mtype, first.mid, first.token, first.opt.location_path)
    finally:
        peer.close()


async def test_a_block1_register_still_takes_the_block_wise_path(server) -> None:
    payload = b",".join(f"</{3300 + i}/0>".encode() for i in range(40))  # > one 64-byte block
    peer = await RawPeer.open()
    try:
        answer = None
        for num, start in enumerate(range(0, len(payload), 64)):
            chunk = payload[start:start + 64]
            more = start + 64 < len(payload)
            answer = await peer.ask(request(query=["ep=hot-3", "lt=60"], payload=chunk,
                                            block1=(num, more, 2)), server.coap_port)
            assert answer is not None
            assert answer.code == (Code.CONTINUE if more else Code.CREATED), answer
        assert answer is not None and answer.opt.block1 is not None
    finally:
        peer.close()
    reg = server.registrations.get("hot-3")
    assert reg is not None and len(reg.objects) == 40


async def test_a_mounted_resource_is_rendered_by_its_own_path(server) -> None:
    class Echo(Resource):
        async def render_get(self, req: Message) -> Message:
            return Message(code=Code.CONTENT, payload=b"x" * 3000)  # more than one message holds

    server.mount_coap("echo", Echo())
    peer = await RawPeer.open()
    try:
        answer = await peer.ask(request(code=Code.GET, path=("echo",)), server.coap_port)
    finally:
        peer.close()
    assert answer is not None and answer.code == Code.CONTENT
    assert answer.opt.block2 is not None and answer.opt.block2.more  # block-wise, first block


def test_the_collector_threshold_is_raised_never_lowered(server: Any) -> None:
    saved = gc.get_threshold()
    try:
        assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD  # the running server raised it
        gc.set_threshold(50_000, *saved[1:])
        tune_garbage_collector()
        assert gc.get_threshold()[0] == 50_000
        gc.set_threshold(700, *saved[1:])
        tune_garbage_collector()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    finally:
        gc.set_threshold(*saved)


async def test_a_served_request_leaves_no_garbage_for_the_cycle_collector(server) -> None:
    peer = await RawPeer.open()
    gc.collect()
    gc.disable()
    try:
        for i in range(20):
            created = await peer.ask(request(query=[f"ep=cyc-{i}", "lt=60"], payload=b"</3/0>"),
                                     server.coap_port)
            assert created is not None and created.code == Code.CREATED
            changed = await peer.ask(request(path=tuple(created.opt.location_path)), server.coap_port)
            assert changed is not None and changed.code == Code.CHANGED
        await server.store.flush()
        unreachable = gc.collect()
    finally:
        gc.enable()
        peer.close()
    # aiocoap alone leaves about twenty objects per request (its pipe, the closures around it,
    # the request message and its options): 800 for these 40 requests.
    assert unreachable < 40, unreachable


async def test_datagrams_waiting_together_are_all_served(server) -> None:
    peer = await RawPeer.open()
    try:
        msgs = [request(query=[f"ep=burst-{i}", "lt=60"], payload=b"</3/0>") for i in range(3 * DRAIN)]
        for m in msgs:  # back to back: several wait in the socket when the server reads
            peer.send(m, server.coap_port)
        answers = [await asyncio.wait_for(peer.answers.get(), 5) for _ in msgs]
    finally:
        peer.close()
    assert sorted(a.mid for a in answers) == sorted(m.mid for m in msgs)
    assert all(a.code == Code.CREATED for a in answers)
    assert all(server.registrations.get(f"burst-{i}") is not None for i in range(3 * DRAIN))


class SlowCommitStore(MemoryStore):
    """A store whose commits take 0.3 s (a busy PostgreSQL)."""

    async def save_registration(self, reg: Any) -> None:
        await asyncio.sleep(0.3)
        await super().save_registration(reg)


async def test_an_answer_ready_within_half_a_second_is_piggybacked(sqlite_url) -> None:
    async with running(sqlite_url, store=SlowCommitStore()) as srv:
        peer = await RawPeer.open()
        try:
            msg = request(query=["ep=slow-1", "lt=60"], payload=b"</3/0>")
            peer.send(msg, srv.coap_port)
            first = await asyncio.wait_for(peer.answers.get(), 2)
        finally:
            peer.close()
    # aiocoap's own 0.1 s would have sent an empty ACK first and the 2.01 separately.
    assert (first.mtype, first.code, first.mid) == (Type.ACK, Code.CREATED, msg.mid)
    assert first.opt.location_path[0] == "rd"


async def test_a_request_superseded_before_it_ran_leaves_no_unawaited_coroutine(server) -> None:
    peer = await RawPeer.open()
    token = os.urandom(4)
    first = request(query=["ep=tok-1", "lt=60"], payload=b"</3/0>")
    second = request(query=["ep=tok-2", "lt=60"], payload=b"</3/0>")
    first.token = second.token = token  # the second replaces the first (same token and peer)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            peer.send(first, server.coap_port)  # both read in one batch: the first never starts
            peer.send(second, server.coap_port)
            answer = await asyncio.wait_for(peer.answers.get(), 5)
            while answer.mid != second.mid:  # the first may have been answered when read alone
                answer = await asyncio.wait_for(peer.answers.get(), 5)
            gc.collect()
    finally:
        peer.close()
    assert answer.code == Code.CREATED
    assert not [w for w in caught if "never awaited" in str(w.message)]
