"""Fuzzers shared by the bounded runs in the tests and the long runs in bench/ (``--minutes N``).

``CoapFuzzer`` throws datagrams at a server's CoAP port over UDP on 127.0.0.1: well-formed and
mutated Register / Update / De-register / Send requests, Block1 abuse (too many blocks, gaps,
wrong sizes, a huge Size1), undecodable option values, unknown critical options and random
bytes. It counts what it sent and the answers by code. Endpoint names come from a fixed pool, so
a long run measures leaks, not the state a growing fleet rightly needs.

``fuzz_decoders`` feeds random and mutated payloads to every content-format decoder and the
link-format parsers; the only error they may raise is CodecError (or RegistrationError for a
registration payload).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2

CON, NON = 0, 1
POST, DELETE = 2, 4
# Content formats a device may use for Send, and a few it may not.
SEND_FORMATS = (110, 112, 11542, 11543, 11544, 0, 42, 60, 9999)


def _option_bytes(options: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        delta, length = number - last, len(value)
        last = number

        def nib(n: int) -> tuple[int, bytes]:
            if n < 13:
                return n, b""
            if n < 269:
                return 13, bytes([n - 13])
            return 14, struct.pack("!H", n - 269)

        dn, dx = nib(delta)
        ln, lx = nib(length)
        out += bytes([(dn << 4) | ln]) + dx + lx + value
    return bytes(out)


def coap(code: int, options: list[tuple[int, bytes]], payload: bytes = b"", *, mtype: int = CON,
         mid: int = 0, token: bytes = b"") -> bytes:
    """A CoAP datagram from raw parts (nothing checked: that is the point)."""
    head = bytes([0x40 | (mtype << 4) | len(token), code]) + struct.pack("!H", mid & 0xFFFF)
    return head + token + _option_bytes(options) + ((b"\xff" + payload) if payload else b"")


def _uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""


def _path(*segments: str) -> list[tuple[int, bytes]]:
    return [(11, s.encode()) for s in segments]


def _query(*items: str) -> list[tuple[int, bytes]]:
    return [(15, q.encode()) for q in items]


@dataclass
class Stats:
    """What a fuzz run sent and got back."""

    sent: int = 0
    answers: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.answers.items()))
        return f"datagrams sent: {self.sent}; answers by code: {codes or 'none'}"


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, fuzzer: CoapFuzzer) -> None:
        self.fuzzer = fuzzer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.fuzzer._answer(data)


class CoapFuzzer:
    """See the module docstring; ``run(seconds)`` or ``run(count=N)``."""

    def __init__(self, port: int, *, seed: int = 1, endpoints: int = 500, sockets: int = 8,
                 host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.rng = random.Random(seed)
        self.endpoints = [f"fz-{i}" for i in range(endpoints)]
        self.n_sockets = sockets
        self.stats = Stats()
        self.locations: collections.deque[str] = collections.deque(maxlen=2000)
        self._transports: list[asyncio.DatagramTransport] = []
        self._mid = self.rng.randrange(0x10000)

    # --- answers -------------------------------------------------------------------------
    def _answer(self, data: bytes) -> None:
        if len(data) < 4:
            self.stats.answers["short"] += 1
            return
        mtype = (data[0] >> 4) & 3
        code = data[1]
        label = "RST" if mtype == 3 else f"{code >> 5}.{code & 31:02d}"
        if label == "0.00":
            label = "empty ACK"
        self.stats.answers[label] += 1
        if code == 0x41:  # 2.01 Created: remember the location for Updates
            tkl = data[0] & 0x0F
            at, number, path = 4 + tkl, 0, []
            while at < len(data) and data[at] != 0xFF:
                d, ln = data[at] >> 4, data[at] & 0x0F
                at += 1
                if d == 13:
                    d, at = data[at] + 13, at + 1
                elif d == 14:
                    d, at = struct.unpack_from("!H", data, at)[0] + 269, at + 2
                if ln == 13:
                    ln, at = data[at] + 13, at + 1
                elif ln == 14:
                    ln, at = struct.unpack_from("!H", data, at)[0] + 269, at + 2
                number += d
                if number == 8:
                    path.append(data[at:at + ln].decode("utf-8", "replace"))
                at += ln
            if len(path) == 2:
                self.locations.append(path[1])
        elif code == 0x80 + 0x04 and mtype == 2:  # 4.04: a location that is gone
            pass

    # --- datagrams -----------------------------------------------------------------------
    def _next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def _token(self) -> bytes:
        return os.urandom(self.rng.randrange(0, 9))

    def _links(self) -> bytes:
        r = self.rng
        links = ['</>;rt="oma.lwm2m"'] if r.random() < 0.5 else []
        for _ in range(r.randrange(0, 30)):
            o = r.choice((1, 3, 4, 5, 9, 33100, r.randrange(0, 70000)))
            links.append(f"</{o}/{r.randrange(0, 5)}>" if r.random() < 0.7 else f"</{o}>;ver=1.{r.randrange(3)}")
        return ",".join(links).encode()

    def register(self) -> bytes:
        r = self.rng
        query = [f"ep={r.choice(self.endpoints)}", f"lt={r.choice((1, 5, 30, 300, 86400))}"]
        if r.random() < 0.9:
            query.append(f"lwm2m={r.choice(('1.0', '1.1', '1.2', '1.0.0', '2.0', 'x'))}")
        if r.random() < 0.5:
            query.append(f"b={r.choice(('U', 'UQ', 'Q', 'T', 'X'))}")
        opts = _path("rd") + _query(*query) + [(12, _uint(40))]
        return coap(POST, opts, self._links(), mtype=r.choice((CON, CON, NON)), mid=self._next_mid(),
                    token=self._token())

    def update(self) -> bytes:
        r = self.rng
        rid = r.choice(self.locations) if self.locations and r.random() < 0.8 else \
            os.urandom(6).hex()
        query = [f"lt={r.choice((1, 60, 0, -1))}"] if r.random() < 0.3 else []
        payload = self._links() if r.random() < 0.3 else b""
        opts = _path("rd", rid) + _query(*query) + ([(12, _uint(40))] if payload else [])
        return coap(POST, opts, payload, mid=self._next_mid(), token=self._token())

    def deregister(self) -> bytes:
        rid = self.rng.choice(self.locations) if self.locations else "nope"
        return coap(DELETE, _path("rd", rid), mid=self._next_mid(), token=self._token())

    def send(self) -> bytes:
        r = self.rng
        fmt = r.choice(SEND_FORMATS)
        records = [{"n": f"/{r.choice((3, 1, 33100, 9999))}/0/{r.randrange(30)}",
                    "v": r.choice((1, -5, 2.5, 2 ** 70))} for _ in range(r.randrange(1, 6))]
        if fmt == 112:
            body = cbor2.dumps([{0: rec["n"], 2: rec["v"]} for rec in records]) \
                if r.random() < 0.7 else os.urandom(r.randrange(40))
        elif fmt == 110:
            body = json.dumps(records).encode() if r.random() < 0.7 else os.urandom(r.randrange(40))
        else:
            body = os.urandom(r.randrange(0, 200))
        return coap(POST, _path("dp") + [(12, _uint(fmt))], body, mid=self._next_mid(),
                    token=self._token())

    def block1_abuse(self) -> list[bytes]:
        """A Block1 sequence with one kind of abuse."""
        r = self.rng
        ep = r.choice(self.endpoints)
        token = self._token()
        kind = r.choice(("many", "gap", "size1", "wrong_size", "szx7", "ok"))
        szx = 7 if kind == "szx7" else r.choice((2, 4, 6))
        size = 1024 if szx == 7 else 2 ** (szx + 4)
        blocks = r.randrange(2, 90 if kind == "many" else 8)
        out = []
        for n in range(blocks):
            if kind == "gap" and n == 1:
                continue
            more = n < blocks - 1
            body = (b"</3/0>," * (size // 7 + 1))[:size if more or kind != "ok" else size // 2]
            if kind == "wrong_size" and n == 1:
                body = body[:size // 2]
            opts = _path("rd") + _query(f"ep={ep}", "lt=60") + [(12, _uint(40)),
                                                                 (27, _uint((n << 4) | (8 if more else 0) | szx))]
            if kind == "size1" and n == 0:
                opts.append((60, _uint(r.choice((10 ** 6, 2 ** 31)))))
            out.append(coap(POST, opts, body, mid=self._next_mid(), token=token))
        return out

    def odd_options(self) -> bytes:
        r = self.rng
        choice = r.randrange(4)
        if choice == 0:  # a string option that is not UTF-8
            opts = [(r.choice((11, 15, 3)), bytes(r.randrange(0x80, 0x100) for _ in range(4)))]
        elif choice == 1:  # an unknown critical option
            opts = _path("rd") + [(r.randrange(1000, 3000) | 1, b"x")]
        elif choice == 2:  # a huge option length
            opts = _path("rd") + [(15, b"ep=" + b"a" * r.randrange(200, 1200))]
        else:  # a Uri-Path of many segments
            opts = _path(*(["rd"] * r.randrange(2, 60)))
        return coap(POST, opts, b"", mid=self._next_mid(), token=self._token())

    def mutate(self, data: bytes) -> bytes:
        r = self.rng
        b = bytearray(data)
        for _ in range(r.randrange(1, 6)):
            op = r.randrange(5)
            if op == 0 and b:
                b[r.randrange(len(b))] ^= 1 << r.randrange(8)
            elif op == 1 and b:
                del b[r.randrange(len(b)):]
            elif op == 2:
                at = r.randrange(len(b) + 1)
                b[at:at] = os.urandom(r.randrange(1, 8))
            elif op == 3 and len(b) > 4:
                b[r.randrange(4, len(b))] = r.choice((0xFF, 0xD0, 0xE0, 0x0D, 0x0E, 0xFD))
            else:
                b += os.urandom(r.randrange(1, 30))
        return bytes(b)

    def batch(self) -> list[bytes]:
        """The next few datagrams."""
        r = self.rng
        roll = r.random()
        if roll < 0.25:
            return [self.register()]
        if roll < 0.40:
            return [self.update()]
        if roll < 0.45:
            return [self.deregister()]
        if roll < 0.60:
            return [self.send()]
        if roll < 0.67:
            return self.block1_abuse()
        if roll < 0.75:
            return [self.odd_options()]
        if roll < 0.95:
            make: Callable[[], bytes] = r.choice((self.register, self.update, self.send))
            return [self.mutate(make())]
        return [os.urandom(r.randrange(0, 64))]

    # --- running -------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.n_sockets):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(self), local_addr=(self.host, 0), family=socket.AF_INET)
            self._transports.append(transport)

    def close(self) -> None:
        for t in self._transports:
            t.close()
        self._transports.clear()

    async def run(self, seconds: float | None = None, count: int | None = None,
                  rate: float = 2000.0) -> Stats:
        """Send for ``seconds`` (or ``count`` datagrams) at about ``rate`` datagrams a second."""
        if not self._transports:
            await self.open()
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + seconds if seconds is not None else None
        while True:
            if deadline is not None and loop.time() >= deadline:
                break
            if count is not None and self.stats.sent >= count:
                break
            transport = self.rng.choice(self._transports)
            for data in self.batch():
                transport.sendto(data, (self.host, self.port))
                self.stats.sent += 1
            ahead = self.stats.sent / rate - (loop.time() - start)
            await asyncio.sleep(ahead if ahead > 0 else 0)
        await asyncio.sleep(0.5)  # the last answers
        return self.stats


# --- decoders ------------------------------------------------------------------------------

def decoder_inputs(rng: random.Random) -> bytes:
    """A random or mutated payload for the decoders."""
    seeds = [b"\x08\x00\x0b\xc1\x00\x05ACME", cbor2.dumps([{0: "/3/0/0", 3: "ACME"}]),
             b'[{"bn":"/3/0/","n":"0","vs":"ACME"}]', b"</3/0>,</1/0>;ver=1.1",
             cbor2.dumps({3: {0: {0: "ACME"}}}), b'{"bn":"/3/0/","e":[{"n":"0","sv":"x"}]}',
             b"42", b"\xbf\x01\xff"]
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randrange(0, 8)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            at = rng.randrange(len(data) + 1)
            data[at:at] = os.urandom(rng.randrange(1, 12))
        elif op == 2 and data:
            del data[rng.randrange(len(data)):]
        else:
            data = bytearray(os.urandom(rng.randrange(0, 80)))
    return bytes(data)


def fuzz_decoders(seconds: float | None = None, count: int | None = None,
                  seed: int = 1) -> tuple[int, collections.Counter[str], list[str]]:
    """Decode random and mutated payloads in every format for ``seconds`` (or ``count`` inputs).

    Returns (inputs, outcomes by kind, crashes): a crash is any exception other than the one
    the caller turns into an answer (CodecError; RegistrationError for a registration payload;
    ValueError for a Discover payload), as "Type: message <- input".
    """
    from lwm2m_server.codecs import CodecError, codec_for
    from lwm2m_server.codecs.link_format import parse_discover
    from lwm2m_server.model import ObjectRegistry, Path
    from lwm2m_server.protocol.errors import RegistrationError
    from lwm2m_server.protocol.registration import _parse_payload_cached

    registry = ObjectRegistry.from_dirs()
    rng = random.Random(seed)
    paths = [Path.parse(p) for p in ("/3/0", "/3/0/0", "/3/0/7", "/3/0/7/1", "/3", "/1/0/1",
                                     "/33100/0", "/9999/0/1")]
    formats = [0, 42, 11542, 11543, 110, 112, 11544]
    outcomes: collections.Counter[str] = collections.Counter()
    crashes: list[str] = []
    deadline = time.monotonic() + seconds if seconds is not None else None
    n = 0
    while (deadline is None or time.monotonic() < deadline) and (count is None or n < count):
        data = decoder_inputs(rng)
        n += 1
        which = rng.randrange(len(formats) + 2)
        try:
            if which < len(formats):
                codec = codec_for(formats[which])
                if rng.random() < 0.5 and hasattr(codec, "decode_values"):
                    codec.decode_values(data, registry)  # type: ignore[attr-defined]
                else:
                    codec.decode(data, rng.choice(paths), registry)
            elif which == len(formats):
                _parse_payload_cached.__wrapped__(data)
            else:
                try:
                    parse_discover(data, rng.choice(("/", "/lwm2m")))
                except ValueError as e:  # what protocol/payloads.parse_discover turns into a 502
                    raise CodecError(str(e)) from None
            outcomes["decoded"] += 1
        except (CodecError, RegistrationError):
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 - that is what a fuzzer looks for
            outcomes["crash"] += 1
            if len(crashes) < 20:
                crashes.append(f"{type(e).__name__}: {e} <- {data[:40]!r}")
    return n, outcomes, crashes
