"""The first look at every UDP datagram, before aiocoap: size, parse errors and critical options.

aiocoap's udp6 transport reads with a 4,096-byte buffer (a longer datagram arrives cut short and
is parsed as if whole), lets an option value that is not UTF-8 escape as a traceback per datagram,
logs a WARNING for every unparsable one, and ignores unknown critical options. ``DatagramGuard``
takes the transport's place as the receiver of datagrams:

- reads whole datagrams up to ``max_datagram`` bytes; a longer one is refused with 4.13 (Request
  Entity Too Large, Size1 = the largest registration payload, which Block1 can carry);
- a request with an option value that does not decode (a string option that is not UTF-8)
  answers 4.02 (RFC 7252 §5.4.3: such a value is treated like an unrecognized option, and every
  string option a request may carry is critical); any other unparsable confirmable message gets
  a Reset (§4.2), a non-confirmable one is dropped (§4.3);
- a request with an unrecognized critical option (odd number, e.g. 2049) answers 4.02 Bad Option
  (§5.4.1) instead of being served as if the option were not there;
- every refusal is counted in ``lwm2m_coap_datagrams_refused_total{reason}`` and logged through
  a rate limit: the first of a kind, then at most one line per minute with the count since;
- a plain GET that the site answers on the spot (``answer_get``: ``/fw`` blocks) is answered
  here, without aiocoap (coap/rawmsg.py); whatever it does not answer goes on as above.

Requests get ``SERVER_TUNING``: aiocoap answers with an empty ACK and a separate response
when the answer is not ready within ``EMPTY_ACK_DELAY``, which it sets to 0.1 s. A Register
waits for its commit, and a PostgreSQL commit on a busy host takes longer: 5,072 of 6,000
Registers went the separate way (twice the datagrams, and a retransmission timer each). The
device retransmits only after ACK_TIMEOUT (2 s or more), so 0.5 s still answers it in time.

After the datagram the transport read, the guard reads the ones already waiting in the socket
(up to ``DRAIN`` in all): the transport reads one per event-loop turn, and each turn costs a
``poll`` and a failed read of the socket's error queue, a tenth of a Register's CPU when
hundreds of devices send at once.

The remote address of every message is a ``PeerAddress``: aiocoap's udp6 address, whose text
forms (host, multicast checks, repr) aiocoap computes through ``ipaddress`` several times per
message (task names, response addressing), computed once per peer instead.
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from aiocoap import Code, Message
from aiocoap.message import Direction
from aiocoap.numbers.constants import TransportTuning
from aiocoap.numbers.optionnumbers import OptionNumber
from aiocoap.numbers.types import Type
from aiocoap.transports.udp6 import UDP6EndpointAddress

from ..metrics import COAP_REFUSED
from .dedup import install_bounded_deduplication
from .rawmsg import RawGet, encode_answer, parse_get

# (request, host, port) -> (code, options, payload), or None: not answered on this path
AnswerGet = Callable[[RawGet, str, int], "tuple[int, list[tuple[int, bytes]], bytes] | None"]

__all__ = ["DatagramGuard", "PeerAddress", "host_port", "RateLimitedLog", "RateLimitFilter",
           "install_datagram_guard", "KNOWN_OPTIONS", "DRAIN", "SERVER_TUNING"]

log = logging.getLogger(__name__)

KNOWN_OPTIONS = frozenset(int(o) for o in OptionNumber.__members__.values())
DRAIN = 16  # datagrams handled per readiness of the socket, at most


class ServerTuning(TransportTuning):
    """aiocoap's transmission parameters for the requests the server receives (see above)."""

    EMPTY_ACK_DELAY = 0.5


SERVER_TUNING = ServerTuning()


