"""Block1 registrations: bounded by LWM2M_MAX_PAYLOAD (4.13 + Size1 at once), gaps answer 4.08."""

from __future__ import annotations

import logging

import pytest
from aiocoap import Code
from aiocoap.optiontypes import BlockOption

from lwm2m_server.coap.block1 import BoundedBlock1Spool
from tests.support.raw_coap import RawPeer, request

SZX = 6  # 1 KiB blocks


def block(number: int, more: bool, payload: bytes, ep: str = "blocky", **opts):
    msg = request(query=[f"ep={ep}", "lt=60"], payload=payload, **opts)
    msg.opt.block1 = BlockOption.BlockwiseTuple(number, more, SZX)
    return msg


@pytest.fixture
async def peer():
    p = await RawPeer.open()
    yield p
    p.close()


def body(n: int) -> bytes:
    links = ",".join(f"</{o}/0>" for o in range(3000, 3000 + n)).encode()
    return links


async def test_blockwise_register_within_the_limit_is_assembled(server, peer) -> None:
    data = body(900)  # about 8 KiB
    chunks = [data[i:i + 1024] for i in range(0, len(data), 1024)]
    for i, chunk in enumerate(chunks[:-1]):
        answer = await peer.ask(block(i, True, chunk), server.coap_port)
        assert answer.code == Code.CONTINUE and answer.opt.block1.block_number == i
    answer = await peer.ask(block(len(chunks) - 1, False, chunks[-1]), server.coap_port)
    assert answer.code == Code.CREATED, answer.payload
    assert len(server.registrations.get("blocky").objects) == 900


async def test_3000_blocks_get_4_13_with_size1_as_soon_as_the_limit_passes(server, peer, caplog) -> None:
    limit = server.settings.max_payload
    answers = []
    for i in range(3000):
        answer = await peer.ask(block(i, True, b"x" * 1024), server.coap_port)
        answers.append(answer.code)
        if answer.code != Code.CONTINUE:
            break
    assert answers[-1] == Code.REQUEST_ENTITY_TOO_LARGE
    assert len(answers) == limit // 1024 + 1  # the first block past the limit
    assert answer.opt.size1 == limit
    assert server.registrations.get("blocky") is None
    # the partial body is gone: the next block is not a continuation
    assert (await peer.ask(block(len(answers), True, b"x" * 1024), server.coap_port)).code \
        == Code.REQUEST_ENTITY_INCOMPLETE


async def test_an_announced_size1_over_the_limit_is_refused_at_block_0(server, peer) -> None:
    answer = await peer.ask(block(0, True, b"x" * 1024, size1=10 * 1024 * 1024), server.coap_port)
    assert answer.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert answer.opt.size1 == server.settings.max_payload


async def test_a_gap_in_the_block_sequence_answers_4_08_without_a_traceback(server, peer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await peer.ask(block(0, True, b"</3/0>,</1/0>,".ljust(1024, b" ")),
                           server.coap_port)).code == Code.CONTINUE
    answer = await peer.ask(block(2, False, b"</4/0>"), server.coap_port)
    assert answer.code == Code.REQUEST_ENTITY_INCOMPLETE
    assert b"start again with block 0" in answer.payload
    no_start = await peer.ask(block(5, True, b"y" * 1024, ep="other"), server.coap_port)
    assert no_start.code == Code.REQUEST_ENTITY_INCOMPLETE
    assert not any(r.exc_info for r in caplog.records)
    assert server.registrations.list() == []


def test_the_spool_bounds_the_bodies_in_progress_and_their_bytes() -> None:
    class Remote:
        def __init__(self, n: int) -> None:
            self.blockwise_key = ("peer", n)

    spool = BoundedBlock1Spool(64 * 1024, max_assemblies=10, max_total=20 * 1024)
    for n in range(50):
        msg = block(0, True, b"z" * 1024, ep=f"e{n}")
        msg.remote = Remote(n)
        with pytest.raises(Exception) as e:
            spool.feed_and_take(msg)
        assert type(e.value).__name__ == "ContinueException"
        assert len(spool) <= 10 and spool.buffered <= 20 * 1024
