"""What the rollout engine needs from devices: a small ``DevicePort`` interface and its real
implementation on ``LwM2MServer.devices.send``.

The port raises the protocol layer's errors (``DeviceOffline``, ``DeviceTimeout``,
``DeviceError``, ``DeviceNotFound``) unchanged; the engine decides what they mean for a target.
``wait`` returns early when anything happens to the device (a notification, an Update, a new
registration), so drivers re-read the device's state right then instead of polling blindly; it
says whether something happened, and with a ``mark`` taken before a read it also counts what
happened during the read.
Observations the rollout starts carry the origin ``rollout``; the engine cancels them when the
target's attempt ends, and leaves alone observations someone else started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Protocol

from ..model import Path, Value
from ..protocol.errors import DeviceError, DeviceTimeout, InvalidRequest, LwM2MError, Queued
from ..protocol.requests import (CancelObserveRequest, ExecuteRequest, ObserveRequest,
                                 ReadRequest, WriteRequest)
from ..tasks import cancel_and_wait

if TYPE_CHECKING:
    from ..events import EventBus
    from ..server import LwM2MServer

__all__ = ["DevicePort", "EndpointWaiter", "ServerDevicePort", "ROLLOUT_ORIGIN"]

ROLLOUT_ORIGIN = "rollout"  # the origin recorded with the observations a rollout starts

log = logging.getLogger(__name__)


class DevicePort(Protocol):
    """Device operations of the rollout drivers."""

    async def read(self, endpoint: str, path: Path) -> dict[Path, Value]: ...

    async def write(self, endpoint: str, path: Path, value: Value) -> None: ...

    async def execute(self, endpoint: str, path: Path, args: str | None = None) -> None: ...

    async def observe(self, endpoint: str, path: Path) -> bool:
        """Observe ``path`` for the rollout; True when the rollout owns the observation (it
        started it, now or before a restart), False when another origin already observes it."""
        ...

    async def cancel_observe(self, endpoint: str, path: Path) -> None:
        """Cancel the rollout's observation of ``path``."""
        ...

    def mark(self, endpoint: str) -> int:
        """A mark of what has happened to ``endpoint`` so far, for ``wait(since=...)``."""
        ...

    async def wait(self, endpoint: str, timeout: float, since: int | None = None) -> bool:
        """Return when something happened to ``endpoint`` (after the ``mark`` ``since``, at
        once if it did already) or after ``timeout`` seconds; True when something happened."""
        ...

    def address(self, endpoint: str) -> tuple[str, int] | None:
        """The device's registered (host, port), or None when it is not registered."""
        ...

    def forget(self, endpoint: str) -> None:
        """Stop keeping ``mark``s of ``endpoint`` (its target attempt ended)."""
        ...


class EndpointWaiter:
    """One EventBus subscription fanned out per endpoint: ``wait(endpoint, timeout, since)``.

    One subscriber for the whole engine, not one per target, so a thousand targets cost one
    queue put per event instead of a thousand. Each endpoint being watched has a count of the
    events about it (``mark``): a driver takes the mark before it reads the device, so a
    notification that arrives during the read ends its next wait at once instead of being
    missed.
    """

    def __init__(self, events: EventBus | None = None) -> None:
        self._events = events
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._seen: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._events is not None and self._task is None:
            self._task = asyncio.create_task(self._pump())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _pump(self) -> None:
        assert self._events is not None
        async for event in self._events.subscribe():
            if event.endpoint is not None and event.kind != "deployment_target":
                self.poke(event.endpoint)

    def poke(self, endpoint: str) -> None:
        """Wake every ``wait`` on ``endpoint``."""
        if endpoint in self._seen:
            self._seen[endpoint] += 1
        for ev in self._waiters.get(endpoint, ()):
            ev.set()

    def mark(self, endpoint: str) -> int:
        """The count of events about ``endpoint`` so far; the first mark starts the count
        (events about devices no target watches cost nothing)."""
        return self._seen.setdefault(endpoint, 0)

    def forget(self, endpoint: str) -> None:
        """Stop counting events about ``endpoint`` (its target attempt ended)."""
        self._seen.pop(endpoint, None)

    async def wait(self, endpoint: str, timeout: float, since: int | None = None) -> bool:
        if since is not None and self._seen.get(endpoint, 0) > since:
            return True
        ev = asyncio.Event()
        self._waiters[endpoint].add(ev)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives together with the event, and a stopped engine would wait for its tasks.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await ev.wait()
            return ev.is_set()
        finally:
            s = self._waiters.get(endpoint)
            if s is not None:
                s.discard(ev)
                if not s:
                    del self._waiters[endpoint]


