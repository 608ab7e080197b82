"""A device request carried out by the process that owns the device.

The caller writes the request as a row of ``forwarded_request`` and sends the owner a ``fwd``
message; the owner runs it through its own ``DeviceManager.send`` (so queue mode, observations
and formats work as for its own callers), writes the answer into the row and sends back ``ans``;
the caller reads the answer, deletes the row and returns the response or raises the owner's
error. A caller gives up with 504 after the request's own timeout plus a margin, and at once
with 409 when the owner is not running (its heartbeat stopped).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from collections.abc import Callable
from typing import Any

import psycopg

from ..protocol.errors import DeviceOffline, DeviceTimeout, LwM2MError
from ..protocol.registration import Registration
from ..protocol.requests import DeviceRequest, DeviceResponse, operation_name
from .wire import decode_answer, decode_request, encode_answer, encode_request

__all__ = ["Forwarder", "FORWARD_MARGIN"]

log = logging.getLogger(__name__)

# Seconds a caller waits beyond the request's own timeout (the hop through PostgreSQL twice).
FORWARD_MARGIN = 5.0
# Set while this process serves a request another process forwarded: it is not forwarded again.
_SERVING: contextvars.ContextVar[bool] = contextvars.ContextVar("lwm2m_forwarded", default=False)


class Forwarder:
    """Both ends of request forwarding for one process (``node_id``)."""

    def __init__(self, node_id: str, db: Callable[[], psycopg.AsyncConnection[Any]],
                 publish: Callable[[dict[str, Any]], None], devices: Any,
                 alive: Callable[[str], bool], request_timeout: float) -> None:
        self.node_id = node_id
        self._db = db
        self._publish = publish
        self._devices = devices
        self._alive = alive
        self.request_timeout = request_timeout
        self._waiting: dict[str, tuple[asyncio.Future[str], str]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self.forwarded = 0
        self.served = 0

    # --- the caller's end ---------------------------------------------------------------------
    async def forward(self, reg: Registration, request: DeviceRequest, timeout: float | None,
                      origin: str) -> DeviceResponse:
        """Run ``request`` in ``reg.owner``'s process and return its response (or raise its error)."""
        owner = reg.owner or ""
        if _SERVING.get():
            raise DeviceOffline(f"device {reg.endpoint!r} moved to server process {owner} while a "
                                "forwarded request for it was on its way; try again")
        if not self._alive(owner):
            raise DeviceOffline(
                f"device {reg.endpoint!r} is served by server process {owner}, which is not "
                "running; it is reachable again once its next Update or Register reaches a "
                "running process")
        fid = secrets.token_urlsafe(12)
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[fid] = (fut, owner)
        db = self._db()
        try:
            await db.execute(
                "INSERT INTO forwarded_request (id, sender, owner, endpoint, origin, timeout, "
                "request, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
                (fid, self.node_id, owner, reg.endpoint, origin, timeout, encode_request(request)))
            self._publish({"t": "fwd", "to": owner, "id": fid})
            self.forwarded += 1
            limit = (timeout or self.request_timeout) + FORWARD_MARGIN
            try:
                async with asyncio.timeout(limit):
                    answer = await fut
            except TimeoutError:
                raise DeviceTimeout(
                    f"server process {owner}, which serves {reg.endpoint!r}, did not answer a "
                    f"forwarded {operation_name(request)} within {limit:g} s") from None
        finally:
            self._waiting.pop(fid, None)
            try:
                await db.execute("DELETE FROM forwarded_request WHERE id = %s", (fid,))
            except psycopg.Error:  # the housekeeping of old rows removes it later
                pass
        return decode_answer(answer)

    async def answered(self, fid: str) -> None:
        """The owner wrote the answer of ``fid``."""
        waiting = self._waiting.get(fid)
        if waiting is None:
            return
        cur = await self._db().execute("SELECT answer FROM forwarded_request WHERE id = %s", (fid,))
        row = await cur.fetchone()
        if row is not None and row[0] is not None and not waiting[0].done():
            waiting[0].set_result(row[0])

    def node_gone(self, node: str) -> None:
        """``node`` stopped: fail at once what waits for its answers."""
        for fid, (fut, owner) in list(self._waiting.items()):
            if owner == node and not fut.done():
                fut.set_exception(DeviceOffline(
                    f"server process {node} stopped before answering a forwarded request"))

    # --- the owner's end ----------------------------------------------------------------------
    def serve(self, fid: str) -> None:
        """Another process forwarded request ``fid`` to us: run it in a task of its own."""
        task = asyncio.create_task(self._serve(fid))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, fid: str) -> None:
        db = self._db()
        cur = await db.execute(
            "SELECT sender, endpoint, origin, timeout, request FROM forwarded_request "
            "WHERE id = %s AND owner = %s", (fid, self.node_id))
        row = await cur.fetchone()
        if row is None:  # the caller gave up and deleted it
            return
        sender, endpoint, origin, timeout, text = row
        _SERVING.set(True)
        result: DeviceResponse | LwM2MError
        try:
            result = await self._devices.send(endpoint, decode_request(text), timeout=timeout,
                                              origin=origin)
        except LwM2MError as e:
            result = e
        except Exception as e:  # a bug here must not leave the caller waiting
            log.exception("a forwarded request for %s failed", endpoint)
            result = LwM2MError(f"server process {self.node_id} failed: {type(e).__name__}")
        self.served += 1
        await db.execute("UPDATE forwarded_request SET answer = %s WHERE id = %s",
                         (encode_answer(result), fid))
        self._publish({"t": "ans", "to": sender, "id": fid})

    async def close(self) -> None:
        for task in list(self._serving):
            task.cancel()
        for fut, _owner in self._waiting.values():
            if not fut.done():
                fut.set_exception(DeviceOffline("this server process is stopping"))
