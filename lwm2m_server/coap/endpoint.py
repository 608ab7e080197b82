"""The server's one aiocoap context: serves the LwM2M site and carries requests to devices."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

# aiocoap binds with SO_REUSEPORT unless told otherwise. On Linux a port-0 bind may then land on
# a port another REUSEPORT socket of the same user already has, and datagrams get split between
# them; and two servers could silently share 5683. We want an exclusive port.
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

__all__ = ["CoapEndpoint", "ServerContext", "bound_udp_port"]


class ServerContext(Context):  # type: ignore[misc]
    """aiocoap's Context, serving requests without naming each rendering task after the
    request: aiocoap formats that name (the message's repr) for every request it serves, and
    nothing reads it; for a Block2 download that is a request per block."""

    def render_to_pipe(self, pipe: Pipe) -> None:
        # aiocoap 0.4's Context.render_to_pipe, without name=.
        run_driving_pipe(error_to_message(pipe, self.log), self._render_to_pipe(pipe))


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
                    coaps_bootstrap_port: int | None = None) -> int:
        """Bind and return the UDP port actually bound (``port`` 0 picks a free one).

        With ``coaps_port`` (0: any free one) DTLS is bound on the same host; ``resolve_psk``
        turns a PSK identity into (key, credential). ``coaps_bootstrap_port`` adds a DTLS port
        that serves only /bs.
        """
        # UDP only: LwM2M binding U; no CoAP-over-TCP listener on the same port number.
        # aiocoap logs every refused request, duplicate and retransmission at INFO under
        # "coap-server", and warns once per odd datagram: a log line per datagram an attacker
        # sends. Ours are counted in /metrics and logged rate-limited (datagrams.py); its own
        # pass at WARNING and through the same rate limit.
        aiocoap_log = logging.getLogger("coap-server")
        if aiocoap_log.level == logging.NOTSET:
            aiocoap_log.setLevel(logging.WARNING)
        if not any(isinstance(f, RateLimitFilter) for f in aiocoap_log.filters):
            aiocoap_log.addFilter(RateLimitFilter())
        self.context = await ServerContext.create_server_context(self.site, bind=(host, port),
                                                                 transports=["udp6"])
        install_datagram_guard(self.context, max_datagram=self.max_datagram,
                               max_payload=self.max_payload)
        from .dtls import add_dtls_transport

        for name, dtls_port in (("coaps", coaps_port), ("coaps bootstrap", coaps_bootstrap_port)):
            if dtls_port is None:
                continue
            try:
                listener = await add_dtls_transport(self.context, host, dtls_port,
                                                    resolve_psk or (lambda identity: None),
                                                    max_dtls_sessions)
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
