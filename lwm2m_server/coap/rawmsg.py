"""CoAP datagrams read and written by hand, for the two paths where aiocoap's per-message work
is most of the cost: block downloads on the server and in the simulator.

A rollout's downloads are most of the datagrams a server receives: a 64 KiB model is 64
Block2 GETs per device, and aiocoap spends about a millisecond of CPU on each (decoding into a
``Message``, deduplication, a token exchange, a render task, the block-wise layer, encoding the
answer), which made block serving the largest cost of a rollout. ``parse_get`` reads the few
requests that need none of that: a GET, confirmable or not, whose only options are Uri-Path and
at most one Block2 and that carries no payload. A resource that can answer such a request on
the spot (``FwResource.answer_get``) returns the answer's code, options and payload, and
``encode_answer`` builds the datagram: piggybacked on an ACK with the request's Message ID for
a CON (RFC 7252 §5.2.1), a NON with a fresh Message ID for a NON (§5.2.3), the token echoed.

Anything else, and every case the resource does not answer itself (an unknown artifact, a
block past the end, a file not yet fetched), goes through aiocoap as before: this path only
ever gives the answer aiocoap's path would give. A duplicate of a confirmable GET is answered
again from the same bytes (a GET is safe and its answer the same), where aiocoap would resend
the answer it kept.

The simulator's devices fetch blocks the same way (``sim/rawget.py``): ``encode_message`` for
the request, ``parse_message`` for the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RawGet", "RawMessage", "parse_get", "parse_message", "encode_answer",
           "encode_message", "encode_uint", "CON", "NON", "ACK", "RST", "GET", "CONTENT",
           "OPT_ETAG", "OPT_URI_PATH", "OPT_CONTENT_FORMAT", "OPT_BLOCK2", "OPT_SIZE2"]

CON, NON, ACK, RST = 0, 1, 2, 3
GET = 0x01
CONTENT = 0x45  # 2.05
OPT_ETAG, OPT_URI_PATH, OPT_CONTENT_FORMAT, OPT_BLOCK2, OPT_SIZE2 = 4, 11, 12, 23, 28


@dataclass(slots=True)
class RawMessage:
    """A datagram's header, options (number, value) in order, and payload."""

    mtype: int
    code: int
    mid: int
    token: bytes
    options: list[tuple[int, bytes]]
    payload: bytes

    def option(self, number: int) -> bytes | None:
        """The first value of option ``number``, None when absent."""
        for n, value in self.options:
            if n == number:
                return value
        return None


@dataclass(slots=True)
class RawGet:
    """What a plain GET datagram asks for."""

    mtype: int          # CON (0) or NON (1)
    mid: int
    token: bytes
    path: tuple[str, ...]
    block2: int | None  # the Block2 option's value (NUM << 4 | M << 3 | SZX), None if absent


def _extended(data: bytes, i: int, nibble: int) -> tuple[int, int] | None:
    """(value, next index) of an option delta or length nibble and its extension bytes."""
    if nibble < 13:
        return nibble, i
    if nibble == 13:
        return (data[i] + 13, i + 1) if i < len(data) else None
    if nibble == 14:
        return (int.from_bytes(data[i:i + 2], "big") + 269, i + 2) if i + 2 <= len(data) else None
    return None  # 15: reserved (the payload marker is handled by the caller)


def parse_message(data: bytes) -> RawMessage | None:
    """The message in ``data``, None when it is not well formed (RFC 7252 §3)."""
    if len(data) < 4:
        return None
    first = data[0]
    tkl = first & 0x0F
    if first >> 6 != 1 or tkl > 8 or len(data) < 4 + tkl:
        return None
    i, n = 4 + tkl, len(data)
    number = 0
    options: list[tuple[int, bytes]] = []
    payload = b""
    while i < n:
        head = data[i]
        if head == 0xFF:
            if i + 1 == n:
                return None  # a payload marker followed by no payload (§3)
            payload = bytes(data[i + 1:])
            break
        got = _extended(data, i + 1, head >> 4)
        if got is None:
            return None
        delta, i = got
        got = _extended(data, i, head & 0x0F)
        if got is None:
            return None
        length, i = got
        if i + length > n:
            return None
        number += delta
        options.append((number, bytes(data[i:i + length])))
        i += length
    return RawMessage((first >> 4) & 0x03, data[1], int.from_bytes(data[2:4], "big"),
                      bytes(data[4:4 + tkl]), options, payload)


def parse_get(data: bytes) -> RawGet | None:
    """The GET in ``data``, or None when it is not one this path serves (see the module)."""
    if len(data) < 4 or data[1] != GET or (data[0] >> 4) & 0x03 > NON:
        return None
    msg = parse_message(data)
    if msg is None or msg.payload:
        return None  # mangled (the guard answers it), or a GET with a payload
    path: list[str] = []
    block2: int | None = None
    for number, value in msg.options:
        if number == OPT_URI_PATH:
            try:
                path.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        elif number == OPT_BLOCK2 and block2 is None and len(value) <= 3:
            block2 = int.from_bytes(value, "big")
        else:
            return None  # any other option, or Block2 twice or too long
    return RawGet(msg.mtype, msg.mid, msg.token, tuple(path), block2)


def encode_uint(value: int) -> bytes:
    """An option's uint value in as few bytes as it needs (RFC 7252 §3.2: 0 is empty)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _nibble(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    return 14, (value - 269).to_bytes(2, "big")


def encode_message(mtype: int, code: int, mid: int, token: bytes,
                   options: list[tuple[int, bytes]], payload: bytes = b"") -> bytes:
    """A datagram; ``options`` sorted by number."""
    out = bytearray((0x40 | (mtype << 4) | len(token), code))
    out += mid.to_bytes(2, "big")
    out += token
    last = 0
    for number, value in options:
        d, dext = _nibble(number - last)
        ln, lext = _nibble(len(value))
        out.append((d << 4) | ln)
        out += dext
        out += lext
        out += value
        last = number
    if payload:
        out.append(0xFF)
        out += payload
    return bytes(out)


def encode_answer(request: RawGet, code: int, options: list[tuple[int, bytes]],
                  payload: bytes, non_mid: int) -> bytes:
    """The answer datagram: ``options`` sorted by number; ``non_mid`` is the Message ID used
    when the request was a NON (a CON is answered on its ACK, with the request's ID)."""
    if request.mtype == CON:
        return encode_message(ACK, code, request.mid, request.token, options, payload)
    return encode_message(NON, code, non_mid, request.token, options, payload)
