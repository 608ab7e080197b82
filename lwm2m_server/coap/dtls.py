"""CoAP over DTLS 1.2 (coaps) in the server's one aiocoap context: tinydtls via DTLSSocket.

aiocoap's ``tinydtls_server`` transport does the DTLS work (tinydtls, PSK with
TLS_PSK_WITH_AES_128_CCM_8, the suite LwM2M mandates); this module adapts it to a server that
also speaks plain CoAP and must know who is talking (see docs/security.md for the choice):

- it binds its own port next to the plain one, on the same host, "::" serving IPv6 and IPv4
  (aiocoap's version refuses the any-address);
- each session records the PSK identity its handshake proved (``psk_identity``) and the
  credential behind it, so the site can bind the identity to an endpoint;
- a datagram from an address without a session starts one only if it is a ClientHello, so
  garbage and stray records cost no state; sessions are capped (least recently active dropped);
- failed handshakes (unknown identity, wrong key) are logged once each, with the reason;
- requests to a device leave through the session it registered over (``recognize_remote``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiocoap import error as coap_error
from aiocoap.numbers import constants
from aiocoap.transports import simplesocketserver
from aiocoap.transports.tinydtls import (
    CODE_CLOSE_NOTIFY,
    DTLS_EVENT_CONNECT,
    DTLS_EVENT_CONNECTED,
    LEVEL_FATAL,
    LEVEL_NOALERT,
    CloseNotifyReceived,
    FatalDTLSError,
)
from aiocoap.transports.tinydtls_server import (
    _SENTINEL_ADDRESS,
    _SENTINEL_PORT,
    GoingThroughMessageDecryption,
    MessageInterfaceTinyDTLSServer,
    _AddressDTLS,
    _DatagramServerSocketSimpleDTLS,
)
from aiocoap.util import hostportjoin

__all__ = ["DtlsStats", "PskResolver", "add_dtls_transport", "close_session", "dtls_interface",
           "session_identity"]

log = logging.getLogger(__name__)

# TLS alert descriptions tinydtls reports (RFC 5246 §7.2), for the log line.
_ALERTS = {0: "close notify", 10: "unexpected message", 20: "bad record MAC",
           40: "handshake failure (no cipher suite in common, or no RFC 5746 renegotiation "
               "indication in the ClientHello)",
           47: "illegal parameter", 50: "decode error", 51: "decrypt error (wrong key?)",
           70: "protocol version", 80: "internal error", 115: "unknown PSK identity"}

#: identity (bytes) -> (key, credential object) or None when unknown
PskResolver = Callable[[bytes], "tuple[bytes, Any] | None"]


@dataclass
class DtlsStats:
    """Counters of one DTLS listener (read by the bench and the tests)."""

    handshakes: int = 0
    failed_handshakes: int = 0
    dropped_records: int = 0
    evicted_sessions: int = 0
    failures: list[str] = field(default_factory=list)  # the latest reasons, newest last


class _PskStore:
    """The dict-like object DTLSSocket asks for keys, per session; remembers who asked."""

    def __init__(self, resolve: PskResolver) -> None:
        self._resolve = resolve
        self.identity: bytes | None = None
        self.credential: Any = None
        self.unknown: bytes | None = None

    def keys(self) -> _PskStore:
        return self

    def _lookup(self, identity: bytes) -> tuple[bytes, Any] | None:
        try:
            return self._resolve(identity)
        except Exception as e:  # noqa: BLE001 - a database or secret problem must not look like a wrong key
            log.error("PSK lookup for identity %r failed: %s", identity[:64], e)
            return None

    def __contains__(self, identity: bytes) -> bool:
        found = self._lookup(identity)
        if found is None:
            self.unknown = identity
        return found is not None

    def __getitem__(self, identity: bytes) -> bytes:
        found = self._lookup(identity)
        if found is None:
            self.unknown = identity
            raise KeyError(identity)
        if self.identity not in (None, identity):
            raise KeyError(identity)  # one session, one identity
        self.identity, self.credential = identity, found[1]
        return found[0]


class _Session(_AddressDTLS):
    """One DTLS session with one device address; the remote of its requests and responses."""

    def __init__(self, protocol: _ServerSocket, underlying_address: Any) -> None:
        # Not super().__init__: aiocoap's version wires a CredentialsMap; ours resolves
        # identities through the credentials store and records the outcome.
        from DTLSSocket import dtls

        self._protocol = protocol
        self._underlying_address = simplesocketserver._Address(protocol, underlying_address)
        self._psk_store = _PskStore(protocol.resolve)
        self._dtls_socket = dtls.DTLS(read=self._read, write=self._write, event=self._event,
                                      pskId=b"lwm2m-server", pskStore=self._psk_store)
        self._dtls_session = dtls.Session(_SENTINEL_ADDRESS, _SENTINEL_PORT)
        self._retransmission_task = asyncio.create_task(self._run_retransmissions(),
                                                        name="DTLS server handshake retransmissions")
        self.log = protocol.log
        self.connected = False
        self.closed = False
        self.started = time.monotonic()

    maximum_block_size_exp = constants.MAX_REGULAR_BLOCK_SIZE_EXP

    @property
    def sockaddr(self) -> Any:
        return self._underlying_address.address

    @property
    def hostinfo(self) -> str:
        host, port, *_ = self.sockaddr
        return hostportjoin(host, port)

    @property
    def blockwise_key(self) -> Any:
        return (self.sockaddr, self._psk_store.identity)

    @property
    def psk_identity(self) -> str | None:
        """The identity this session's handshake proved (None before it completed)."""
        if not self.connected or self._psk_store.identity is None:
            return None
        return self._psk_store.identity.decode("utf-8", "replace")

    @property
    def credential(self) -> Any:
        return self._psk_store.credential if self.connected else None

    @property
    def authenticated_claims(self) -> list[Any]:  # aiocoap's name for the same thing
        return [self.credential] if self.credential is not None else []

    def _write(self, recipient: Any, data: bytes) -> int:
        # tinydtls reports the alerts it receives, not those it sends: a fatal alert we send
        # during the handshake (e.g. handshake_failure) is the reason the handshake ends.
        if (len(data) >= 15 and data[0] == 21 and data[3:5] == b"\0\0" and data[13] == 2
                and not self.connected):
            asyncio.get_running_loop().call_soon(self._protocol.fail_handshake, self, data[14])
        return int(super()._write(recipient, data))

    def _event(self, level: int, code: int) -> None:
        if (level, code) == (LEVEL_NOALERT, DTLS_EVENT_CONNECT):
            return
        if (level, code) == (LEVEL_NOALERT, DTLS_EVENT_CONNECTED):
            self.connected = True
            self._protocol.session_connected(self)
            return
        if (level, code) == (LEVEL_FATAL, CODE_CLOSE_NOTIFY):
            self._inject_error(CloseNotifyReceived())
        elif level == LEVEL_FATAL:
            if not self.connected:
                self._protocol.fail_handshake(self, code)
            else:
                self._inject_error(FatalDTLSError(code))
        else:
            self.log.debug("DTLS alert level %d code %d from %s", level, code, self.hostinfo)

    def _inject_error(self, e: Exception) -> None:
        if self.closed:
            return
        self.closed = True
        self._protocol._message_interface._received_exception(self, e)
        self._retransmission_task.cancel()
        if self._protocol._connections.get(self.sockaddr) is self:
            del self._protocol._connections[self.sockaddr]
        if self._protocol._shadows.get(self.sockaddr) is self:
            del self._protocol._shadows[self.sockaddr]


