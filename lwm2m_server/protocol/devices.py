"""The device-management service: the one entry point the REST API, the console and the rollout
engine use to talk to registered devices (LwM2M 1.1 §6.3-6.5, §7).

:class:`DeviceManager` only wires the parts together and follows registration changes; each part
is a module with one job:

- ``validation.py``: a request checked against the registration and object definitions
- ``formats.py``: which content format to ask for, and what worked per device
- ``payloads.py``: node values encoded and answers decoded
- ``exchange.py``: one request and its answer through the transport
- ``operations.py``: Read, Write, Execute, Create, Delete, Discover, Write-Attributes, composite
- ``observations.py``: Observe, notifications, persisted observations
- ``queue.py``: queue mode (requests waiting for sleeping devices, awake windows)
- ``background.py``: re-observing and the summary read after Register/Update
- ``send.py``: the Send operation; ``latest.py``: the latest value per path

Never imports aiocoap: requests go out through a :class:`~.transport.Transport`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ..events import EventBus
from ..metrics import REQUESTS
from ..model import ObjectRegistry, Path, Value
from .background import Background
from .errors import DeviceNotFound, DeviceOffline, DeviceTimeout, InvalidRequest
from .exchange import Exchange
from .formats import FormatMemory, formats_for
from .latest import LatestValues
from .observations import OBSERVATION_ORIGINS, ORIGIN, Observations, StoredObservation
from .operations import Operations
from .queue import QueuedRequest, RequestQueue
from .registration import Registration, RegistrationManager
from .requests import (
    CancelObserveCompositeRequest,
    CancelObserveRequest,
    DeviceRequest,
    DeviceResponse,
    EmptyResponse,
    operation_name,
    response_to_json,
)
from .send import SendReceiver
from .transport import Transport
from .validation import validate

__all__ = ["DeviceManager", "response_to_json", "formats_for"]

log = logging.getLogger(__name__)


class DeviceManager:
    """Sends device-management requests, keeps observations, queues requests for sleeping
    devices and keeps the latest value per path."""

    def __init__(self, registrations: RegistrationManager, store: Any, events: EventBus,
                 registry: ObjectRegistry, *, request_timeout: float = 10.0,
                 queue_timeout: float = 86400.0, awake_window: float = 93.0,
                 read_on_register: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.registrations = registrations
        self.request_timeout = request_timeout
        self._registry = registry
        self.formats = FormatMemory()
        self.latest_values = LatestValues(store)
        # Every message from a device (answer, notification, Send) keeps a queue-mode device awake.
        self.exchange = Exchange(registrations, self.formats, lambda ep: self.queue.mark_awake(ep))
        self.observing = Observations(self.exchange, self.latest_values, store, events, registry,
                                          lambda ep: self.queue.mark_awake(ep))
        self.operations = Operations(self.exchange, self.observing, self.latest_values, registry)
        self.queue = RequestQueue(registrations, store, events, self.operations.execute,
                                  request_timeout=request_timeout, queue_timeout=queue_timeout,
                                  awake_window=awake_window, clock=clock)
        self.background = Background(registrations, self.observing, events, self.operations.execute,
                                     self.queue.awake, request_timeout=request_timeout,
                                     read_on_register=read_on_register)
        self.sends = SendReceiver(registrations, registry, self.latest_values, events,
                                  self.queue.mark_awake)
        registrations.listeners.append(self._on_registration)
        # Cluster: ``forward(registration, request, timeout, origin)`` runs a request in the
        # process that owns the device (cluster/forward.py); None for a single process.
        self.forward: Callable[..., Awaitable[DeviceResponse]] | None = None

    @property
    def transport(self) -> Transport | None:
        """The CoAP side, set once the endpoint is bound (None before: requests fail offline)."""
        return self.exchange.transport

    @transport.setter
    def transport(self, transport: Transport | None) -> None:
        self.exchange.transport = transport

    # --- public API -------------------------------------------------------------
    async def send(self, endpoint: str, request: DeviceRequest, timeout: float | None = None, *,
                   origin: str = "api") -> DeviceResponse:
        """Send ``request`` to the device registered as ``endpoint`` and return its response.

        Raises DeviceNotFound, DeviceOffline, DeviceTimeout, DeviceError, InvalidRequest; for a
        sleeping queue-mode device the request is persisted and Queued(request_id) is raised at
        once (timeout None or 0) or after waiting up to ``timeout`` seconds for the result.
        ``origin`` ("api", "rollout", "internal") is recorded with an observation it starts.
        """
        if origin not in OBSERVATION_ORIGINS:
            raise InvalidRequest(f"origin must be one of {', '.join(OBSERVATION_ORIGINS)}, got {origin!r}")
        ORIGIN.set(origin)  # every send sets it: within this call it is this call's origin
        reg = self.registrations.get(endpoint)
        if reg is None:
            raise DeviceNotFound(f"no device registered as {endpoint!r}")
        validate(self._registry, reg, request)
        if not self.registrations.owns(reg) and self.forward is not None:
            owned = await self._owned_or_forward(reg, request, timeout, origin)
            if not isinstance(owned, Registration):
                return owned
            reg = owned
        if isinstance(request, (CancelObserveRequest, CancelObserveCompositeRequest)) and (
                not reg.online or (reg.queue_mode and not self.queue.awake(endpoint))):
            # Nothing to tell a device that is gone or asleep (its next Register drops it
            # anyway): forget the observation here, so it is not re-established later.
            key = (request.path,) if isinstance(request, CancelObserveRequest) else tuple(request.paths)
            await self.observing.cancel(endpoint, key)
            return EmptyResponse("2.05")
        if not reg.online:
            REQUESTS.inc(operation_name(request), "offline")
            raise DeviceOffline(f"device {endpoint!r} is offline: its lifetime passed without an update")
        if reg.queue_mode and not self.queue.awake(endpoint):
            return await self.queue.enqueue_and_wait(reg, request, timeout)
        wait = timeout if timeout else self.request_timeout
        try:
            return await self.operations.execute(reg, request, wait)
        except DeviceTimeout:
            if reg.queue_mode:  # it fell asleep: keep the request for its next wake-up
                self.queue.asleep(endpoint)
                return await self.queue.enqueue_and_wait(reg, request, None)
            raise

    async def _owned_or_forward(self, reg: Registration, request: DeviceRequest,
                                timeout: float | None, origin: str) -> Registration | DeviceResponse:
        """Another process of the cluster owns ``reg``: forward ``request`` to it; when that
        process is gone, take the device over (as a restarted single process does) and return
        the registration to send from here."""
        regs = self.registrations
        assert self.forward is not None
        for _ in range(20):
            if regs.owns(reg):
                return reg
            if regs.node_alive(reg.owner or ""):
                return await self.forward(reg, request, timeout, origin)
            taken = await regs.take_over(reg)
            if taken is not None:
                return taken
            await asyncio.sleep(0.05)  # another process took it over: learn which
            reg = regs.get(reg.endpoint) or reg
        raise DeviceOffline(f"device {reg.endpoint!r}: its server process {reg.owner} is gone "
                            "and no running process could take it over; try again")

    def latest(self, endpoint: str) -> dict[Path, tuple[Value, datetime]]:
        """The last observed, read or sent value per path of ``endpoint``, with when it arrived."""
        return self.latest_values.of(endpoint)

    def get_request(self, request_id: str) -> QueuedRequest:
        """A queued request by id (for polling); RequestNotFound (404) when unknown."""
        return self.queue.get(request_id)

    def queued_for(self, endpoint: str) -> list[QueuedRequest]:
        """The requests still waiting for ``endpoint``, oldest first."""
        return self.queue.pending_for(endpoint)

    def end_awake_window(self, endpoint: str) -> None:
        """Treat a queue-mode device as asleep from now on (its awake window is over)."""
        self.queue.asleep(endpoint)

    def observations(self, endpoint: str) -> list[tuple[Path, ...]]:
        """The paths (one tuple per observation) the server observes on ``endpoint`` (for a
        device another process of a cluster serves: the stored ones)."""
        reg = self.registrations.get(endpoint)
        if reg is not None and not self.registrations.owns(reg):
            return [o.paths for o in self.observing.stored(endpoint)]
        return self.observing.active(endpoint)

    def stored_observations(self, endpoint: str) -> list[StoredObservation]:
        """The persisted observations of ``endpoint``, active or waiting to be re-established."""
        return self.observing.stored(endpoint)

    async def handle_send(self, address: tuple[str, int], payload: bytes,
                          content_format: int | None) -> str:
        """The Send operation (POST /dp); see :class:`~.send.SendReceiver`."""
        return await self.sends.handle(address, payload, content_format)

    # --- registration changes ---------------------------------------------------
    def _on_registration(self, reg: Registration, kind: str) -> None:
        ep = reg.endpoint
        if kind == "registered":
            self.formats.forget(ep)
            # A new registration means the client dropped its observations (§6.2.1).
            self.observing.drop_running(ep)
        if kind in ("registered", "updated"):
            self.queue.on_contact(reg)
            if kind == "registered":
                self.background.on_registered(reg)
            else:
                self.background.on_updated(reg)
            return
        if kind in ("released", "removed"):
            # Another process of the cluster serves it now (or it left there): stop what runs
            # for it here; what is stored (observations, queued requests) stays, for the owner.
            self.exchange.device_left(ep, f"it is now served by another server process ({reg.owner})")
            self.background.cancel(ep)
            self.formats.forget(ep)
            self.observing.drop_running(ep)
            self.queue.release(ep)
            if kind == "removed":
                self.latest_values.drop(ep)
                self.observing.drop(ep)
                self.queue.forget_endpoint(ep)
            return
        # expired or deregistered: end what is in flight and fail what waits for it.
        reason = "its lifetime passed without an update" if kind == "expired" else "it de-registered"
        self.exchange.device_left(ep, reason)
        self.background.cancel(ep)
        self.formats.forget(ep)
        if kind in ("deregistered", "purged"):  # the store dropped values and observations too
            self.latest_values.drop(ep)
            self.observing.drop(ep)
        else:
            self.observing.drop_running(ep)
        self.queue.on_left(ep, reason)

    # --- lifecycle -----------------------------------------------------------------
    def resume(self) -> None:
        """Once the transport is up after a restart: re-establish observations."""
        self.background.resume()

    async def restore(self) -> None:
        """Load latest values, unfinished queued requests and observations from the store."""
        await self.latest_values.restore()
        await self.observing.restore()
        await self.queue.restore()

    async def expire_queued(self) -> None:
        """Mark expired every queued request older than the queue timeout."""
        await self.queue.expire()

    async def run_housekeeping(self, interval: float = 1.0) -> None:
        """Expire old queued requests every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.queue.expire()
            except Exception:
                log.exception("queued-request housekeeping failed")

    async def close(self) -> None:
        self.observing.close()
        self.queue.close()
        await self.background.close()
