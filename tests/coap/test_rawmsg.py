"""Plain /fw block GETs answered straight from the datagram (coap/rawmsg.py), over real UDP:
the same answer aiocoap's path gives, for CON and NON, and everything else left to that path."""

from __future__ import annotations

import os

import pytest
from aiocoap import Code, Message
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import BlockOption

from lwm2m_server.coap.rawmsg import RawGet, encode_answer, parse_get
from tests.support.fw import serving_fw
from tests.support.raw_coap import RawPeer, raw_option_datagram, request


@pytest.fixture
async def fw(tmp_path):  # type: ignore[no-untyped-def]
    data = os.urandom(3000) + b"tail"
    async with serving_fw(tmp_path, data) as (server, resource, sha):
        peer = await RawPeer.open()
        try:
            yield server, peer, resource, data, sha
        finally:
            peer.close()


def fields(msg: Message) -> tuple[object, ...]:
    """Type, code, every option as (number, encoded value), payload."""
    return (msg.mtype, msg.code, [(int(o.number), o.encode()) for o in msg.opt.option_list()],
            bytes(msg.payload))


def get(sha: str, num: int | None = None, szx: int = 6, mtype: Type = Type.CON,
        **options: object) -> Message:
    msg = request(Code.GET, ("fw", sha), mtype=mtype, **options)
    if num is not None:
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
    return msg


async def test_a_con_block_get_is_answered_on_its_ack_without_aiocoap(fw) -> None:  # type: ignore[no-untyped-def]
    server, peer, resource, data, sha = fw
    for num in (None, 1, 2):
        req = get(sha, num)
        answer = await peer.ask(req, server.coap_port)
        assert answer is not None
        assert answer.mtype == Type.ACK and answer.mid == req.mid and answer.token == req.token
        assert answer.code == Code.CONTENT and answer.opt.content_format == 42
        assert answer.opt.etag == bytes.fromhex(sha[:16])
        n = num or 0
        assert bytes(answer.payload) == data[n * 1024:(n + 1) * 1024]
        assert answer.opt.block2.block_number == n and answer.opt.block2.size_exponent == 6
        assert answer.opt.block2.more == (n < 2)
        assert answer.opt.size2 == (len(data) if n == 0 else None)
    assert resource.rendered == 0
    assert resource.tracker is not None
    assert resource.tracker.fraction(sha, ("127.0.0.1", peer.transport.get_extra_info(
        "sockname")[1])) == 1.0


async def test_a_non_get_gets_a_non_answer_and_smaller_blocks_are_honoured(fw) -> None:  # type: ignore[no-untyped-def]
    server, peer, resource, data, sha = fw
    req = get(sha, 5, szx=4, mtype=Type.NON)  # 256-byte blocks: bytes 1280..1535
    answer = await peer.ask(req, server.coap_port)
    assert answer is not None and answer.mtype == Type.NON and answer.token == req.token
    assert bytes(answer.payload) == data[1280:1536] and answer.opt.block2.size_exponent == 4
    assert resource.rendered == 0


async def test_a_retransmitted_con_get_gets_the_same_answer(fw) -> None:  # type: ignore[no-untyped-def]
    server, peer, _resource, _data, sha = fw
    req = get(sha, 1)
    first = await peer.ask(req, server.coap_port)
    again = await peer.ask(req, server.coap_port)
    assert first is not None and again is not None
    assert fields(again) == fields(first) and (again.mid, again.token) == (first.mid, first.token)


async def test_the_aiocoap_path_gives_the_same_answer(fw) -> None:  # type: ignore[no-untyped-def]
    # An Accept option takes a GET off the fast path: the answer must not differ but for it.
    server, peer, resource, _data, sha = fw
    fast = await peer.ask(get(sha, 2), server.coap_port)
    slow = await peer.ask(get(sha, 2, accept=42), server.coap_port)
    assert resource.rendered == 1
    assert fast is not None and slow is not None
    assert fields(fast) == fields(slow)


@pytest.mark.parametrize("case", ["past the end", "unknown artifact", "payload", "observe",
                                  "reserved szx"])