class RateLimitedLog:
    """Log lines by kind: the first at once, then at most one per ``interval`` seconds with the
    number of lines held back since (so a flood of bad datagrams cannot fill the disk)."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({held} more like this in the last {self.interval:g} s)" if held else ""
        self.logger.log(level, message + suffix, *args)


class RateLimitFilter(logging.Filter):
    """The same rate limit for a library's logger (aiocoap warns once per odd datagram): each
    message template passes at most once per ``interval`` seconds, with the count held back."""

    def __init__(self, interval: float = 60.0, max_kinds: int = 1000) -> None:
        super().__init__()
        self.interval = interval
        self.max_kinds = max_kinds
        self._last: dict[tuple[int, str], float] = {}
        self._held: dict[tuple[int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) >= self.max_kinds:  # messages built with their data: start over
            self._last.clear()
            self._held.clear()
        held = self._held.pop(key, 0)
        self._last[key] = now
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:g} s)"
        return True


class PeerAddress(UDP6EndpointAddress):  # type: ignore[misc]
    """aiocoap's udp6 address with ``hostinfo``, ``is_multicast``, ``is_multicast_locally`` and
    ``repr`` remembered per socket address and local address (a bounded table shared by all)."""

    _MAX = 50_000
    _texts: dict[tuple[Any, ...], tuple[str, bool]] = {}
    _locals: dict[bytes | None, bool] = {}

    def _text(self) -> tuple[str, bool]:
        got = self._texts.get(self.sockaddr)
        if got is None:
            if len(self._texts) >= self._MAX:
                self._texts.clear()
            got = self._texts[self.sockaddr] = (super().hostinfo, super().is_multicast)
        return got

    @property
    def hostinfo(self) -> str:
        return self._text()[0]

    @property
    def is_multicast(self) -> bool:
        return self._text()[1]

    @property
    def is_multicast_locally(self) -> bool:
        got = self._locals.get(self.pktinfo)
        if got is None:
            if len(self._locals) >= self._MAX:
                self._locals.clear()
            got = self._locals[self.pktinfo] = (self.pktinfo is not None
                                                and super().is_multicast_locally)
        return got

    def __repr__(self) -> str:
        return f"<UDP6EndpointAddress {self.hostinfo}>"


def host_port(sockaddr: tuple[Any, ...]) -> tuple[str, int]:
    """(host, port) of a socket address, an IPv4-mapped IPv6 address as plain IPv4."""
    host = str(sockaddr[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return host, int(sockaddr[1])


def _header(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(type, code, message id, token) of a datagram whose fixed header is readable, else None."""
    if len(data) < 4:
        return None
    first, code, mid = struct.unpack_from("!BBH", data)
    tkl = first & 0x0F
    if first >> 6 != 1 or tkl > 8 or len(data) < 4 + tkl:
        return None
    return (first >> 4) & 0x03, code, mid, bytes(data[4:4 + tkl])


def _is_request(code: int) -> bool:
    return code >> 5 == 0 and code != 0


