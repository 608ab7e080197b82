"""Stopping background tasks, and reaching the event loop from other threads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["call_in", "cancel_and_wait"]


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel ``tasks`` (None entries are skipped) and wait until each has ended. What they
    raise on the way out is dropped: they are being stopped, and one failing to end cleanly
    must not keep the others, or the shutdown, from finishing."""
    running = [t for t in tasks if t is not None]
    for t in running:
        t.cancel()
    for t in running:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


def call_in(loop: asyncio.AbstractEventLoop | None, callback: Callable[..., object],
            *args: object) -> None:
    """``callback(*args)`` on ``loop``: at once when the caller runs in it (or there is no loop,
    or it is closed), else handed to it (thread-safe; a REST route runs in the thread pool, and
    asyncio's events and queues must be touched from their own loop only)."""
    if loop is not None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            try:
                loop.call_soon_threadsafe(callback, *args)
                return
            except RuntimeError:  # the loop is closed: nothing waits on it any more
                pass
    callback(*args)