def _client_hello(data: bytes) -> bool:
    """A DTLS 1.x handshake record carrying a ClientHello (RFC 6347 §4.1, §4.2.2)."""
    return len(data) > 25 and data[0] == 22 and data[1] == 0xFE and data[13] == 1


class _ServerSocket(_DatagramServerSocketSimpleDTLS):
    """The coaps UDP socket and its sessions by peer address."""

    _Address = _Session  # type: ignore[assignment]
    max_sockets = 20000
    bootstrap_only = False  # a listener that serves only /bs (a separate bootstrap port)
    resolve: PskResolver = staticmethod(lambda identity: None)  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = DtlsStats()
        self._shadows: dict[Any, _Session] = {}  # new handshakes beside established sessions
        self._noted: OrderedDict[Any, float] = OrderedDict()

    @classmethod
    async def create(cls, bind: Any, log: Any, loop: Any, message_interface: Any,
                     reuse_port: bool = False) -> Any:
        host, port = bind
        wrapped = GoingThroughMessageDecryption(message_interface)
        family = socket.AF_INET6 if ":" in host or host in ("", "::") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 as well
            if reuse_port:  # cluster processes on one host share the port (docs/scale.md)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host or "::", port))
        except OSError:
            sock.close()
            raise
        ready = loop.create_future()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(ready.set_result, wrapped, log), sock=sock)
        protocol.hostinfo_local = hostportjoin(host, sock.getsockname()[1])
        self = await ready
        self._loop = loop
        return self

    def bound_port(self) -> int:
        return int(self._transport.get_extra_info("socket").getsockname()[1])

    def datagram_received(self, data: bytes, sockaddr: Any) -> None:
        session = self._connections.get(sockaddr)
        hello = _client_hello(data)
        if session is None:
            if not hello:
                # Not a handshake start and no session: nothing to decrypt it with.
                self.stats.dropped_records += 1
                self._note(sockaddr, "record without a DTLS session (no ClientHello first): dropped")
                return
            while len(self._connections) >= self.max_sockets:
                _, oldest = next(iter(self._connections.items()))
                self.stats.evicted_sessions += 1
                oldest._inject_error(coap_error.LibraryShutdown("DTLS session evicted: too many sessions"))
            session = self._new_session(sockaddr)
            self._connections[sockaddr] = session
            self._feed(session, data, sockaddr, shadow=False)
            return
        self._connections.move_to_end(sockaddr)
        shadow = self._shadows.get(sockaddr)
        if session.connected and hello and (shadow is None or shadow.closed):
            # A new handshake from the address of an established session: a device that
            # rebooted on the same port, or a replay. The old session stays until the new one
            # completes (RFC 6347 §4.2.8), so a replayed handshake cannot end it.
            shadow = self._shadows[sockaddr] = self._new_session(sockaddr)
        if shadow is not None and not shadow.closed:
            self._feed(shadow, data, sockaddr, shadow=True)
            if data[3:5] == b"\0\0":  # epoch 0: handshake records of the new handshake only
                return
        self._feed(session, data, sockaddr, shadow=False)

    def _new_session(self, sockaddr: Any) -> _Session:
        session = self._Address(self, sockaddr)
        # A handshake that never completes (a wrong key: tinydtls drops the undecryptable
        # Finished silently) is ended, and reported, after handshake_timeout.
        self._loop.call_later(self.handshake_timeout, self._handshake_deadline, session)
        return session

    def _feed(self, session: _Session, data: bytes, sockaddr: Any, shadow: bool) -> None:
        """Hand ``data`` to tinydtls (what aiocoap's GoingThroughMessageDecryption does,
        keeping tinydtls' verdict)."""
        session._retransmission_task.cancel()
        rc = session._dtls_socket.handleMessage(session._dtls_session, data)
        if not session.closed:
            session._retransmission_task = asyncio.create_task(
                session._run_retransmissions(), name="DTLS server handshake retransmissions")
        if rc >= 0 or shadow:
            return  # a new handshake beside a session only ends by completing or timing out
        if not session.connected and not session.closed:
            if session._psk_store.unknown is not None:  # tinydtls has sent its alert
                self.fail_handshake(session, None)
            # else: a lost or reordered handshake record; the client retransmits, and the
            # deadline ends a handshake that never completes.
        else:
            self.stats.dropped_records += 1
            self._note(sockaddr, "record refused by DTLS (bad MAC, replay or malformed): dropped")

    def session_connected(self, session: _Session) -> None:
        self.stats.handshakes += 1
        addr = session.sockaddr
        if self._shadows.get(addr) is session:
            del self._shadows[addr]
            old = self._connections.get(addr)
            self._connections[addr] = session
            if old is not None and old is not session:
                old._inject_error(coap_error.LibraryShutdown("DTLS session replaced by a new "
                                                             "handshake from the same address"))

    handshake_timeout = 10.0

    def _handshake_deadline(self, session: _Session) -> None:
        self.fail_handshake(session, None)

    def fail_handshake(self, session: _Session, code: int | None) -> None:
        """Report (once) and end a handshake that failed: ``code`` is the alert, None for a
        timeout or an unknown identity."""
        if session.connected or session.closed:
            return
        self.handshake_failed(session, code)
        session._inject_error(FatalDTLSError(code if code is not None else "handshake failed"))

    def handshake_failed(self, session: _Session, code: int | None) -> None:
        store = session._psk_store
        what = (f"did not complete within {self.handshake_timeout:g} s" if code is None
                else f"failed: {_ALERTS.get(code, f'alert {code}')}")
        if store.unknown is not None and store.identity is None:
            reason = f"unknown PSK identity {store.unknown[:64].decode('utf-8', 'replace')!r}"
        elif store.identity is not None:
            reason = (f"handshake for PSK identity {store.identity.decode('utf-8', 'replace')!r} "
                      f"{what} (wrong key?)")
        else:
            reason = f"handshake {what}"
        self.stats.failed_handshakes += 1
        self.stats.failures = [*self.stats.failures[-99:], reason]
        log.warning("DTLS from %s refused: %s", session.hostinfo, reason)

    def _note(self, sockaddr: Any, reason: str) -> None:
        """Log ``reason`` once per address per minute (a flood must not flood the log)."""
        now = time.monotonic()
        last = self._noted.get(sockaddr)
        if last is not None and now - last < 60:
            return
        self._noted[sockaddr] = now
        while len(self._noted) > 1024:
            self._noted.popitem(last=False)
        log.warning("DTLS from %s: %s", hostportjoin(sockaddr[0], sockaddr[1]), reason)


