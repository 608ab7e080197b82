"""One process's membership of a cluster: several server processes on one PostgreSQL serving one
fleet (docs/scale.md).

- Each process is a node (``server_node`` row, heartbeat every ``heartbeat`` seconds in database
  time; a node whose heartbeat is older than ``dead_after`` seconds is gone).
- Each registration records the node that received it (``Registration.owner``): the kernel
  (SO_REUSEPORT) or the UDP load balancer keeps a device's datagrams, its answers included, on
  one process, so requests to it must leave from that process.
- Every stored change (registrations, latest values, queued requests, observations) and every
  event is sent to the other nodes (:class:`ReplicatingStore`, ``channel.py``), which apply it to
  their in-memory view: any process lists, reads and polls the whole fleet. A node that runs
  alone sends nothing. A joining node says hello and waits (at most ``dead_after``) until every
  running node has answered: each answers once what it wrote while alone is committed, and tells
  it every change from then on, so the state the new node loads next misses nothing.
- A device request made in a process that does not own the device is forwarded to its owner
  (``forward.py``).
- When a node is gone, its devices' next datagrams land on a live process, which takes them over
  at their next Register or Update; a registration whose owner is gone is expired by one live
  node (a conditional write decides which).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from ..events import Event
from ..model import Path, Value
from ..protocol.observations import StoredObservation
from ..protocol.queue import QueuedRequest
from ..protocol.registration import Registration
from ..protocol.requests import DeviceRequest
from ..tasks import cancel_and_wait
from . import wire
from .channel import PgChannel
from .forward import Forwarder

__all__ = ["Cluster", "ReplicatingStore", "new_node_id", "conninfo_of"]

log = logging.getLogger(__name__)


def new_node_id() -> str:
    """``host-pid-random``: unique per process run (a restarted process is a new node)."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def conninfo_of(engine: Engine) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL engine's URL."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ReplicatingStore:
    """The server's store, telling the other nodes about every change it writes (while there
    are others: ``shared()``)."""

    def __init__(self, inner: Any, publish: Any,
                 shared: Callable[[], bool] = lambda: True) -> None:
        self._inner = inner
        self._publish = publish
        self._shared = shared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _tell(self, message: Callable[..., dict[str, Any]], *args: Any) -> None:
        """Send ``message(*args)`` to the other nodes, built only when there are any."""
        if self._shared():
            self._publish(message(*args))

    async def save_registration(self, reg: Registration) -> None:
        await self._inner.save_registration(reg)
        self._tell(wire.registration_msg, reg)

    def refresh_registration_nowait(self, reg: Registration) -> None:
        self._inner.refresh_registration_nowait(reg)
        self._tell(wire.seen_msg, reg)

    async def delete_registration(self, endpoint: str, registration_id: str) -> None:
        await self._inner.delete_registration(endpoint, registration_id)
        self._tell(wire.unregistration_msg, endpoint, registration_id)

    def save_values_nowait(self, endpoint: str, values: Mapping[Path, Value], when: datetime) -> None:
        self._inner.save_values_nowait(endpoint, values, when)
        self._tell(wire.values_msg, endpoint, values, when)

    def add_event(self, event: Event) -> None:
        self._inner.add_event(event)
        self._tell(wire.event_msg, event)

    async def save_queued(self, q: QueuedRequest, request: DeviceRequest | None) -> None:
        await self._inner.save_queued(q, request)
        self._tell(wire.queued_msg, q, request)

    async def save_observation(self, obs: StoredObservation) -> None:
        await self._inner.save_observation(obs)
        self._tell(wire.observation_msg, obs)

    async def delete_observation(self, endpoint: str, paths: tuple[Path, ...]) -> None:
        await self._inner.delete_observation(endpoint, paths)
        self._tell(wire.unobservation_msg, endpoint, paths)