class DatagramGuard:
    """Receives the datagrams of one aiocoap udp6 message interface (see the module docstring)."""

    def __init__(self, interface: Any, *, max_datagram: int, max_payload: int,
                 answer_get: AnswerGet | None = None) -> None:
        self.interface = interface
        self.answer_get = answer_get
        self.max_datagram = max_datagram
        self.max_payload = max_payload
        self.logs = RateLimitedLog(log)
        self._next_mid = secrets.randbits(16)
        transport = getattr(interface, "transport", None)
        self._sock = transport.get_extra_info("socket") if transport is not None else None

    # The udp6 transport calls this for every datagram (it replaces the interface's own method).
    def datagram_msg_received(self, data: bytes, ancdata: list[tuple[int, int, bytes]],
                              flags: int, address: tuple[Any, ...]) -> None:
        self._one(data, ancdata, flags, address)
        sock = self._sock
        if sock is None:
            return
        for _ in range(DRAIN - 1):
            try:
                data, ancdata, flags, address = sock.recvmsg(self.max_datagram + 1, 1024)
            except OSError:  # nothing waiting (BlockingIOError), or an error the transport's
                return       # next read reports as it always does
            self._one(data, ancdata, flags, address)

    def _one(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int,
             address: tuple[Any, ...]) -> None:
        try:
            self._received(data, ancdata, flags, address)
        except Exception as e:  # nothing a peer sends may end in a traceback per datagram
            COAP_REFUSED.inc("internal_error")
            self.logs.log(logging.ERROR, "internal", "handling a datagram from %s failed: %r",
                          address[0], e)

    def _received(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int,
                  address: tuple[Any, ...]) -> None:
        pktinfo = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                pktinfo = value
        too_large = flags & socket.MSG_TRUNC or len(data) > self.max_datagram
        if (self.answer_get is not None and not too_large and len(data) > 1 and data[1] == 1
                and self._answer_get(data, pktinfo, address)):
            return
        remote = PeerAddress(address, self.interface, pktinfo=pktinfo)
        header = _header(data)
        if too_large:
            COAP_REFUSED.inc("too_large")
            self.logs.log(logging.WARNING, "too_large", "refused a datagram of more than %d bytes "
                          "from %s", self.max_datagram, address[0])
            self._answer(remote, header, Code.REQUEST_ENTITY_TOO_LARGE,
                         f"datagram exceeds {self.max_datagram} bytes: send the payload "
                         "block-wise (Block1)", size1=self.max_payload)
            return
        try:
            message = Message.decode(data, remote)
        except UnicodeDecodeError:
            COAP_REFUSED.inc("bad_option_value")
            self.logs.log(logging.INFO, "bad_option_value", "an option value from %s is not "
                          "UTF-8", address[0])
            self._answer(remote, header, Code.BAD_OPTION, "an option value is not valid UTF-8")
            return
        except Exception:  # UnparsableMessage, and whatever else a mangled option provokes
            COAP_REFUSED.inc("unparsable")
            self.logs.log(logging.INFO, "unparsable", "unparsable datagram from %s", address[0])
            self._reset(remote, header)
            return
        if _is_request(int(message.code)):
            unknown = sorted({int(o.number) for o in message.opt.option_list()
                              if int(o.number) not in KNOWN_OPTIONS and int(o.number) & 1})
            if unknown:
                COAP_REFUSED.inc("bad_option")
                self.logs.log(logging.INFO, "bad_option", "request from %s with unrecognized "
                              "critical option(s) %s", address[0], unknown)
                self._answer(remote, header, Code.BAD_OPTION,
                             f"unrecognized critical option {', '.join(map(str, unknown))}")
                return
        message.direction = Direction.INCOMING
        message.transport_tuning = SERVER_TUNING
        self.interface._ctx.dispatch_message(message)

    def _answer_get(self, data: bytes, pktinfo: bytes | None, address: tuple[Any, ...]) -> bool:
        """Answer a plain GET without aiocoap when the site can (coap/rawmsg.py); False leaves
        the datagram to the usual path."""
        request = parse_get(data)
        if request is None:
            return False
        assert self.answer_get is not None
        got = self.answer_get(request, *host_port(address))
        if got is None:
            return False
        code, options, payload = got
        self._next_mid = (self._next_mid + 1) & 0xFFFF
        answer = encode_answer(request, code, options, payload, self._next_mid)
        ancdata = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)] if pktinfo else []
        try:
            self.interface.transport.sendmsg(answer, ancdata, 0, address)
        except OSError as e:
            self.logs.log(logging.INFO, "send", "could not answer %s: %r", address[0], e)
        return True

    def _answer(self, remote: UDP6EndpointAddress, header: tuple[int, int, int, bytes] | None,
                code: Code, reason: str, size1: int | None = None) -> None:
        """Answer a request (piggybacked on an ACK for CON, a NON for NON); others get a Reset."""
        if header is None:
            return
        mtype, req_code, mid, token = header
        if not _is_request(req_code) or mtype not in (Type.CON, Type.NON):
            self._reset(remote, header)
            return
        answer = Message(code=code, payload=reason.encode())
        if mtype == Type.CON:
            answer.mtype, answer.mid = Type.ACK, mid
        else:
            self._next_mid = (self._next_mid + 1) & 0xFFFF
            answer.mtype, answer.mid = Type.NON, self._next_mid
        answer.token = token
        if size1 is not None:
            answer.opt.size1 = size1
        answer.remote = remote
        self._send(answer)

    def _reset(self, remote: UDP6EndpointAddress, header: tuple[int, int, int, bytes] | None) -> None:
        if header is None or header[0] != Type.CON:
            return  # RFC 7252 §4.2/§4.3: only a confirmable message is rejected with a Reset
        answer = Message(code=Code.EMPTY)
        answer.mtype, answer.mid = Type.RST, header[2]
        answer.remote = remote
        self._send(answer)

    def _send(self, message: Message) -> None:
        try:
            self.interface.send(message)
        except Exception as e:
            self.logs.log(logging.INFO, "send", "could not answer %s: %r", message.remote, e)


def install_datagram_guard(context: Any, *, max_datagram: int, max_payload: int,
                           answer_get: AnswerGet | None = None) -> list[DatagramGuard]:
    """Put a ``DatagramGuard`` in front of every udp6 interface of ``context``, and bound its
    message layer's duplicate detection (coap/dedup.py). ``answer_get`` answers the plain GETs
    it can straight from their datagrams (coap/rawmsg.py)."""
    guards = []
    for ri in context.request_interfaces:
        udp: Any = getattr(getattr(ri, "token_interface", None), "message_interface", None)
        transport = getattr(udp, "transport", None)
        if udp is None or transport is None or not hasattr(udp, "datagram_msg_received"):
            continue
        # One byte more than the limit: a datagram that fills the buffer is too long, and the
        # kernel says so with MSG_TRUNC as well.
        transport.max_size = max_datagram + 1
        guard = DatagramGuard(udp, max_datagram=max_datagram, max_payload=max_payload,
                              answer_get=answer_get)
        udp.datagram_msg_received = guard.datagram_msg_received
        install_bounded_deduplication(udp._ctx)
        guards.append(guard)
    if not guards:
        raise RuntimeError("no udp6 transport to guard")
    return guards
