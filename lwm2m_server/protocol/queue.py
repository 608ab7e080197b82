"""Queue mode (LwM2M 1.1 §6.5, binding UQ): requests for a sleeping device wait, persisted, and
go out in order right after its next Register or Update, while it is awake.

A device is awake for ``awake_window`` seconds after each message from it (Register, Update,
an answer, a notification, a Send). The REST caller gets ``Queued(request_id)`` (202) at once,
or waits up to its timeout for the result, and polls :meth:`RequestQueue.get`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..events import EventBus, new_event
from ..metrics import QUEUED_REQUESTS, REQUESTS
from .errors import (
    DeviceError,
    DeviceOffline,
    DeviceTimeout,
    LwM2MError,
    Queued,
    RequestNotFound,
)
from .observations import ORIGIN
from .registration import Registration, RegistrationManager
from .requests import (
    DeviceRequest,
    DeviceResponse,
    operation_name,
    response_to_json,
    summarize,
)

__all__ = ["QueuedRequest", "QUEUE_STATES", "RequestQueue"]

log = logging.getLogger(__name__)

QUEUE_STATES = ("pending", "sent", "done", "failed", "expired")
# Finished requests kept in memory for polling; the oldest go first.
_MAX_FINISHED = 100_000


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request persisted for a sleeping device.

    ``state``: pending (waiting for the device to wake), sent, done, failed or expired.
    ``result`` is the JSON-able response when done (``{"values": {"/3/0/0": "..."}}``,
    ``{"path": "/9/1"}``, ``{"code": "2.04"}``...); ``error`` and ``coap_code`` say why it failed.
    """

    id: str
    endpoint: str
    request: dict[str, Any]
    state: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    result: dict[str, Any] | None = None
    error: str | None = None
    coap_code: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


Execute = Callable[[Registration, DeviceRequest, float], Awaitable[DeviceResponse]]


