"""Work the server does on its own after a device registers or updates: re-establishing its
stored observations and reading its summary (/3/0, and /33100/0 where present) into latest
values (``read_on_register``).

Each device has at most one such task; a start-up with many stored observations, or a burst of
Registers, runs it for a bounded number of devices at a time. It only talks to a device that is
reachable now (online; awake if in queue mode): it never queues.

Background requests come after the devices' own requests: they start at a paced rate
(:class:`Pacer`), a slow one while Registers and Updates keep arriving and a faster one when the
server is quiet, so a burst of Registers followed by a burst of background Reads (each an
exchange, a payload to decode, latest values to store) never takes the server's CPU from the
Updates that follow. A device that leaves has its task cancelled, queued or in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ..events import EventBus, new_event
from ..model import Path
from .errors import DeviceOffline, DeviceTimeout, LwM2MError
from .observations import ORIGIN, RESTORING, Observations
from .registration import Registration, RegistrationManager
from .requests import (
    DeviceRequest,
    DeviceResponse,
    ObserveCompositeRequest,
    ObserveRequest,
    ReadRequest,
    WriteAttributesRequest,
)
from .transport import BACKGROUND

__all__ = ["Background", "Pacer", "SUMMARY_PATHS"]

log = logging.getLogger(__name__)

# Read after each Register when read_on_register is on: device info, and the model object if any.
SUMMARY_PATHS = (Path.of(3, 0), Path.of(33100, 0))
# Seconds a background request may wait for its answer: a device that does not answer holds its
# one exchange (NSTART=1) no longer than this, and an operator's request takes it over at once.
BACKGROUND_TIMEOUT = 5.0
# Background requests started per second: during a burst of Registers (one arrived within
# BUSY_WINDOW seconds: the server's most loaded moment, and each Register adds background work of
# its own), while devices are sending other requests (Updates), and when none arrived for
# BUSY_WINDOW seconds. A background read costs about as much server CPU as a Register.
BURST_RATE = 2.0
BUSY_RATE = 20.0
IDLE_RATE = 500.0
BUSY_WINDOW = 0.5

Execute = Callable[[Registration, DeviceRequest, float], Awaitable[DeviceResponse]]


class Pacer:
    """Spaces the starts of background requests: at most ``burst_rate`` per second while
    Registers keep arriving, ``busy_rate`` while other requests of the devices do
    (:meth:`device_request`), ``idle_rate`` otherwise. Waiters start in the order they asked."""

    def __init__(self, busy_rate: float = BUSY_RATE, idle_rate: float = IDLE_RATE,
                 busy_window: float = BUSY_WINDOW, burst_rate: float = BURST_RATE) -> None:
        self.burst_rate = burst_rate
        self.busy_rate = busy_rate
        self.idle_rate = idle_rate
        self.busy_window = busy_window
        self._last_register = -float("inf")
        self._last_device_request = -float("inf")
        self._last_start = -float("inf")
        self._lock = asyncio.Lock()  # FIFO: one waiter at a time watches the clock

    def device_request(self, register: bool = False) -> None:
        """A device's own request arrived (``register``: a Register; else e.g. an Update)."""
        now = time.monotonic()
        self._last_device_request = now
        if register:
            self._last_register = now

    def busy(self) -> bool:
        return time.monotonic() - self._last_device_request < self.busy_window

    def rate(self) -> float:
        """Background requests per second allowed now."""
        now = time.monotonic()
        if now - self._last_register < self.busy_window:
            return self.burst_rate
        return self.busy_rate if now - self._last_device_request < self.busy_window else self.idle_rate

    async def wait(self) -> None:
        """Return when the caller's background request may start."""
        async with self._lock:
            while True:
                now = time.monotonic()
                # Recomputed after each sleep: device traffic may have started or stopped.
                start = self._last_start + 1.0 / self.rate()
                if start <= now:
                    self._last_start = now
                    return
                await asyncio.sleep(start - now)


