"""Messages between the processes of a cluster over PostgreSQL LISTEN/NOTIFY (no second broker).

``publish(msg)`` never blocks: messages are collected and sent in batches (a JSON list per
NOTIFY payload, as many as fit in PostgreSQL's 8,000-byte limit; a larger message goes in
numbered fragments), each payload preceded by the sender's node id and a space, so a process
skips its own payloads (it listens on the same channel) without decoding them. Each process
listens on the same channel and hands every message of the others, in the order each sender
sent them, to ``on_message``. The listening connection comes back by itself after a database
restart; ``on_reconnect`` is then called (messages sent while it was away are lost: the caller
reloads what it keeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from ..tasks import cancel_and_wait
from .wire import dumps, loads

__all__ = ["PgChannel", "CHANNEL", "MAX_PAYLOAD"]

log = logging.getLogger(__name__)

CHANNEL = "lwm2m_cluster"
MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more


def pack(texts: list[str], limit: int = MAX_PAYLOAD, prefix: str = "") -> list[str]:
    """``prefix`` and a JSON list of the message ``texts`` per payload, each at most ``limit``
    bytes; a text too large for one payload was already split by :meth:`PgChannel.publish`."""
    payloads: list[str] = []
    batch: list[str] = []
    limit -= len(prefix)
    size = 2
    for text in texts:
        if batch and size + len(text) + 1 > limit:
            payloads.append(prefix + "[" + ",".join(batch) + "]")
            batch, size = [], 2
        batch.append(text)
        size += len(text) + 1
    if batch:
        payloads.append(prefix + "[" + ",".join(batch) + "]")
    return payloads


class PgChannel:
    """One process's end of the cluster channel."""

    def __init__(self, conninfo: str, node_id: str, on_message: Callable[[dict[str, Any]], None],
                 *, on_reconnect: Callable[[], None] | None = None) -> None:
        self._conninfo = conninfo
        self.node_id = node_id
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._out: list[str] = []
        self._wake = asyncio.Event()
        self._sent = asyncio.Event()
        self._listen: psycopg.AsyncConnection[Any] | None = None
        self._send: psycopg.AsyncConnection[Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fragments: dict[str, list[str | None]] = {}
        self._ids = itertools.count(1)
        self._prefix = node_id + " "
        self._busy = False
        self.received = 0
        self.sent = 0

    async def start(self) -> None:
        """Listen (before returning: nothing sent after this is missed) and start sending."""
        self._listen = await self._connect_listener()
        self._send = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._sender())]

    async def _connect_listener(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def publish(self, msg: dict[str, Any]) -> None:
        """Send ``msg`` to every other process (soon, batched with others; never blocks)."""
        msg["n"] = self.node_id
        text = dumps(msg)
        if len(text) + 2 + len(self._prefix) > MAX_PAYLOAD:
            fid = f"{self.node_id}/{next(self._ids)}"
            step = MAX_PAYLOAD - 200
            parts = [text[i:i + step] for i in range(0, len(text), step)]
            for i, part in enumerate(parts):
                self._out.append(dumps({"t": "frag", "n": self.node_id, "id": fid, "i": i,
                                        "of": len(parts), "d": part}))
        else:
            self._out.append(text)
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything published so far has been sent."""
        while (self._out or self._busy) and self._tasks and not self._tasks[1].done():
            self._sent.clear()
            await self._sent.wait()

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            texts, self._out = self._out, []
            if not texts:
                self._sent.set()
                continue
            self._busy = True
            payloads = pack(texts, prefix=self._prefix)
            try:
                assert self._send is not None
                async with self._send.cursor() as cur:
                    await cur.executemany("SELECT pg_notify(%s, %s)",
                                          [(CHANNEL, p) for p in payloads])
                self.sent += len(texts)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("cluster channel: could not send %d messages (%s); reconnecting",
                            len(texts), e)
                await self._reconnect_sender()
            self._busy = False
            self._sent.set()

    async def _reconnect_sender(self) -> None:
        with contextlib.suppress(Exception):
            if self._send is not None:
                await self._send.close()
        while True:
            try:
                self._send = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                return
            except psycopg.Error:
                await asyncio.sleep(1.0)

    async def _reader(self) -> None:
        while True:
            try:
                assert self._listen is not None
                async for note in self._listen.notifies():
                    self._dispatch(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("cluster channel: listening connection lost (%s); reconnecting", e)
            with contextlib.suppress(Exception):
                if self._listen is not None:
                    await self._listen.close()
            while True:
                try:
                    self._listen = await self._connect_listener()
                    break
                except psycopg.Error:
                    await asyncio.sleep(1.0)
            if self._on_reconnect is not None:
                self._on_reconnect()

    def _dispatch(self, payload: str) -> None:
        if payload.startswith(self._prefix):
            return  # this process's own messages
        if not payload.startswith("["):  # "<sender> [...]"; a bare list from an older version
            payload = payload.partition(" ")[2]
        try:
            batch = loads(payload)
        except ValueError:
            log.warning("cluster channel: a payload that is not JSON (%d bytes) ignored", len(payload))
            return
        for msg in batch if isinstance(batch, list) else ():
            if not isinstance(msg, dict) or msg.get("n") == self.node_id:
                continue
            if msg.get("t") == "frag":
                whole = self._reassemble(msg)
                if whole is None:
                    continue
                msg = whole
            self.received += 1
            try:
                self._on_message(msg)
            except Exception:
                log.exception("cluster channel: applying a %r message failed", msg.get("t"))

    def _reassemble(self, frag: dict[str, Any]) -> dict[str, Any] | None:
        parts = self._fragments.setdefault(frag["id"], [None] * int(frag["of"]))
        parts[int(frag["i"])] = frag["d"]
        if any(p is None for p in parts):
            if len(self._fragments) > 1000:  # a sender died mid-message: forget the oldest
                self._fragments.pop(next(iter(self._fragments)))
            return None
        del self._fragments[frag["id"]]
        whole = loads("".join(p for p in parts if p is not None))
        return whole if isinstance(whole, dict) else None

    async def stop(self) -> None:
        """Send what is left, then close both connections."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.flush()
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        for conn in (self._listen, self._send):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listen = self._send = None
