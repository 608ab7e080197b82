"""One request and its answer with a device, through the :class:`~.transport.Transport`.

Transport failures become the protocol's errors (DeviceTimeout, DeviceError), a device that
leaves during the exchange ends it with DeviceOffline, and a request the device refuses in one
content format goes out again in the next (:meth:`Exchange.with_formats`). Every answer tells the
queue that the device is awake (``on_answer``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..model import Path
from .errors import DeviceError, DeviceOffline, DeviceTimeout
from .formats import FALLBACK_CODES, FormatMemory
from .payloads import device_failure
from .registration import Registration, RegistrationManager
from .transport import (IncomingResponse, ObservationHandle, OutgoingRequest, Transport,
                        TransportBusy, TransportError, TransportPreempted, TransportTimeout)

__all__ = ["Exchange"]


class Exchange:
    """Sends requests to registered devices and waits for their answers."""

    def __init__(self, registrations: RegistrationManager, formats: FormatMemory,
                 on_answer: Callable[[str], None]) -> None:
        self.registrations = registrations
        self.formats = formats
        self.transport: Transport | None = None
        self._on_answer = on_answer
        self._gone: dict[str, asyncio.Future[str]] = {}

    def device_left(self, endpoint: str, reason: str) -> None:
        """End every exchange in flight with ``endpoint`` (it expired or de-registered)."""
        gone = self._gone.pop(endpoint, None)
        if gone is not None and not gone.done():
            gone.set_result(reason)

    def running(self) -> Transport:
        if self.transport is None:
            raise DeviceOffline("the CoAP endpoint is not running")
        return self.transport

    async def roundtrip(self, reg: Registration, req: OutgoingRequest, timeout: float) -> IncomingResponse:
        """Send ``req`` to ``reg`` and return the answer, whatever its code."""
        transport = self.running()
        gone = self._gone.get(reg.endpoint)
        if gone is None or gone.done():
            gone = self._gone[reg.endpoint] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(transport.request(
            self.registrations.peer(reg.endpoint), reg.address, req, timeout))
        racers: set[asyncio.Future[Any]] = {task, gone}
        try:
            done, _ = await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the caller gave up: the exchange goes with it
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            raise DeviceOffline(f"device {reg.endpoint!r} went offline during the request: {gone.result()}")
        try:
            resp = task.result()
        except TransportBusy:
            raise DeviceTimeout(
                f"request to {reg.endpoint!r} was not sent within {timeout:.3g} s: another exchange "
                "with the device was in flight the whole time (CoAP allows one at a time); the "
                "device may be unreachable") from None
        except TransportTimeout:
            raise DeviceTimeout(f"device {reg.endpoint!r} did not answer within {timeout:.3g} s") from None
        except TransportPreempted as e:
            raise DeviceTimeout(f"background request to {reg.endpoint!r}: {e}") from None
        except TransportError as e:
            raise DeviceError(f"device {reg.endpoint!r} could not be reached: {e}") from None
        self._on_answer(reg.endpoint)
        return resp

    async def with_formats(self, reg: Registration, formats: list[int],
                           make: Callable[[int], OutgoingRequest], timeout: float,
                           what: str) -> tuple[IncomingResponse, int]:
        """Send ``make(fmt)`` for each format until the device stops answering 4.06/4.15;
        returns the answer and the format it was given in."""
        deadline = time.monotonic() + timeout
        resp: IncomingResponse | None = None
        for fmt in formats:
            left = max(deadline - time.monotonic(), 0.05)
            resp = await self.roundtrip(reg, make(fmt), left)
            if resp.code not in FALLBACK_CODES:
                if resp.success:
                    self.formats.learn(reg.endpoint, fmt, refused=fmt != formats[0])
                return resp, fmt
        assert resp is not None
        raise device_failure(reg, resp, f"{what} in every format it may support "
                                        f"({', '.join(str(f) for f in formats)})")

    async def observe(self, reg: Registration, req: OutgoingRequest, timeout: float,
                      on_notify: Callable[[IncomingResponse], None],
                      on_end: Callable[[str], None]) -> tuple[IncomingResponse, ObservationHandle]:
        """Start an observation: the first answer and the handle that cancels it."""
        transport = self.running()
        try:
            resp, handle = await transport.observe(self.registrations.peer(reg.endpoint), reg.address,
                                                   req, timeout, on_notify, on_end)
        except TransportTimeout:
            raise DeviceTimeout(f"device {reg.endpoint!r} did not answer within {timeout:.3g} s") from None
        except TransportError as e:
            raise DeviceError(f"device {reg.endpoint!r} could not be reached: {e}") from None
        self._on_answer(reg.endpoint)
        return resp, handle

    def segments(self, reg: Registration, path: Path) -> tuple[str, ...]:
        """The Uri-Path of ``path`` on ``reg`` (under its alternate root path, if any)."""
        root = tuple(s for s in reg.root_path.split("/") if s)
        return root + tuple(path.segments())
