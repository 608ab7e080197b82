"""Housekeeping: what the server keeps, and for how long (``LWM2M_RETENTION_*``).

Left alone, the tables only grow: registrations that expired long ago (with their latest values
and observations), events, and queued requests that finished. ``Housekeeping`` deletes them every
``interval`` seconds in batches of ``batch`` rows (one short transaction each, yielding to the
loop between them), so a first purge of millions of rows never holds a lock for long.

A retention of 0 keeps that kind for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..metrics import PURGED

__all__ = ["RetentionPolicy", "Housekeeping"]

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Seconds to keep each kind after it ended (0: for ever), and how the purge runs."""

    registrations: float = 30 * DAY  # after the registration expired
    events: float = 30 * DAY         # after the event
    requests: float = 7 * DAY        # after the queued request finished
    interval: float = 600.0
    batch: int = 1000

    @classmethod
    def from_settings(cls, settings: Any) -> RetentionPolicy:
        return cls(registrations=settings.retention_registrations,
                   events=settings.retention_events, requests=settings.retention_requests,
                   interval=settings.retention_interval, batch=settings.retention_batch)


PurgeRegistrations = Callable[[datetime, int], Awaitable[Sequence[Any]]]


class Housekeeping:
    """Purges what the policy no longer keeps; ``run`` loops until cancelled."""

    def __init__(self, store: Any, purge_registrations: PurgeRegistrations,
                 policy: RetentionPolicy, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.purge_registrations = purge_registrations
        self.policy = policy
        self.clock = clock

    def _cutoff(self, keep: float) -> datetime:
        return datetime.fromtimestamp(self.clock() - keep, timezone.utc)

    async def _drain(self, kind: str, purge: Callable[[datetime, int], Awaitable[int]],
                     keep: float) -> int:
        if keep <= 0:
            return 0
        total = 0
        cutoff = self._cutoff(keep)
        while True:
            n = await purge(cutoff, self.policy.batch)
            total += n
            if n:
                PURGED.inc(kind, amount=n)
            if n < self.policy.batch:
                return total
            await asyncio.sleep(0)  # let devices and operators in between batches

    async def _registrations(self, cutoff: datetime, batch: int) -> int:
        return len(await self.purge_registrations(cutoff, batch))

    async def run_once(self) -> dict[str, int]:
        """One purge of every kind; how many of each went."""
        await self.store.flush()  # rows written behind are in before anything is chosen
        done = {"registrations": await self._drain("registration", self._registrations,
                                                   self.policy.registrations),
                "events": await self._drain("event", self.store.purge_events, self.policy.events),
                "requests": await self._drain("request", self.store.purge_requests,
                                              self.policy.requests)}
        if any(done.values()):
            log.info("retention: purged %(registrations)d registrations, %(events)d events, "
                     "%(requests)d finished requests", done)
        return done

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.policy.interval)
            try:
                await self.run_once()
            except Exception as e:  # the database may come back; try again next time
                log.warning("retention housekeeping failed: %s", e)