class RequestQueue:
    """Which queue-mode devices are awake, and the requests waiting for the others."""

    def __init__(self, registrations: RegistrationManager, store: Any, events: EventBus,
                 execute: Execute, *, request_timeout: float, queue_timeout: float,
                 awake_window: float, clock: Callable[[], float]) -> None:
        self._registrations = registrations
        self._store = store
        self._events = events
        self._execute = execute
        self.request_timeout = request_timeout
        self.queue_timeout = queue_timeout
        self.awake_window = awake_window
        self._clock = clock
        self._awake_until: dict[str, float] = {}
        self._queued: OrderedDict[str, QueuedRequest] = OrderedDict()
        self._requests: dict[str, DeviceRequest] = {}
        self._pending: dict[str, list[str]] = {}
        self._waiters: dict[str, asyncio.Future[DeviceResponse]] = {}
        self._delivering: dict[str, asyncio.Task[None]] = {}

    # --- awake or asleep ----------------------------------------------------------------
    def awake(self, endpoint: str) -> bool:
        """``endpoint`` is within its awake window (requests may go to it now)."""
        return self._awake_until.get(endpoint, 0.0) > self._clock()

    def mark_awake(self, endpoint: str) -> None:
        """A message came from ``endpoint``: a queue-mode device is awake for another window."""
        reg = self._registrations.get(endpoint)
        if reg is not None and reg.queue_mode:
            self._awake_until[endpoint] = self._clock() + self.awake_window

    def asleep(self, endpoint: str) -> None:
        """Treat ``endpoint`` as asleep from now on (its window ended, or it stopped answering)."""
        self._awake_until.pop(endpoint, None)

    # --- the queue ------------------------------------------------------------------------
    def get(self, request_id: str) -> QueuedRequest:
        """A queued request by id (for polling); RequestNotFound (404) when unknown."""
        q = self._queued.get(request_id)
        if q is None:
            raise RequestNotFound(f"no queued request {request_id!r}")
        return q

    def pending_for(self, endpoint: str) -> list[QueuedRequest]:
        """The requests still waiting for ``endpoint``, oldest first."""
        return [self._queued[i] for i in self._pending.get(endpoint, [])]

    async def enqueue_and_wait(self, reg: Registration, request: DeviceRequest,
                               timeout: float | None) -> DeviceResponse:
        """Persist ``request`` for ``reg``; raise Queued at once (``timeout`` None or 0) or after
        waiting up to ``timeout`` seconds for its result."""
        now = _now()
        summary = {**summarize(request), "origin": ORIGIN.get()}  # an Observe it starts keeps it
        q = QueuedRequest(id=secrets.token_urlsafe(9), endpoint=reg.endpoint, request=summary,
                          state="pending", created_at=now, updated_at=now,
                          expires_at=datetime.fromtimestamp(now.timestamp() + self.queue_timeout, timezone.utc))
        await self._store.save_queued(q, request)
        self._keep(q)
        self._requests[q.id] = request
        self._pending.setdefault(reg.endpoint, []).append(q.id)
        REQUESTS.inc(operation_name(request), "queued")
        self._events.publish(new_event("request_queued", reg.endpoint, request_id=q.id, request=q.request))
        if not timeout:
            raise Queued(q.id)
        fut = self._waiters.setdefault(q.id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise Queued(q.id) from None

    def _keep(self, q: QueuedRequest) -> None:
        self._queued[q.id] = q
        self._queued.move_to_end(q.id)
        while len(self._queued) > _MAX_FINISHED:
            oldest = next(iter(self._queued.values()))
            if oldest.state in ("pending", "sent"):
                break
            self._queued.popitem(last=False)

    async def _finish(self, q: QueuedRequest, state: str, response: DeviceResponse | None = None,
                      error: LwM2MError | None = None) -> None:
        done = replace(q, state=state, updated_at=_now(),
                       result=response_to_json(response) if response is not None else None,
                       error=error.message if error else None,
                       coap_code=getattr(error, "coap_code", None))
        self._keep(done)
        self._requests.pop(q.id, None)
        await self._store.save_queued(done, None)
        QUEUED_REQUESTS.inc(state)
        self._events.publish(new_event("queued_request_done", q.endpoint, request_id=q.id, state=state,
                                       result=done.result, error=done.error, coap_code=done.coap_code))
        fut = self._waiters.pop(q.id, None)
        if fut is not None and not fut.done():
            if response is not None:
                fut.set_result(response)
            else:
                fut.set_exception(error or DeviceError(f"queued request {q.id} {state}"))
                fut.exception()  # a waiter may have given up: do not warn about it

    # --- delivery ---------------------------------------------------------------------------
    async def _deliver(self, endpoint: str) -> None:
        """Send the queued requests of ``endpoint`` in order while it is awake."""
        while self._pending.get(endpoint):
            reg = self._registrations.get(endpoint)
            if reg is None or not reg.online or (reg.queue_mode and not self.awake(endpoint)):
                return
            qid = self._pending[endpoint][0]
            q = self._queued[qid]
            request = self._requests.get(qid)
            if request is None:
                self._pending[endpoint].pop(0)
                continue
            sent = replace(q, state="sent", updated_at=_now())
            self._keep(sent)
            await self._store.save_queued(sent, None)
            ORIGIN.set(q.request.get("origin", "api"))  # this delivery task's own context
            try:
                response = await self._execute(reg, request, self.request_timeout)
            except DeviceTimeout:
                back = replace(sent, state="pending", updated_at=_now())
                self._keep(back)
                await self._store.save_queued(back, None)
                self.asleep(endpoint)
                return
            except LwM2MError as e:
                self._pending[endpoint].pop(0)
                await self._finish(sent, "failed", error=e)
                continue
            self._pending[endpoint].pop(0)
            await self._finish(sent, "done", response)
        self._pending.pop(endpoint, None)

    def on_contact(self, reg: Registration) -> None:
        """``reg`` registered or updated: awake if in queue mode; deliver what waits for it
        (also when it left queue mode with requests still queued)."""
        if reg.queue_mode:
            self._awake_until[reg.endpoint] = self._clock() + self.awake_window
        endpoint = reg.endpoint
        task = self._delivering.get(endpoint)
        if (task is not None and not task.done()) or not self._pending.get(endpoint):
            return

        async def run() -> None:
            await asyncio.sleep(0.01)  # let the 2.01/2.04 leave first
            try:
                await self._deliver(endpoint)
            except Exception:
                log.exception("delivering queued requests to %s failed", endpoint)

        self._delivering[endpoint] = asyncio.ensure_future(run())

    def on_left(self, endpoint: str, reason: str) -> None:
        """``endpoint`` expired or de-registered: fail what waits for it."""
        self.asleep(endpoint)
        if self._pending.get(endpoint):
            asyncio.ensure_future(self._fail_queued(endpoint, f"device {endpoint!r} went offline: {reason}"))

    # --- clusters: requests another process queued or finished -------------------------------
    def release(self, endpoint: str) -> None:
        """Another process serves ``endpoint`` now: stop delivering to it from here (its queued
        requests stay queued, for the new owner)."""
        self.asleep(endpoint)
        task = self._delivering.pop(endpoint, None)
        if task is not None:
            task.cancel()

    def forget_endpoint(self, endpoint: str) -> None:
        """``endpoint`` left at another process, which failed its queued requests."""
        for qid in self._pending.pop(endpoint, []):
            self._requests.pop(qid, None)

    def apply_remote(self, q: QueuedRequest, request: DeviceRequest | None) -> None:
        """Another process stored ``q`` (``request`` with it when it was queued): keep it for
        polling here, and in the pending list so this process can deliver it once it owns the
        device."""
        self._keep(q)
        pending = self._pending.get(q.endpoint, [])
        if q.state in ("pending", "sent"):
            if request is not None:
                self._requests[q.id] = request
            if q.id not in pending and q.id in self._requests:
                self._pending.setdefault(q.endpoint, []).append(q.id)
            return
        self._requests.pop(q.id, None)
        if q.id in pending:
            pending.remove(q.id)
            if not pending:
                self._pending.pop(q.endpoint, None)

    async def _fail_queued(self, endpoint: str, reason: str) -> None:
        for qid in self._pending.pop(endpoint, []):
            q = self._queued.get(qid)
            if q is not None:
                await self._finish(q, "failed", error=DeviceOffline(reason))

    async def expire(self) -> None:
        """Mark expired every queued request older than the queue timeout."""
        now = _now()
        for ep, ids in list(self._pending.items()):
            reg = self._registrations.get(ep)
            if reg is not None and not self._registrations.owns(reg) and \
                    self._registrations.node_alive(reg.owner or ""):
                continue  # its owner expires them (and tells every process)
            for qid in list(ids):
                q = self._queued.get(qid)
                if q is not None and q.state == "pending" and q.expires_at <= now:
                    ids.remove(qid)
                    await self._finish(q, "expired", error=DeviceTimeout(
                        f"device {ep!r} did not wake up within {self.queue_timeout:g} s"))

    async def restore(self) -> None:
        """Load the unfinished requests from the store (at start-up); sent ones wait again."""
        for q, request in await self._store.load_unfinished_queued():
            q = replace(q, state="pending")
            self._keep(q)
            self._requests[q.id] = request
            self._pending.setdefault(q.endpoint, []).append(q.id)

    def close(self) -> None:
        for t in self._delivering.values():
            t.cancel()
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
