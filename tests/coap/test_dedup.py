"""Duplicate detection stays bounded in entries and time, and still answers a retransmission."""

from __future__ import annotations

import time

from aiocoap import Code

from lwm2m_server.coap.dedup import RecentMessages
from tests.support.raw_coap import RawPeer, request


def test_recent_messages_keep_at_most_max_entries_oldest_first() -> None:
    recent = RecentMessages(lifetime=100, max_entries=10)
    for i in range(30):
        recent[("peer", i)] = None
    assert len(recent) == 10
    assert ("peer", 19) not in recent and ("peer", 29) in recent
    recent[("peer", 29)] = "answer"
    assert recent[("peer", 29)] == "answer" and len(recent) == 10


def test_recent_messages_forget_after_their_lifetime() -> None:
    recent = RecentMessages(lifetime=0.05, max_entries=10)
    recent[("peer", 1)] = "answer"
    assert ("peer", 1) in recent
    time.sleep(0.1)
    assert ("peer", 1) not in recent and len(recent) == 0
    assert recent.pop(("peer", 1)) is None  # a late pop of a forgotten entry is harmless


async def test_a_retransmitted_register_gets_the_same_answer_and_registers_once(server) -> None:
    peer = await RawPeer.open()
    try:
        msg = request(query=["ep=dup", "lt=60"], payload=b"</3/0>")
        first = await peer.ask(msg, server.coap_port)
        again = await peer.ask(msg, server.coap_port)  # same message id: a retransmission
        assert first.code == again.code == Code.CREATED
        assert first.opt.location_path == again.opt.location_path
    finally:
        peer.close()
