"""What reaches the CoAP port before aiocoap sees it: whole datagrams up to the limit, option
values that do not decode, unknown critical options, unparsable datagrams (RFC 7252 §4.2, §5.4)."""

from __future__ import annotations

import logging

import pytest
from aiocoap import Code
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import OpaqueOption

from lwm2m_server.metrics import COAP_REFUSED
from tests.protocol.conftest import running
from tests.support.raw_coap import RawPeer, raw_option_datagram, request


def big_payload(n_objects: int) -> bytes:
    return ",".join(f"</{o}/0>" for o in range(3000, 3000 + n_objects)).encode()


@pytest.fixture
async def peer():
    p = await RawPeer.open()
    yield p
    p.close()


async def test_a_register_datagram_over_4096_bytes_is_read_whole(server, peer) -> None:
    payload = big_payload(700)
    assert 4096 < len(payload) < 16 * 1024
    answer = await peer.ask(request(query=["ep=big-one", "lt=60"], payload=payload),
                            server.coap_port)
    assert answer is not None and answer.code == Code.CREATED, answer
    assert len(server.registrations.get("big-one").objects) == 700


async def test_a_datagram_over_the_limit_is_refused_with_4_13_and_size1(sqlite_url, peer) -> None:
    async with running(sqlite_url, max_datagram=2048) as srv:
        before = COAP_REFUSED.value("too_large")
        answer = await peer.ask(request(query=["ep=too-big", "lt=60"], payload=big_payload(400)),
                                srv.coap_port)
        assert answer is not None and answer.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert answer.mtype == Type.ACK
        assert answer.opt.size1 == srv.settings.max_payload
        assert b"Block1" in answer.payload
        assert srv.registrations.get("too-big") is None
        assert COAP_REFUSED.value("too_large") == before + 1


async def test_an_unknown_critical_option_gets_4_02_and_nothing_registers(server, peer) -> None:
    msg = request(query=["ep=crit", "lt=60"], payload=b"</3/0>")
    msg.opt.add_option(OpaqueOption(2049, b"x"))
    answer = await peer.ask(msg, server.coap_port)
    assert answer is not None and answer.code == Code.BAD_OPTION
    assert b"2049" in answer.payload
    assert server.registrations.get("crit") is None


async def test_an_unknown_elective_option_is_ignored(server, peer) -> None:
    msg = request(query=["ep=elective", "lt=60"], payload=b"</3/0>")
    msg.opt.add_option(OpaqueOption(2048, b"x"))
    answer = await peer.ask(msg, server.coap_port)
    assert answer is not None and answer.code == Code.CREATED


@pytest.mark.parametrize("number", [11, 15])  # Uri-Path, Uri-Query
async def test_invalid_utf8_in_a_string_option_gets_4_02_without_a_traceback(
        server, peer, caplog, number) -> None:
    caplog.set_level(logging.DEBUG)
    before = COAP_REFUSED.value("bad_option_value")
    for _ in range(50):
        answer = await peer.ask(raw_option_datagram(number, b"r\xff\xfed"), server.coap_port)
        assert answer is not None and answer.code == Code.BAD_OPTION and answer.mtype == Type.ACK
        assert b"UTF-8" in answer.payload
    assert COAP_REFUSED.value("bad_option_value") == before + 50
    assert not any(r.exc_info for r in caplog.records)
    assert not any("Traceback" in r.getMessage() for r in caplog.records)
    lines = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(lines) == 1  # rate-limited: the first, then one a minute


async def test_an_unparsable_confirmable_datagram_gets_a_reset_and_is_counted(server, peer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    before = COAP_REFUSED.value("unparsable")
    # Option delta nibble 15 is reserved for the payload marker: a message format error.
    bad = bytes([0x40, 0x02, 0x12, 0x34, 0xF1, 0x00])
    for _ in range(20):
        answer = await peer.ask(bad, server.coap_port)
        assert answer is not None and answer.mtype == Type.RST and answer.mid == 0x1234
    non = bytes([0x50, 0x02, 0x12, 0x35, 0xF1, 0x00])
    assert await peer.ask(non, server.coap_port, timeout=0.3) is None
    assert COAP_REFUSED.value("unparsable") == before + 21
    assert len([r for r in caplog.records if "unparsable" in r.getMessage()]) == 1
    assert not any(r.levelno >= logging.WARNING for r in caplog.records
                   if r.name.startswith("coap"))


async def test_the_server_still_serves_after_the_abuse(server, peer) -> None:
    for data in (b"\x00", b"\xff" * 40):  # no header to answer: dropped
        assert await peer.ask(data, server.coap_port, timeout=0.2) is None
    assert (await peer.ask(raw_option_datagram(11, b"\xc3\x28"), server.coap_port)).code == Code.BAD_OPTION
    answer = await peer.ask(request(query=["ep=after", "lt=60"], payload=b"</3/0>"),
                            server.coap_port)
    assert answer is not None and answer.code == Code.CREATED


def test_a_library_warning_per_datagram_is_rate_limited() -> None:
    from lwm2m_server.coap.datagrams import RateLimitFilter

    limiter = RateLimitFilter(interval=60)
    records = [logging.LogRecord("coap-server", logging.WARNING, __file__, 1,
                                 "Received a message with code %s and type %s (those don't fit)",
                                 (i, "RST"), None) for i in range(100)]
    passed = [r for r in records if limiter.filter(r)]
    assert len(passed) == 1


async def test_refusals_show_in_metrics(server, peer) -> None:
    from lwm2m_server.metrics import METRICS

    await peer.ask(raw_option_datagram(11, b"\xff"), server.coap_port)
    text = METRICS.render()
    assert 'lwm2m_coap_datagrams_refused_total{reason="bad_option_value"}' in text