class Cluster:
    """This process as a node of the cluster on ``engine``'s PostgreSQL database."""

    def __init__(self, engine: Engine, *, node_id: str | None = None, heartbeat: float = 2.0,
                 dead_after: float = 6.0, request_timeout: float = 10.0) -> None:
        self.node_id = node_id or new_node_id()
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self._conninfo = conninfo_of(engine)
        self._request_timeout = request_timeout
        self.server: Any = None
        self.channel = PgChannel(self._conninfo, self.node_id, self._on_message,
                                 on_reconnect=self._on_reconnect)
        self.forwarder: Forwarder | None = None
        self._db: psycopg.AsyncConnection[Any] | None = None
        self._alive: set[str] = {self.node_id}
        self._ready = False
        self._early: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._unanswered: set[str] = set()  # running nodes that have not answered our hello
        self._answered = asyncio.Event()
        self._welcomes: set[asyncio.Task[None]] = set()

    def wrap(self, store: Any) -> ReplicatingStore:
        """``store`` telling the other nodes about its writes (none while it runs alone)."""
        return ReplicatingStore(store, self.channel.publish, self.shared)

    def shared(self) -> bool:
        """Whether another node runs (changes are sent to the others only then)."""
        return len(self._alive) > 1

    def attach(self, server: Any) -> None:
        """Wire the node into ``server`` (an LwM2MServer, before it starts)."""
        self.server = server
        regs = server.registrations
        regs.node_id = self.node_id
        regs.node_alive = self.alive
        regs.claim = self.claim
        self.forwarder = Forwarder(self.node_id, self._conn, self.channel.publish, server.devices,
                                   self.alive, self._request_timeout)
        server.devices.forward = self.forwarder.forward

    # --- liveness -----------------------------------------------------------------------------
    def alive(self, node: str) -> bool:
        """``node`` is running (its heartbeat is recent)."""
        return node in self._alive

    @property
    def nodes(self) -> list[str]:
        """The running nodes, this one included."""
        return sorted(self._alive)

    def _conn(self) -> psycopg.AsyncConnection[Any]:
        if self._db is None:
            raise RuntimeError("the cluster node is not started")
        return self._db

    async def start(self) -> None:
        """Join: listen first (nothing sent from now on is missed), then announce this node.
        Messages that arrive before :meth:`ready` wait (the server is loading its state)."""
        self._db = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await self.channel.start()
        await self._db.execute(
            "INSERT INTO server_node (id, host, pid, started_at, heartbeat_at) "
            "VALUES (%s, %s, %s, now(), now())",
            (self.node_id, socket.gethostname()[:255], os.getpid()))
        await self._beat()
        self._task = asyncio.create_task(self._heartbeats())
        others = self._alive - {self.node_id}
        if others:
            await self._greet(others)
        log.info("cluster node %s joined (%d running)", self.node_id, len(self._alive))

    async def _greet(self, others: set[str]) -> None:
        """Say hello and wait until every node in ``others`` has answered (or ``dead_after``
        has passed): from then on each sends this node its changes, and what it wrote before
        is in the database the server loads next."""
        self._unanswered = set(others)
        self._answered.clear()
        self.channel.publish({"t": "hello"})
        try:
            async with asyncio.timeout(self.dead_after):
                await self._answered.wait()
        except TimeoutError:
            log.warning("cluster nodes %s did not answer within %g s; going on without them",
                        ", ".join(sorted(self._unanswered)), self.dead_after)
        self._unanswered = set()

    async def _welcome(self, node: str) -> None:
        """Answer ``node``'s hello once everything this node wrote so far is committed (it
        sends its changes to ``node`` already: ``node`` is in ``_alive``)."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.store.flush()
        self.channel.publish({"t": "welcome", "to": node})

    def ready(self) -> None:
        """The server has loaded its state: apply what arrived meanwhile, then everything live."""
        self._ready = True
        early, self._early = self._early, []
        for msg in early:
            self._on_message(msg)

    async def _beat(self) -> None:
        db = self._conn()
        cur = await db.execute("UPDATE server_node SET heartbeat_at = now() WHERE id = %s",
                               (self.node_id,))
        if cur.rowcount == 0:  # removed as dead after a long stall: join again
            await db.execute(
                "INSERT INTO server_node (id, host, pid, started_at, heartbeat_at) "
                "VALUES (%s, %s, %s, now(), now())",
                (self.node_id, socket.gethostname()[:255], os.getpid()))
        cur = await db.execute(
            "SELECT id FROM server_node WHERE heartbeat_at > now() - make_interval(secs => %s)",
            (self.dead_after,))
        alive = {r[0] for r in await cur.fetchall()} | {self.node_id}
        for node in self._alive - alive:
            log.warning("cluster node %s stopped answering (no heartbeat for %g s)", node,
                        self.dead_after)
            self._gone(node)
        self._alive = alive

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
                await self._conn().execute(  # rows of forwards whose caller went away
                    "DELETE FROM forwarded_request WHERE created_at < now() - interval '10 minutes'")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("cluster heartbeat failed: %s", e)
                with contextlib.suppress(Exception):
                    if self._db is not None and self._db.closed:
                        self._db = await psycopg.AsyncConnection.connect(self._conninfo,
                                                                        autocommit=True)

    def _gone(self, node: str) -> None:
        self._alive.discard(node)
        if node in self._unanswered:  # it will not answer our hello
            self._unanswered.discard(node)
            if not self._unanswered:
                self._answered.set()
        if self.forwarder is not None:
            self.forwarder.node_gone(node)

    async def claim(self, reg: Registration) -> bool:
        """Take over ``reg`` from its owner, which is gone: True for the one node that wins."""
        cur = await self._conn().execute(
            "UPDATE registration SET owner = %s WHERE endpoint = %s AND registration_id = %s "
            "AND owner IS NOT DISTINCT FROM %s", (self.node_id, reg.endpoint, reg.registration_id,
                                                   reg.owner))
        if cur.rowcount != 1:
            return False
        from dataclasses import replace

        self.channel.publish(wire.registration_msg(replace(reg, owner=self.node_id)))
        return True

    # --- messages -----------------------------------------------------------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        sender = msg.get("n")
        if isinstance(sender, str) and sender not in self._alive and t != "bye":
            self._alive.add(sender)  # a node that just joined
        if t == "fwd":
            if msg.get("to") == self.node_id and self.forwarder is not None:
                self.forwarder.serve(str(msg["id"]))
            return
        if t == "ans":
            if msg.get("to") == self.node_id and self.forwarder is not None:
                asyncio.ensure_future(self.forwarder.answered(str(msg["id"])))
            return
        if t == "bye":
            if isinstance(sender, str):
                self._gone(sender)
            return
        if t == "hello":
            if isinstance(sender, str):
                task = asyncio.create_task(self._welcome(sender))
                self._welcomes.add(task)
                task.add_done_callback(self._welcomes.discard)
            return
        if t == "welcome":
            if msg.get("to") == self.node_id and sender in self._unanswered:
                self._unanswered.discard(sender)
                if not self._unanswered:
                    self._answered.set()
            return
        if not self._ready:
            self._early.append(msg)
            return
        wire.apply_to(self.server, msg)

    def _on_reconnect(self) -> None:
        log.warning("cluster channel reconnected: reloading the registrations other processes "
                    "changed meanwhile")
        if self._ready and self.server is not None:
            self._resync_task = asyncio.create_task(self._resync())

    async def _resync(self) -> None:
        try:
            changed = await self.server.registrations.resync()
        except Exception as e:  # the database may be away again: the next reconnect retries
            log.warning("cluster: reloading registrations after the channel came back failed: %s", e)
            return
        log.info("cluster: %d registrations brought up to date after the channel came back",
                 changed)

    async def stop(self) -> None:
        """Leave: tell the others, remove this node's row, close the connections."""
        await cancel_and_wait(self._task, self._resync_task, *self._welcomes)
        self._task = self._resync_task = None
        if self.forwarder is not None:
            await self.forwarder.close()
        self.channel.publish({"t": "bye"})
        await self.channel.stop()
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.execute("DELETE FROM server_node WHERE id = %s", (self.node_id,))
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None