class ServerDevicePort:
    """``DevicePort`` over a running ``LwM2MServer``.

    Queue-mode devices: a request to a sleeping device is queued by the server; the port then
    polls the queued request until the device woke and answered (or the request failed), so the
    rollout waits for the device instead of sending the same write twice.
    """

    def __init__(self, server: LwM2MServer, *, timeout: float | None = None,
                 waiter: EndpointWaiter | None = None, queue_poll: float = 0.5) -> None:
        self._server = server
        self._timeout = timeout
        self.waiter = waiter or EndpointWaiter(server.events)
        self._queue_poll = queue_poll

    async def _send(self, endpoint: str, request: Any) -> Any:
        try:
            return await self._server.devices.send(endpoint, request, timeout=self._timeout)
        except Queued as q:
            return await self._await_queued(endpoint, q.request_id)

    async def _await_queued(self, endpoint: str, request_id: str) -> Any:
        while True:
            try:
                qr = self._server.devices.get_request(request_id)
            except LwM2MError as e:  # forgotten by the server (restart, expiry)
                raise DeviceTimeout(f"queued request {request_id}: {e.message}") from None
            state = getattr(qr, "state", None)
            if state == "done":
                return qr
            if state in ("failed", "expired") or qr is None:
                code = getattr(qr, "coap_code", None)
                error = getattr(qr, "error", None) or f"queued request {request_id} {state}"
                if code:
                    raise DeviceError(str(error), code)
                raise DeviceTimeout(str(error))
            await self.waiter.wait(endpoint, self._queue_poll)

    async def read(self, endpoint: str, path: Path) -> dict[Path, Value]:
        resp = await self._send(endpoint, ReadRequest(path))
        values = getattr(resp, "values", None)
        if isinstance(values, dict) and all(isinstance(k, Path) for k in values):
            return values
        # A queued read finished: its values landed in the server's latest-value cache.
        latest = self._server.devices.latest(endpoint)
        return {p: v for p, (v, _t) in latest.items() if p.starts_with(path)}

    async def write(self, endpoint: str, path: Path, value: Value) -> None:
        await self._send(endpoint, WriteRequest(path, {path: value}, replace=True))

    async def execute(self, endpoint: str, path: Path, args: str | None = None) -> None:
        await self._send(endpoint, ExecuteRequest(path, args))

    async def observe(self, endpoint: str, path: Path) -> bool:
        devices = self._server.devices
        for stored in devices.stored_observations(endpoint):
            if stored.paths == (path,):
                # Ours from before a restart (re-established by the server): we end it. Anyone
                # else's: its notifications wake us too, and it is not ours to cancel.
                return stored.origin == ROLLOUT_ORIGIN
        if (path,) in devices.observations(endpoint):
            return False
        try:
            await devices.send(endpoint, ObserveRequest(path), timeout=self._timeout,
                               origin=ROLLOUT_ORIGIN)
        except Queued as q:  # a sleeping device: the observation starts when it wakes
            await self._await_queued(endpoint, q.request_id)
        return True

    async def cancel_observe(self, endpoint: str, path: Path) -> None:
        try:
            # No waiting for a sleeping device: the cancel is queued for its next wake-up.
            await self._server.devices.send(endpoint, CancelObserveRequest(path), timeout=None,
                                            origin=ROLLOUT_ORIGIN)
        except (Queued, InvalidRequest):  # queued, or nothing to cancel (ended already)
            pass

    def mark(self, endpoint: str) -> int:
        return self.waiter.mark(endpoint)

    async def wait(self, endpoint: str, timeout: float, since: int | None = None) -> bool:
        return await self.waiter.wait(endpoint, timeout, since)

    def forget(self, endpoint: str) -> None:
        self.waiter.forget(endpoint)

    def address(self, endpoint: str) -> tuple[str, int] | None:
        reg = self._server.registrations.get(endpoint)
        if reg is None or not getattr(reg, "online", True):
            return None
        addr = getattr(reg, "address", None)
        return tuple(addr) if addr else None  # type: ignore[return-value]
