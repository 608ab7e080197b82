"""The server's one aiocoap context: serves the LwM2M site and carries requests to devices."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

# aiocoap binds with SO_REUSEPORT unless told otherwise. On Linux a port-0 bind may then land on
# a port another REUSEPORT socket of the same user already has, and datagrams get split between
# them; and two servers could silently share 5683. We want an exclusive port unless the server
# is a cluster node (PostgreSQL) with a fixed port: see CoapEndpoint.start.
os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")

from aiocoap import Context  # noqa: E402
from aiocoap.pipe import Pipe, error_to_message, run_driving_pipe  # noqa: E402

from ..protocol.devices import DeviceManager
from ..protocol.registration import RegistrationManager
from .datagrams import RateLimitFilter, install_datagram_guard
from .site import LwM2MSite
from .transport import AiocoapTransport

if TYPE_CHECKING:
    from .dtls import PskResolver

__all__ = ["CoapEndpoint", "ServerContext", "bound_udp_port", "shared_port",
           "tune_garbage_collector", "GC_YOUNG_THRESHOLD"]

_bind_lock = asyncio.Lock()  # AIOCOAP_REUSE_PORT is process-wide: one bind at a time changes it


def shared_port(reuse_port: bool, port: int) -> bool:
    """Whether to bind ``port`` with SO_REUSEPORT: asked for, and a fixed port (a port-0 bind
    with SO_REUSEPORT may land on a port another server of the same user holds)."""
    return reuse_port and port != 0


@contextlib.asynccontextmanager
async def _aiocoap_reuse_port(on: bool) -> AsyncIterator[None]:
    """aiocoap's udp6 transport reads AIOCOAP_REUSE_PORT when it binds: set it for one bind."""
    if os.environ.get("AIOCOAP_REUSE_PORT") == ("1" if on else "0"):
        yield  # already so: leave the environment alone
        return
    async with _bind_lock:  # other contexts bound meanwhile in this loop would see it too
        before = os.environ.get("AIOCOAP_REUSE_PORT")
        os.environ["AIOCOAP_REUSE_PORT"] = "1" if on else "0"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("AIOCOAP_REUSE_PORT", None)
            else:
                os.environ["AIOCOAP_REUSE_PORT"] = before




class ServerContext(Context):
    """aiocoap's Context, with a constant name for the task that renders each incoming request.

    aiocoap names it "Rendering for %r" % request: a repr of the message and of its remote
    (an ``ipaddress`` parse of the peer's and of the local address) for every request, 5-10% of
    a Register's CPU, for a name nobody reads unless debugging asyncio tasks.
    """

    def render_to_pipe(self, pipe: Pipe) -> None:
        callbacks = pipe._event_callbacks
        if callbacks:  # the token manager's, which sends the response
            pipe.on_interest_end(functools.partial(_break_cycle, callbacks[0][0]))
        run_driving_pipe(error_to_message(pipe, self.log), _Render(self, pipe), name="LwM2M request")


class _Render:
    """``context._render_to_pipe(pipe)``, made only when awaited: a request superseded before
    its task ran (the same token again, read in the same batch of datagrams) leaves no coroutine
    that was never awaited (a RuntimeWarning each)."""

    __slots__ = ("_context", "_pipe")

    def __init__(self, context: Context, pipe: Pipe) -> None:
        self._context = context
        self._pipe = pipe

    def __await__(self) -> Any:
        return self._context._render_to_pipe(self._pipe).__await__()


def _break_cycle(requester: Any) -> None:
    """Let reference counting free a served request at once.

    aiocoap's token manager hands the pipe a closure that holds, in a cell, the function that
    unregisters that closure from the pipe: a reference cycle through the pipe, which holds the
    request message with its options, about twenty objects per request that only the cycle
    collector could free (see GC_YOUNG_THRESHOLD). Once the request is answered nobody calls
    that function again; emptying its cell breaks the cycle.
    """
    for cell in getattr(requester, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, functools.partial) and value.args[:1] == (requester,):
            cell.cell_contents = None


# Objects allocated (net) between two young-generation collections of Python's cycle collector.
# With the interpreter's 700 a collection ran every few requests under load: each promoted the
# requests then in flight (a few hundred objects each), and the full collections that followed
# walked every registration again (10-19% of the server's CPU under 200 concurrent clients,
# before _break_cycle below took most of the garbage away). 10,000 makes them rare.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector(young: int = GC_YOUNG_THRESHOLD) -> None:
    """Raise the young-generation threshold of the cycle collector to ``young`` (process-wide;
    never lowered, and left alone while the collector is disabled)."""
    if not gc.isenabled():
        return
    first, *rest = gc.get_threshold()
    if first and first < young:
        gc.set_threshold(young, *rest)