class Background:
    """Per-device background tasks after Register/Update, bounded in number."""

    def __init__(self, registrations: RegistrationManager, observations: Observations,
                 events: EventBus, execute: Execute, awake: Callable[[str], bool], *,
                 request_timeout: float, read_on_register: bool, slots: int = 256,
                 background_timeout: float = BACKGROUND_TIMEOUT, pacer: Pacer | None = None) -> None:
        self._registrations = registrations
        self._observations = observations
        self._events = events
        self._execute = execute
        self._awake = awake
        # Background work waits less than an operator would (see BACKGROUND_TIMEOUT).
        self.request_timeout = min(request_timeout, background_timeout)
        self.read_on_register = read_on_register
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(slots)
        self.pacer = pacer or Pacer()

    async def _paced(self, reg: Registration, request: DeviceRequest, timeout: float) -> DeviceResponse:
        """``request`` to ``reg`` once the pacer lets a background request start."""
        await self.pacer.wait()
        return await self._execute(reg, request, timeout)

    def pending(self) -> int:
        """Devices with background work queued or in flight."""
        return len(self._tasks)

    def on_registered(self, reg: Registration) -> None:
        """A new registration: read its summary and re-observe (it dropped its observations)."""
        self.pacer.device_request(register=True)
        if self.read_on_register or self._observations.has_stored(reg.endpoint):
            self._start(reg, read_summary=self.read_on_register, restart=True)

    def on_updated(self, reg: Registration) -> None:
        """An Update: re-observe what is stored but not running (e.g. it was asleep at start-up)."""
        self.pacer.device_request()
        if self._observations.inactive(reg.endpoint):
            self._start(reg, read_summary=False, restart=False)

    def resume(self) -> None:
        """Once the transport is up after a restart: re-observe at once on every device still
        registered and not in queue mode (queue-mode devices: at their next Update)."""
        for ep in self._observations.stored_endpoints():
            reg = self._registrations.get(ep)
            if reg is None or not reg.online or reg.queue_mode:
                continue
            if self._registrations.owns(reg):
                self._start(reg, read_summary=False, restart=False)
            elif not self._registrations.node_alive(reg.owner or ""):
                # A cluster process that served it is gone: one live process takes it over.
                self._spawn_claimed(reg)

    def _spawn_claimed(self, reg: Registration) -> None:
        async def claim() -> None:
            mine = await self._registrations.take_over(reg)
            if mine is not None:
                self._start(mine, read_summary=False, restart=False)

        asyncio.ensure_future(claim())

    def cancel(self, endpoint: str) -> None:
        """The device left: stop its task."""
        task = self._tasks.pop(endpoint, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Cancel every task and wait for them to end (before the transport closes, so no request
        of theirs is left for the CoAP library to fail at shutdown)."""
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, reg: Registration, *, read_summary: bool, restart: bool) -> None:
        """Run the work for ``reg`` in a task of its own, after the 2.01/2.04 has left.
        ``restart`` replaces a task still running (a new registration)."""
        ep = reg.endpoint
        task = self._tasks.get(ep)
        if task is not None and not task.done():
            if not restart:
                return
            task.cancel()

        async def run() -> None:
            BACKGROUND.set(True)  # this task's own context: its requests give way to operators'
            await asyncio.sleep(0.01)  # let the 2.01/2.04 leave first
            try:
                async with self._slots:
                    if read_summary:
                        await self._read_summary(reg.endpoint, reg.registration_id)
                    await self._reestablish(ep)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-observing / reading %s after its registration failed", ep)
            finally:
                if self._tasks.get(ep) is current:
                    del self._tasks[ep]

        current = self._tasks[ep] = asyncio.ensure_future(run())

    def _reachable(self, ep: str, registration_id: str | None = None) -> Registration | None:
        """The registration of ``ep`` if a request may go out now (online; awake if queue mode)."""
        reg = self._registrations.get(ep)
        if reg is None or not reg.online or (reg.queue_mode and not self._awake(ep)):
            return None
        if registration_id is not None and reg.registration_id != registration_id:
            return None
        return reg

    async def _read_summary(self, ep: str, registration_id: str) -> None:
        """Read the summary paths into latest values; failures become ``read_on_register_failed``
        events."""
        for path in SUMMARY_PATHS:
            reg = self._reachable(ep, registration_id)
            if reg is None:
                return
            if path.object_id not in reg.object_ids:
                continue
            try:
                await self._paced(reg, ReadRequest(path), self.request_timeout)
            except LwM2MError as e:
                self._events.publish(new_event("read_on_register_failed", ep, path=str(path), error=str(e),
                                               coap_code=getattr(e, "coap_code", None)))
                if isinstance(e, (DeviceTimeout, DeviceOffline)):
                    return

    async def _reestablish(self, ep: str) -> None:
        """Observe again every stored observation of ``ep`` that is not active (with its
        Write-Attributes first). One the device refuses (4.xx) is dropped; one it does not answer
        stays stored for its next Register or Update."""
        for stored in self._observations.stored(ep):
            key = stored.paths
            reg = self._reachable(ep)
            if reg is None:
                return
            if self._observations.is_active(ep, key) or not self._observations.is_stored(ep, key, stored):
                continue
            paths = [str(p) for p in key]
            ORIGIN.set(stored.origin)  # this task's own context: the observation keeps its origin
            RESTORING.set(stored)
            try:
                if stored.attributes:
                    await self._paced(reg, WriteAttributesRequest(key[0], stored.attributes),
                                      self.request_timeout)
                request: DeviceRequest = (ObserveCompositeRequest(key) if stored.composite
                                          else ObserveRequest(key[0]))
                await self._paced(reg, request, self.request_timeout)
            except (DeviceTimeout, DeviceOffline) as e:
                self._events.publish(new_event("observation_restore_failed", ep, paths=paths, error=str(e)))
                return
            except LwM2MError as e:
                code = getattr(e, "coap_code", None) or ""
                if code.startswith("4."):
                    await self._observations.forget(ep, key)
                    self._events.publish(new_event("observation_ended", ep, paths=paths,
                                                   reason=f"re-observing failed: {e}"))
                else:
                    self._events.publish(new_event("observation_restore_failed", ep, paths=paths,
                                                   error=str(e)))
                continue
            finally:
                RESTORING.set(None)
            if not self._observations.is_stored(ep, key, stored):
                continue  # cancelled while it was being re-established
            self._events.publish(new_event("observation_restored", ep, paths=paths, origin=stored.origin))
