"""DTLS for a simulated device: aiocoap's tinydtls client transport in the device's context.

A device that talks to a ``coaps://`` server (or bootstrap server) gets the tinydtls transport
next to its plain UDP socket, with its PSK for that URI. The DTLS session has its own UDP
socket; the server's requests arrive on it and are served by the device's site like plain ones.
Two things aiocoap leaves to the user are done here: the session is kept alive while the device
is registered (aiocoap holds it weakly, and a server cannot reopen it), and the device's radio
faults (dropped messages) apply inside the DTLS session as they do to plain CoAP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiocoap
from aiocoap.credentials import DTLS
from aiocoap.transports.tinydtls import (
    CloseNotifyReceived,
    DTLSClientConnection,
    FatalDTLSError,
    MessageInterfaceTinyDTLS,
)

__all__ = ["DTLS_ERRORS", "add_dtls_client", "set_psk"]

# What a request over DTLS may fail with besides aiocoap's own errors.
DTLS_ERRORS: tuple[type[BaseException], ...] = (FatalDTLSError, CloseNotifyReceived)


class _Connection(DTLSClientConnection):
    """A device's DTLS session; CoAP messages it receives pass the device's radio filter.

    The filter applies to the CoAP messages inside the session, not to handshake records:
    tinydtls' server does not send its last flight again when a client repeats its own, so a
    lost final flight would stall the device's handshake until its DTLS timeout instead of
    exercising the CoAP retransmissions the fault options are for.
    """

    radio: Callable[[], bool] = staticmethod(lambda: True)  # type: ignore[assignment]

    def _read(self, sender: Any, data: bytes) -> int:
        if not self.radio():
            return len(data)  # lost on the air
        return int(super()._read(sender, data))

    @property
    def local_port(self) -> int:
        return int(self._transport.get_extra_info("socket").getsockname()[1])


class _Interface(MessageInterfaceTinyDTLS):
    radio: Callable[[], bool] = staticmethod(lambda: True)  # type: ignore[assignment]

    def _connection_for_address(self, host: str, port: int, pskId: bytes, psk: bytes) -> Any:
        try:
            return self._pool[(host, port, pskId)]
        except KeyError:
            conn = _Connection(host, port, pskId, psk, self)
            conn.radio = self.radio
            self._pool[(host, port, pskId)] = conn
            return conn


async def add_dtls_client(ctx: aiocoap.Context, radio: Callable[[], bool]) -> None:
    """Give ``ctx`` a DTLS client transport whose datagrams pass ``radio()`` (False: dropped)."""
    loop = asyncio.get_running_loop()

    async def make(mman: Any) -> _Interface:
        mi = _Interface(mman, ctx.log, loop)
        mi.radio = radio
        return mi

    await ctx._append_tokenmanaged_messagemanaged_transport(make)


def set_psk(ctx: aiocoap.Context, uri: str, identity: bytes, key: bytes) -> None:
    """Use (``identity``, ``key``) for every coaps request under ``uri`` (scheme://host:port)."""
    ctx.client_credentials[f"{uri.rstrip('/')}/*"] = DTLS(psk=key, client_identity=identity)


def session_port(remote: Any) -> int | None:
    """The local UDP port of a DTLS session (a response's remote), None for plain CoAP."""
    return remote.local_port if isinstance(remote, _Connection) else None
