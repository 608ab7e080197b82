"""Several server nodes on one PostgreSQL database, in one test process: each node has its own
CoAP socket (as processes behind SO_REUSEPORT or a balancer do), devices register with one of
them, and every node serves the whole fleet (lwm2m_server/cluster/)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import DeviceOffline, Queued
from lwm2m_server.protocol.requests import (
    CancelObserveRequest,
    ExecuteRequest,
    ObserveRequest,
    ReadRequest,
    WriteRequest,
)
from lwm2m_server.server import LwM2MServer
from tests.protocol.conftest import DEVICE_VALUES, make_server
from tests.support.lwm2m_client import LwM2MTestClient
from tests.support.postgres import temporary_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster_db() -> Iterator[str]:
    with temporary_database("lwm2m_nodes_") as url:
        yield url


@contextlib.asynccontextmanager
async def nodes(db_url: str, count: int, **kw: Any) -> AsyncIterator[list[LwM2MServer]]:
    started: list[LwM2MServer] = []
    try:
        for _ in range(count):
            srv = make_server(db_url, **kw)
            await srv.start()
            started.append(srv)
        yield started
    finally:
        for srv in reversed(started):
            with contextlib.suppress(Exception):
                await srv.stop()
            srv.engine.dispose()


@contextlib.asynccontextmanager
async def device(endpoint: str, server: LwM2MServer, **kw: Any) -> AsyncIterator[LwM2MTestClient]:
    c = LwM2MTestClient(endpoint, dict(DEVICE_VALUES), **kw)
    await c.start()
    try:
        await c.register(server.coap_port)
        yield c
    finally:
        await c.stop()


async def test_every_node_sees_and_reaches_every_device(cluster_db: str) -> None:
    async with nodes(cluster_db, 3) as (a, b, c):
        assert a.cluster.node_id != b.cluster.node_id
        await eventually(lambda: len(a.cluster.nodes) == 3 and len(c.cluster.nodes) == 3)
        async with device("dev-a", a) as da, device("dev-b", b):
            reg = await eventually(lambda: c.registrations.get("dev-a"))
            assert reg.owner == a.cluster.node_id
            assert await eventually(lambda: b.registrations.get("dev-a")) is not None
            assert a.registrations.get("dev-b").owner == b.cluster.node_id if \
                await eventually(lambda: a.registrations.get("dev-b")) else False
            # A Read through node C goes out from node A (the device only talks to A's socket).
            resp = await c.devices.send("dev-a", ReadRequest(Path.parse("/3/0/0")))
            assert resp.values == {Path.parse("/3/0/0"): "ACME"}
            assert c.cluster.forwarder.forwarded == 1 and a.cluster.forwarder.served == 1
            # Writes and Executes too; the value is seen from every node's latest values.
            await b.devices.send("dev-a", WriteRequest(Path.parse("/1/0/1"), {Path.parse("/1/0/1"): 600}))
            assert da.values[(1, 0, 1)] == 600
            await c.devices.send("dev-a", ExecuteRequest(Path.parse("/3/0/4")))
            await eventually(lambda: Path.parse("/3/0/0") in b.devices.latest("dev-a"))
            # A device error comes back as the same error, with its CoAP code.
            from lwm2m_server.protocol.errors import DeviceError, InvalidRequest
            with pytest.raises((DeviceError, InvalidRequest)):
                await c.devices.send("dev-a", ReadRequest(Path.parse("/3/0/99")))


async def test_events_reach_every_node_once(cluster_db: str) -> None:
    async with nodes(cluster_db, 2) as (a, b):
        sub_a, sub_b = a.events.subscribe(), b.events.subscribe()
        local_b = b.events.subscribe(local_only=True)
        async with device("ev-1", a):
            async def kinds(sub: Any) -> list[str]:
                seen: list[str] = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.5):
                        async for e in sub:
                            if e.endpoint == "ev-1":
                                seen.append(e.kind)
                return seen

            got_a, got_b, got_local_b = await asyncio.gather(kinds(sub_a), kinds(sub_b), kinds(local_b))
        assert got_a == ["registered"]
        assert got_b == ["registered"]  # relayed once
        assert got_local_b == []  # B's own events only (webhooks use these)
        # Stored once: the event table has one row for it.
        events = await b.store.events(endpoint="ev-1")
        assert [e.kind for e in events].count("registered") == 1


async def test_observation_from_another_node(cluster_db: str) -> None:
    async with nodes(cluster_db, 2) as (a, b):
        async with device("obs-1", a) as d:
            await eventually(lambda: b.registrations.get("obs-1"))
            sub = b.events.subscribe()
            await b.devices.send("obs-1", ObserveRequest(Path.parse("/3/0/9")))
            # The observation runs in A (the owner) and is visible, stored, from B.
            assert (Path.parse("/3/0/9"),) in a.devices.observations("obs-1")
            await eventually(lambda: b.devices.stored_observations("obs-1"))
            d.set("/3/0/9", 42)
            async with asyncio.timeout(5):
                async for e in sub:
                    if e.kind == "notification" and e.endpoint == "obs-1":
                        assert e.data["values"] == {"/3/0/9": 42}
                        break
            await eventually(lambda: b.devices.latest("obs-1").get(Path.parse("/3/0/9"), (0,))[0] == 42)
            await b.devices.send("obs-1", CancelObserveRequest(Path.parse("/3/0/9")))
            assert a.devices.observations("obs-1") == []
            await eventually(lambda: not b.devices.stored_observations("obs-1"))


async def test_queue_mode_across_nodes(cluster_db: str) -> None:
    async with nodes(cluster_db, 2, awake_window=0.5) as (a, b):
        async with device("q-1", a, queue=True) as d:
            await eventually(lambda: b.registrations.get("q-1"))
            await d.sleep()
            await asyncio.sleep(0.7)  # its awake window passes
            with pytest.raises(Queued) as queued:
                await b.devices.send("q-1", ReadRequest(Path.parse("/3/0/1")))
            rid = queued.value.request_id
            # Polled from B (not the owner): the request is visible there.
            q = await eventually(lambda: _get(b, rid))
            assert q.state == "pending"
            await d.wake()  # its Update reaches A, which delivers the queued Read
            done = await eventually(lambda: (x := _get(b, rid)) is not None and x.state == "done" and x)
            assert done.result == {"values": {"/3/0/1": "TinyML-1"}}


def _get(server: LwM2MServer, request_id: str) -> Any:
    try:
        return server.devices.get_request(request_id)
    except Exception:
        return None


async def test_device_moves_to_another_node(cluster_db: str) -> None:
    """A device whose datagrams start landing on another node (its process died, or the balancer
    moved it) is taken over at its next Update; requests then leave from the new owner."""
    async with nodes(cluster_db, 2) as (a, b):
        async with device("mv-1", a) as d:
            await eventually(lambda: b.registrations.get("mv-1"))
            await b.devices.send("mv-1", ObserveRequest(Path.parse("/3/0/9")))
            await eventually(lambda: b.devices.stored_observations("mv-1"))
            d.server = ("127.0.0.1", b.coap_port)
            await d.update()
            assert b.registrations.get("mv-1").owner == b.cluster.node_id
            await eventually(lambda: a.registrations.get("mv-1").owner == b.cluster.node_id)
            assert a.cluster.forwarder.served == 1
            resp = await a.devices.send("mv-1", ReadRequest(Path.parse("/3/0/0")))
            assert resp.values == {Path.parse("/3/0/0"): "ACME"}
            assert b.cluster.forwarder.served == 1  # from A, served by the new owner B
            # B's stored observation came along: A no longer runs it.
            assert a.devices.observing.active("mv-1") == []


async def test_a_gone_owners_device_is_taken_over(cluster_db: str) -> None:
    """A request for a device whose process stopped is sent from the asking process, which
    becomes its owner (as a restarted single process does); the others learn it."""
    async with nodes(cluster_db, 3) as (a, b, c):
        async with device("gone-1", a):
            await eventually(lambda: b.registrations.get("gone-1") and c.registrations.get("gone-1"))
            await a.stop()
            await eventually(lambda: not b.cluster.alive(a.cluster.node_id))
            resp = await b.devices.send("gone-1", ReadRequest(Path.parse("/3/0/0")))
            assert resp.values == {Path.parse("/3/0/0"): "ACME"}
            assert b.registrations.get("gone-1").owner == b.cluster.node_id
            await eventually(lambda: c.registrations.get("gone-1").owner == b.cluster.node_id)
            # C now forwards to B.
            await c.devices.send("gone-1", ReadRequest(Path.parse("/3/0/1")))
            assert b.cluster.forwarder.served == 1


async def test_forward_to_a_node_that_died_without_a_word(cluster_db: str) -> None:
    """A node killed mid-request (no goodbye): the caller fails with 409 once the heartbeat says
    it is gone, not after the whole timeout."""
    async with nodes(cluster_db, 2, request_timeout=30.0) as (a, b):
        b.cluster.dead_after = 1.5
        b.cluster.heartbeat = 0.3
        async with device("dead-1", a):
            await eventually(lambda: b.registrations.get("dead-1"))
            # A stops serving forwards and its heartbeats, as a killed process would.
            a.cluster.channel._on_message = lambda msg: None
            a.cluster._task.cancel()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(DeviceOffline, match="stopped before answering"):
                await b.devices.send("dead-1", ReadRequest(Path.parse("/3/0/0")))
            assert loop.time() - started < 10


async def test_a_node_whose_channel_dropped_reloads_what_it_missed(cluster_db: str) -> None:
    """Changes whose messages a node never got (its listening connection was gone) are read
    from the database once the channel is back: a new device appears, a removed one goes."""
    import psycopg

    async with nodes(cluster_db, 2) as (a, b):
        async with device("rs-old", a) as old:
            await eventually(lambda: b.registrations.get("rs-old"))
            deaf = b.cluster.channel._on_message
            b.cluster.channel._on_message = lambda msg: None  # messages to B are lost from here
            try:
                await old.deregister()
                async with device("rs-new", a):
                    assert a.registrations.get("rs-new") is not None
                    await asyncio.sleep(0.5)
                    assert b.registrations.get("rs-new") is None  # missed
                    assert b.registrations.get("rs-old") is not None  # missed
                    b.cluster.channel._on_message = deaf
                    # The listening connection drops (a database restart, a network cut).
                    listen = b.cluster.channel._listen
                    with psycopg.connect(b.cluster._conninfo, autocommit=True) as conn:
                        conn.execute("SELECT pg_terminate_backend(%s)", (listen.info.backend_pid,))
                    reg = await eventually(lambda: b.registrations.get("rs-new"), timeout=15)
                    assert reg.owner == a.cluster.node_id
                    await eventually(lambda: b.registrations.get("rs-old") is None, timeout=5)
            finally:
                b.cluster.channel._on_message = deaf


async def test_a_node_alone_sends_nothing_and_a_joining_node_misses_no_change(
        cluster_db: str) -> None:
    """Alone, a node publishes none of its writes; a node that joins while it keeps writing
    still ends up with every one (the hello/welcome handshake before it loads its state)."""
    a = make_server(cluster_db)
    await a.start()
    b: LwM2MServer | None = None
    clients: list[LwM2MTestClient] = []
    registered: list[str] = []
    stop = asyncio.Event()

    async def keep_registering() -> None:
        while not stop.is_set():
            c = LwM2MTestClient(f"join-{len(clients)}", dict(DEVICE_VALUES))
            clients.append(c)
            await c.start()
            await c.register(a.coap_port)
            registered.append(c.endpoint)

    try:
        async with device("solo", a):
            await a.store.flush()
        assert a.cluster.channel.sent == 0 and not a.cluster.shared()
        writer = asyncio.create_task(keep_registering())
        await eventually(lambda: len(registered) >= 5)
        b = make_server(cluster_db)
        await b.start()  # A keeps registering devices while B joins and loads
        joined = len(registered)
        await eventually(lambda: len(registered) >= joined + 5)
        stop.set()
        await writer
        assert a.cluster.shared() and a.cluster.channel.sent > 0
        await eventually(lambda: all(b.registrations.get(e) is not None for e in registered))
        assert b.registrations.get("solo") is not None  # written while A was alone: loaded
    finally:
        stop.set()
        for c in clients:
            with contextlib.suppress(Exception):
                await c.stop()
        for srv in (b, a):
            if srv is not None:
                with contextlib.suppress(Exception):
                    await srv.stop()
                srv.engine.dispose()


async def test_a_joining_node_waits_for_an_answer_only_as_long_as_a_node_may_be_silent(
        cluster_db: str, caplog: pytest.LogCaptureFixture) -> None:
    """A node row with a fresh heartbeat but no process behind it (killed a moment ago): the
    joining node waits ``dead_after`` for its answer, then goes on and says which node."""
    import time

    import psycopg

    async with nodes(cluster_db, 1) as (a,):
        conninfo = a.cluster._conninfo
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("INSERT INTO server_node (id, host, pid, started_at, heartbeat_at) "
                         "VALUES ('ghost-node', 'h', 1, now(), now())")
        b = make_server(cluster_db)
        b.cluster.dead_after = 1.0
        started = time.monotonic()
        try:
            await b.start()
            waited = time.monotonic() - started
            assert "ghost-node" in caplog.text and "did not answer" in caplog.text
            assert waited >= 1.0  # A answered; the ghost never does
            assert b.cluster.shared()
        finally:
            await b.stop()
            b.engine.dispose()