class _DtlsInterface(MessageInterfaceTinyDTLSServer):
    _serversocket = _ServerSocket  # type: ignore[assignment]

    @classmethod
    async def create_dtls(cls, bind: tuple[str, int], mman: Any, log: Any, loop: Any,
                          resolve: PskResolver, max_sessions: int,
                          reuse_port: bool = False) -> _DtlsInterface:
        self = cls(mman, log, loop)
        self._pool = await _ServerSocket.create(bind, log, loop, self, reuse_port)
        self._pool.resolve = resolve
        self._pool.max_sockets = max_sessions
        return self

    async def recognize_remote(self, remote: Any) -> bool:
        return isinstance(remote, _Session) and remote._protocol is self._pool and not remote.closed

    async def determine_remote(self, request: Any) -> None:
        # A server cannot open a DTLS session towards a device; it answers on the device's own.
        return None


async def add_dtls_transport(context: Any, host: str, port: int, resolve: PskResolver,
                             max_sessions: int = 20000, *, reuse_port: bool = False) -> Any:
    """Bind coaps on (``host``, ``port``) into ``context``; returns the listener (its socket).

    ``reuse_port``: bind with SO_REUSEPORT (the caller keeps it off for port 0)."""
    loop = asyncio.get_running_loop()
    holder: list[_DtlsInterface] = []

    async def make(mman: Any) -> _DtlsInterface:
        mi = await _DtlsInterface.create_dtls((host, port), mman, context.log, loop, resolve,
                                              max_sessions, reuse_port)
        holder.append(mi)
        return mi

    await context._append_tokenmanaged_messagemanaged_transport(make)
    return holder[0]._pool


