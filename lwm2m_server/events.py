"""The server's event bus: registrations, notifications, Send data and request outcomes as events.

Every part that reacts to what devices do (console server-sent events, webhooks, the rollout
engine) subscribes here. Each subscriber has its own bounded queue; a slow subscriber loses its
oldest events, never blocks the publisher. Events are also handed to persistence sinks (the
store), which the server wires in, and to the watchers of their kind (``watch``: a callback, no
queue, for a part that cares about one rare kind).

The bus belongs to one event loop (``bind``, or the first ``subscribe``): queues, sinks and
watchers are touched on that loop only. An event published from another thread (a REST route
running in the thread pool) is handed to the loop and published there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .tasks import call_in

__all__ = ["Event", "EventBus", "Subscription", "new_event"]

_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


def _event_id() -> str:
    return f"{_prefix}-{next(_counter):x}"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened. ``kind`` is e.g. "registered", "updated", "deregistered",
    "expired", "notification", "send", "request", "queued_request_done"; ``data`` is JSON-able."""

    kind: str
    endpoint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_event_id)
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def new_event(kind: str, endpoint: str | None = None, **data: Any) -> Event:
    """An event of ``kind`` about ``endpoint`` with ``data`` as keyword arguments."""
    return Event(kind=kind, endpoint=endpoint, data=data)


class Subscription:
    """Events published since it was created, as an async iterator; ``close()`` ends it.

    The subscription starts when ``EventBus.subscribe()`` returns, not at the first ``await``,
    so nothing published in between is missed.
    """

    def __init__(self, bus: EventBus, maxsize: int, local_only: bool = False) -> None:
        self._bus = bus
        self.local_only = local_only
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def put(self, event: Event) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                try:
                    self.queue.get_nowait()  # drop the oldest
                    self.dropped += 1
                except asyncio.QueueEmpty:  # pragma: no cover - raced empty
                    pass

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.closed:
            raise StopAsyncIteration
        return await self.queue.get()

    def close(self) -> None:
        self.closed = True
        self._bus._subs.discard(self)

    async def aclose(self) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscribers (bounded queues, oldest dropped) and to sinks."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subs: set[Subscription] = set()
        self._sinks: list[Callable[[Event], None]] = []
        self._watchers: dict[str, list[Callable[[Event], None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve ``loop``: events published from other threads are published there."""
        self._loop = loop

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink(event)`` for every published event (the store persists them this way)."""
        self._sinks.append(sink)

    def watch(self, kind: str, callback: Callable[[Event], None]) -> None:
        """Call ``callback(event)`` on the bus's loop for every event of ``kind``, this process's
        and (in a cluster) the other processes'."""
        self._watchers.setdefault(kind, []).append(callback)

    def unwatch(self, kind: str, callback: Callable[[Event], None]) -> None:
        """Stop calling ``callback`` (no error when it was not watching)."""
        watchers = self._watchers.get(kind, [])
        if callback in watchers:
            watchers.remove(callback)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every sink, watcher and subscriber; never blocks. From a thread
        other than the bus's loop, the event is published on the loop soon after."""
        call_in(self._loop, self._deliver, event)

    def _deliver(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)
        self._watched(event)
        for sub in self._subs:
            sub.put(event)

    def publish_remote(self, event: Event) -> None:
        """Hand ``event``, published by another process of the cluster (which persisted it), to
        the watchers of its kind and the subscribers that want every process's events."""
        self._watched(event)
        for sub in self._subs:
            if not sub.local_only:
                sub.put(event)

    def _watched(self, event: Event) -> None:
        watchers = self._watchers.get(event.kind)
        if watchers:
            for callback in watchers:
                callback(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def subscribe(self, *, local_only: bool = False) -> Subscription:
        """An async iterator of every event published from now on (bounded queue: when the
        consumer is slow the oldest events are dropped); ``close()`` it when done.
        ``local_only``: only this process's events, not other cluster processes' (webhooks:
        each process delivers its own, so each event is delivered once)."""
        if self._loop is None:
            with contextlib.suppress(RuntimeError):  # no running loop: bound later, or never
                self._loop = asyncio.get_running_loop()
        sub = Subscription(self, self._queue_size, local_only)
        self._subs.add(sub)
        return sub
