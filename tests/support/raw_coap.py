"""Raw CoAP datagrams for tests that send what a well-behaved client library would not."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

from aiocoap import Code, Message
from aiocoap.numbers.types import Type

_mids = itertools.count(int.from_bytes(os.urandom(2), "big"))


def request(code: Code = Code.POST, path: tuple[str, ...] = ("rd",), query: list[str] | None = None,
            payload: bytes = b"", *, mtype: Type = Type.CON, content_format: int | None = 40,
            **options: Any) -> Message:
    """A request message with a fresh message id and token (encode() it to get the datagram)."""
    msg = Message(code=code, uri_path=path, uri_query=query or [], payload=payload)
    msg.mtype, msg.mid, msg.token = mtype, next(_mids) & 0xFFFF, os.urandom(4)
    if content_format is not None and payload:
        msg.opt.content_format = content_format
    for name, value in options.items():
        setattr(msg.opt, name, value)
    return msg


def raw_option_datagram(number: int, value: bytes, code: Code = Code.POST) -> bytes:
    """A CON request whose only option is ``number`` with the raw bytes ``value`` (any bytes)."""
    header = bytes([0x44, int(code)]) + (next(_mids) & 0xFFFF).to_bytes(2, "big") + os.urandom(4)

    def ext(n: int) -> tuple[int, bytes]:
        if n < 13:
            return n, b""
        if n < 269:
            return 13, bytes([n - 13])
        return 14, (n - 269).to_bytes(2, "big")

    dn, dx = ext(number)
    ln, lx = ext(len(value))
    return header + bytes([(dn << 4) | ln]) + dx + lx + value


class RawPeer(asyncio.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that sends datagrams and collects the answers as Messages."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[Message] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> RawPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.answers.put_nowait(Message.decode(data))

    def send(self, data: bytes | Message, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data.encode() if isinstance(data, Message) else data,
                              ("127.0.0.1", port))

    async def ask(self, data: bytes | Message, port: int, timeout: float = 2.0) -> Message | None:
        """Send one datagram and wait for its answer (None when none came).

        An empty ACK (the answer comes later, separately) is skipped; a Reset is an answer."""
        self.send(data, port)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                msg = await asyncio.wait_for(self.answers.get(), max(left, 0.001))
            except asyncio.TimeoutError:
                return None
            if msg.code != Code.EMPTY or msg.mtype == Type.RST:
                if msg.mtype == Type.CON:  # a separate response: acknowledge it
                    ack = Message(code=Code.EMPTY)
                    ack.mtype, ack.mid = Type.ACK, msg.mid
                    self.send(ack, port)
                return msg

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def piggybacked(req: Message, code: Code, payload: bytes = b"",
                content_format: int | None = None) -> Message:
    """The ACK that answers the confirmable request ``req`` with ``code`` and ``payload``."""
    answer = Message(code=code, payload=payload)
    answer.mtype, answer.mid, answer.token = Type.ACK, req.mid, req.token
    if content_format is not None:
        answer.opt.content_format = content_format
    return answer


async def next_request(peer: RawPeer, path: str, timeout: float = 2.0) -> Message:
    """The next request for ``path`` ("/3/0/0") the peer receives, skipping everything else."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        msg = await asyncio.wait_for(peer.answers.get(), max(left, 0.001))
        if msg.code.is_request() and "/" + "/".join(msg.opt.uri_path) == path:
            return msg