def bound_udp_port(context: Context) -> int:
    """The UDP port an aiocoap context is bound to (after binding port 0)."""
    for ri in context.request_interfaces:
        mm = getattr(ri, "token_interface", None)
        udp = getattr(mm, "message_interface", None)
        tr = getattr(udp, "transport", None)
        if tr is not None:
            return int(tr.get_extra_info("socket").getsockname()[1])
    raise RuntimeError("no UDP transport bound")


class CoapEndpoint:
    """Binds the CoAP server (``host`` "::" serves IPv4 and IPv6) and exposes its transport.

    Plain CoAP and, when asked, CoAP over DTLS (coaps) share the one context: requests to a
    device leave from the socket (and DTLS session) it registered over.
    """

    def __init__(self, registrations: RegistrationManager, devices: DeviceManager,
                 max_payload: int = 64 * 1024, max_datagram: int = 16 * 1024) -> None:
        self.site = LwM2MSite(registrations, devices, max_payload)
        self.max_payload = max_payload
        self.max_datagram = max_datagram
        self.context: Context | None = None
        self.transport: AiocoapTransport | None = None
        self.dtls: Any = None  # the coaps listener (coap/dtls.py), when bound
        self.dtls_bootstrap: Any = None  # the coaps listener that serves only /bs, when bound

    async def start(self, host: str, port: int, *, coaps_port: int | None = None,
                    resolve_psk: PskResolver | None = None, max_dtls_sessions: int = 20000,
                    coaps_bootstrap_port: int | None = None, reuse_port: bool = False) -> int:
        """Bind and return the UDP port actually bound (``port`` 0 picks a free one).

        With ``coaps_port`` (0: any free one) DTLS is bound on the same host; ``resolve_psk``
        turns a PSK identity into (key, credential). ``coaps_bootstrap_port`` adds a DTLS port
        that serves only /bs. ``reuse_port`` binds the fixed (non-zero) ports with SO_REUSEPORT,
        so that several processes of a cluster share them; port 0 stays exclusive.
        """
        # UDP only: LwM2M binding U; no CoAP-over-TCP listener on the same port number.
        # aiocoap logs every refused request, duplicate and retransmission at INFO under
        # "coap-server", and warns once per odd datagram: a log line per datagram an attacker
        # sends. Ours are counted in /metrics and logged rate-limited (datagrams.py); its own
        # pass at WARNING and through the same rate limit.
        tune_garbage_collector()
        aiocoap_log = logging.getLogger("coap-server")
        if aiocoap_log.level == logging.NOTSET:
            aiocoap_log.setLevel(logging.WARNING)
        if not any(isinstance(f, RateLimitFilter) for f in aiocoap_log.filters):
            aiocoap_log.addFilter(RateLimitFilter())
        async with _aiocoap_reuse_port(shared_port(reuse_port, port)):
            self.context = await ServerContext.create_server_context(
                self.site, bind=(host, port), transports=["udp6"])
        install_datagram_guard(self.context, max_datagram=self.max_datagram,
                               max_payload=self.max_payload, answer_get=self.site.answer_get)
        from .dtls import add_dtls_transport

        for name, dtls_port in (("coaps", coaps_port), ("coaps bootstrap", coaps_bootstrap_port)):
            if dtls_port is None:
                continue
            try:
                listener = await add_dtls_transport(self.context, host, dtls_port,
                                                    resolve_psk or (lambda identity: None),
                                                    max_dtls_sessions,
                                                    reuse_port=shared_port(reuse_port, dtls_port))
            except BaseException as e:
                await self.context.shutdown()
                self.context = None
                if isinstance(e, OSError):  # say which of the ports failed
                    raise OSError(e.errno, f"{name} port {dtls_port}: {e.strerror or e}") from None
                raise
            if name == "coaps":
                self.dtls = listener
            else:
                listener.bootstrap_only = True
                self.dtls_bootstrap = listener
        self.transport = AiocoapTransport(self.context)
        return self.bound_port()

    def bound_coaps_port(self) -> int | None:
        """The coaps UDP port, None when DTLS is off."""
        return self.dtls.bound_port() if self.dtls is not None else None

    def bound_coaps_bootstrap_port(self) -> int | None:
        """The bootstrap-only coaps UDP port, None when there is none."""
        return self.dtls_bootstrap.bound_port() if self.dtls_bootstrap is not None else None

    def bound_port(self) -> int:
        assert self.context is not None
        return bound_udp_port(self.context)

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