def dtls_interface(listener: Any) -> DtlsStats:
    """The counters of a listener returned by :func:`add_dtls_transport`."""
    return listener.stats  # type: ignore[no-any-return]


def close_session(remote: object, reason: str) -> bool:
    """End a DTLS session with close_notify (False if ``remote`` is not one).

    After Bootstrap-Finish: a client that talks to the bootstrap and the LwM2M server at the same
    address (as ours share a port) would otherwise reuse the session it authenticated with its
    bootstrap credential; closed, it connects again with the credential it was just given.
    """
    if not isinstance(remote, _Session) or remote.closed:
        return False
    try:
        remote._dtls_socket.close(remote._dtls_session)
    except Exception as e:  # noqa: BLE001 - the session goes away in any case
        log.debug("close_notify to %s failed: %s", remote.hostinfo, e)
    remote._inject_error(coap_error.LibraryShutdown(reason))
    return True


def bootstrap_only(remote: object) -> bool:
    """True when ``remote`` came in on the bootstrap-only coaps port."""
    return isinstance(remote, _Session) and remote._protocol.bootstrap_only


def session_identity(remote: object) -> tuple[str, Any] | None:
    """(PSK identity, credential) of a request's remote when it came over DTLS, else None."""
    if isinstance(remote, _Session):
        identity = remote.psk_identity
        if identity is not None:
            return identity, remote.credential
    return None
