"""The contract between the protocol layer and the CoAP adapter: plain request/response values.

``protocol/`` builds :class:`OutgoingRequest` values and receives :class:`IncomingResponse`
values; ``coap/transport.py`` is the one implementation over aiocoap.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

__all__ = ["OutgoingRequest", "IncomingResponse", "Transport", "ObservationHandle",
           "TransportError", "TransportTimeout", "TransportBusy", "TransportPreempted",
           "BACKGROUND"]

# True in the tasks of work the server does on its own (protocol/background.py): the transport
# sends such requests without holding the device's one exchange (NSTART=1) against an operator's.
BACKGROUND: ContextVar[bool] = ContextVar("lwm2m_background_request", default=False)


class TransportError(Exception):
    """The request could not be carried (socket error, reset by the peer)."""


class TransportTimeout(TransportError):
    """No answer from the peer in time."""


class TransportBusy(TransportTimeout):
    """The request was never sent: another exchange with the peer was in flight the whole time
    (CoAP allows one outstanding confirmable exchange per peer, NSTART=1)."""


class TransportPreempted(TransportError):
    """A background request was given up so that an operator's request could go out at once."""


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A CoAP request to a device; ``method`` is GET, PUT, POST, DELETE, FETCH or IPATCH;
    ``observe`` 0 registers an observation, 1 cancels one."""

    method: str
    path: tuple[str, ...]
    query: tuple[str, ...] = ()
    payload: bytes = b""
    content_format: int | None = None
    accept: int | None = None
    observe: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingResponse:
    """A device's answer; ``code`` in dotted form ("2.05")."""

    code: str
    payload: bytes = b""
    content_format: int | None = None
    location_path: tuple[str, ...] = ()

    @property
    def success(self) -> bool:
        return self.code.startswith("2.")


class ObservationHandle(Protocol):
    def cancel(self, notify_device: bool = True) -> None:
        """Stop receiving notifications (the next one is answered with a Reset); with
        ``notify_device`` the device is also told at once (the request again with Observe=1)."""


class Transport(Protocol):
    async def request(self, peer: object | None, address: tuple[str, int], request: OutgoingRequest,
                      timeout: float) -> IncomingResponse:
        """Send ``request`` to the device (its ``peer`` handle, else its address)."""

    async def observe(self, peer: object | None, address: tuple[str, int], request: OutgoingRequest,
                      timeout: float, on_notify: Callable[[IncomingResponse], None],
                      on_end: Callable[[str], None]) -> tuple[IncomingResponse, ObservationHandle]:
        """Register an observation; the first answer is returned, later ones go to ``on_notify``."""
