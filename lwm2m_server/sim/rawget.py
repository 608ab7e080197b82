"""Block GETs from a simulated device's own socket, without aiocoap's request machinery.

A 64 KiB package is 64 confirmable GETs; through ``aiocoap.Context.request`` each costs the
simulator a ``Message`` with its URI parsed, a token and message exchange, a response pipe,
timers and the decoding of the answer, which made downloads a third of a simulated fleet's CPU
during a rollout. ``RawGets`` sends the GET it builds by hand (coap/rawmsg.py) on the device's
aiocoap socket and reads the answer before aiocoap does (``take``, called by the device's
receive hook, after the simulated radio decided the datagram was heard).

It follows RFC 7252 for a confirmable request: retransmission after ACK_TIMEOUT (2 s) times a
random factor up to 1.5, doubling, at most MAX_RETRANSMIT (4) times, within the caller's
deadline; the answer piggybacked on the ACK, or an empty ACK and then a separate response,
which is acknowledged when it is confirmable; a Reset ends the exchange. Message IDs come from
the socket's aiocoap message layer, so they never collide with the device's other exchanges;
tokens are 4 random bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
from dataclasses import dataclass
from typing import Any

from ..coap.rawmsg import (ACK, CON, GET, OPT_BLOCK2, OPT_URI_PATH, RST, RawMessage,
                           encode_message, encode_uint, parse_message)

__all__ = ["RawGets", "RawResetError", "ACK_TIMEOUT", "ACK_RANDOM_FACTOR", "MAX_RETRANSMIT"]

ACK_TIMEOUT = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4


class RawResetError(ConnectionError):
    """The server answered the request with a Reset."""


@dataclass(slots=True)
class _Exchange:
    mid: int
    answer: asyncio.Future[RawMessage]
    acked: bool = False


class RawGets:
    """GETs on one aiocoap udp6 message interface (a device's socket)."""

    def __init__(self, interface: Any) -> None:
        self.interface = interface
        self._by_token: dict[bytes, _Exchange] = {}
        self._by_mid: dict[int, _Exchange] = {}
        self._addresses: dict[tuple[str, int], tuple[Any, ...]] = {}

    async def _sockaddr(self, host: str, port: int) -> tuple[Any, ...]:
        """The socket address of ``host``: the device's socket is IPv6 with IPv4 mapped in."""
        got = self._addresses.get((host, port))
        if got is None:
            try:
                ip = ipaddress.ip_address(host.strip("[]"))
                got = (f"::ffff:{ip}" if ip.version == 4 else str(ip), port, 0, 0)
            except ValueError:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, family=socket.AF_INET6, type=socket.SOCK_DGRAM,
                    flags=socket.AI_V4MAPPED)
                got = infos[0][4]
            self._addresses[(host, port)] = got
        return got

    async def get(self, host: str, port: int, path: tuple[str, ...], block2: int | None,
                  timeout: float) -> RawMessage:
        """GET ``path`` (with a Block2 option when given) and return the answer; TimeoutError
        after ``timeout`` seconds, RawResetError on a Reset, OSError when sending fails."""
        loop = asyncio.get_running_loop()
        address = await self._sockaddr(host, port)
        mid = self.interface._ctx._next_message_id()  # noqa: SLF001 - the socket's MID space
        token = os.urandom(4)
        options = [(OPT_URI_PATH, p.encode("utf-8")) for p in path]
        if block2 is not None:
            options.append((OPT_BLOCK2, encode_uint(block2)))
        datagram = encode_message(CON, GET, mid, token, options)
        exchange = _Exchange(mid, loop.create_future())
        self._by_token[token] = exchange
        self._by_mid[mid] = exchange
        deadline = loop.time() + timeout
        wait = ACK_TIMEOUT * random.uniform(1.0, ACK_RANDOM_FACTOR)
        sent = 0
        try:
            while True:
                if not exchange.acked:
                    self.interface.transport.sendmsg(datagram, [], 0, address)
                    sent += 1
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"no answer in {timeout:g} s")
                limit = left if exchange.acked or sent > MAX_RETRANSMIT else min(wait, left)
                await asyncio.wait((exchange.answer,), timeout=limit)
                if exchange.answer.done():
                    return exchange.answer.result()
                wait *= 2
        finally:
            self._by_token.pop(token, None)
            if self._by_mid.get(mid) is exchange:
                del self._by_mid[mid]

    def take(self, data: bytes, address: tuple[Any, ...]) -> bool:
        """Whether ``data`` belongs to one of our exchanges (and was handled)."""
        if not self._by_mid or len(data) < 4:
            return False
        msg = parse_message(data)
        if msg is None:
            return False
        if msg.code == 0:  # empty: an ACK (the answer comes separately) or a Reset
            exchange = self._by_mid.get(msg.mid)
            if exchange is None or msg.mtype not in (ACK, RST):
                return False
            if msg.mtype == RST:
                if not exchange.answer.done():
                    exchange.answer.set_exception(RawResetError("the server reset the request"))
            else:
                exchange.acked = True
            return True
        exchange = self._by_token.get(msg.token)
        if exchange is None or (msg.mtype == ACK and msg.mid != exchange.mid):
            return False
        if msg.mtype == CON:  # a separate response: acknowledge it (RFC 7252 §5.2.2)
            self.interface.transport.sendmsg(encode_message(ACK, 0, msg.mid, b"", []), [], 0,
                                              address)
        if not exchange.answer.done():
            exchange.answer.set_result(msg)
        return True