async def test_what_the_fast_path_does_not_answer_goes_through_aiocoap(fw, case) -> None:  # type: ignore[no-untyped-def]
    server, peer, resource, _data, sha = fw
    expected = {"past the end": Code.BAD_OPTION, "unknown artifact": Code.NOT_FOUND,
                "payload": Code.CONTENT, "observe": Code.CONTENT, "reserved szx": Code.CONTENT}
    if case == "past the end":
        req = get(sha, 3)
    elif case == "unknown artifact":
        req = get("0" * 64, 0)
    elif case == "payload":
        req = request(Code.GET, ("fw", sha), payload=b"x", content_format=None)
    elif case == "observe":
        req = get(sha, 0, observe=0)
    else:
        req = get(sha, 0)
        req.opt.block2 = None
        raw = bytearray(req.encode())
        raw += bytes([0xC1, 0x07])  # Block2 (23 = 11 after Uri-Path) NUM 0, SZX 7 (reserved)
        answer = await peer.ask(bytes(raw), server.coap_port)
        assert answer is not None and resource.rendered == 1
        return
    answer = await peer.ask(req, server.coap_port)
    assert answer is not None and answer.code == expected[case], answer
    assert resource.rendered == 1


async def test_mangled_get_datagrams_still_meet_the_guard(fw) -> None:  # type: ignore[no-untyped-def]
    server, peer, resource, _data, sha = fw
    # An option value that is not UTF-8 in Uri-Path: the guard's 4.02, as for any request.
    answer = await peer.ask(raw_option_datagram(11, b"\xff\xfe", code=Code.GET), server.coap_port)
    assert answer is not None and answer.code == Code.BAD_OPTION
    # Options cut short: a Reset for a CON.
    cut = get(sha, 0).encode()[:-3]
    answer = await peer.ask(cut, server.coap_port)
    assert answer is not None and (answer.mtype == Type.RST or answer.code.is_response())
    assert resource.rendered == 0


def test_parse_get_reads_only_plain_gets() -> None:
    sha = "ab" * 32
    msg = get(sha, 70)
    got = parse_get(msg.encode())
    assert got == RawGet(0, msg.mid, msg.token, ("fw", sha), 70 << 4 | 6)
    plain = get(sha)
    assert parse_get(plain.encode()) == RawGet(0, plain.mid, plain.token, ("fw", sha), None)
    non = get(sha, 0, mtype=Type.NON)
    assert parse_get(non.encode()) == RawGet(1, non.mid, non.token, ("fw", sha), 6)
    for refused in (request(Code.POST, ("fw", sha)).encode(),        # not a GET
                    get(sha, 0, accept=42).encode(),                  # another option
                    get(sha, 0, uri_query=["a=b"]).encode(),
                    request(Code.GET, ("fw", sha), payload=b"x", content_format=None).encode(),
                    raw_option_datagram(11, b"\xff", code=Code.GET),  # not UTF-8
                    get(sha, 0).encode()[:-1],                        # cut short
                    b"\x40\x01",                                      # no message id
                    bytes([0x60, 0x01, 0, 1])):                       # an ACK
        assert parse_get(refused) is None, refused


def test_encode_answer_round_trips_through_aiocoap() -> None:
    req = RawGet(0, 0x1234, b"\x01\x02", ("fw", "x"), None)
    options = [(4, b"\x00" * 8), (12, b"\x2a"), (23, b"\x0e"), (28, (300000).to_bytes(3, "big"))]
    data = encode_answer(req, 0x45, options, b"p" * 1024, 7)
    msg = Message.decode(data)
    assert msg.mtype == Type.ACK and msg.mid == 0x1234 and msg.token == b"\x01\x02"
    assert msg.code == Code.CONTENT and msg.opt.size2 == 300000 and msg.opt.block2.more
    assert msg.opt.block2.size_exponent == 6 and bytes(msg.payload) == b"p" * 1024
    non = Message.decode(encode_answer(RawGet(1, 1, b"", ("a",), None), 0x45, [], b"", 7))
    assert non.mtype == Type.NON and non.mid == 7 and non.payload == b""
