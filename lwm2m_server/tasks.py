"""Stopping background tasks."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["cancel_and_wait"]


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
