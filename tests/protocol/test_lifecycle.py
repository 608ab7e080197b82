"""Lifetime expiry, queue mode and persistence across restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import Code

from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import DeviceOffline, Queued, RequestNotFound
from lwm2m_server.protocol.requests import ReadRequest, WriteRequest
from tests.protocol.conftest import running

P = Path.parse


async def sleeping(srv, clients, endpoint: str, **kw):
    """A queue-mode test client, registered, now asleep (socket closed, awake window over)."""
    c = await clients(endpoint, queue=True, **kw)
    await c.register(srv.coap_port)
    await c.sleep()
    srv.devices.end_awake_window(endpoint)
    return c


async def wait_until(cond, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_lifetime_expiry_marks_offline_and_fails_pending_requests(server, clients):
    c = await clients("short", lifetime=1, behaviour="silent")
    await c.register(server.coap_port)
    sub = server.events.subscribe()
    pending = asyncio.ensure_future(server.devices.send("short", ReadRequest("/3/0"), timeout=10))
    with pytest.raises(DeviceOffline, match="lifetime"):
        await asyncio.wait_for(pending, 4)
    reg = server.registrations.get("short")
    assert reg is not None and not reg.online
    kinds = []
    while not sub.queue.empty():
        kinds.append(sub.queue.get_nowait().kind)
    assert "expired" in kinds
    with pytest.raises(DeviceOffline):
        await server.devices.send("short", ReadRequest("/3/0"))
    sub.close()


async def test_update_before_the_lifetime_passes_keeps_the_device_online(server, clients):
    c = await clients("keep", lifetime=1)
    await c.register(server.coap_port)
    for _ in range(3):
        await asyncio.sleep(0.5)
        await c.update()
    assert server.registrations.get("keep").online


async def test_queued_request_is_delivered_when_the_device_wakes(server, clients):
    c = await sleeping(server, clients, "sleepy")
    with pytest.raises(Queued) as qi:
        await server.devices.send("sleepy", WriteRequest("/1/0/1", {"/1/0/1": 777}))
    rid = qi.value.request_id
    assert server.devices.get_request(rid).state == "pending"
    await c.wake()  # new port, Update: the queued write goes out right after it
    await wait_until(lambda: server.devices.get_request(rid).state == "done")
    assert c.values[(1, 0, 1)] == 777
    assert server.devices.get_request(rid).result == {"code": "2.04"}


async def test_send_with_timeout_waits_for_the_wake_up(server, clients):
    c = await sleeping(server, clients, "sleepy2")
    reader = asyncio.ensure_future(server.devices.send("sleepy2", ReadRequest("/3/0/0"), timeout=5))
    await asyncio.sleep(0.2)
    await c.wake()
    resp = await reader
    assert resp.values == {P("/3/0/0"): "ACME"}


async def test_send_with_short_timeout_raises_queued_after_waiting(server, clients):
    c = await sleeping(server, clients, "sleepy3")
    with pytest.raises(Queued):
        await server.devices.send("sleepy3", ReadRequest("/3/0/0"), timeout=0.3)


async def test_unknown_request_id_is_not_found(server):
    with pytest.raises(RequestNotFound):
        server.devices.get_request("nope")


async def test_queued_request_fails_when_the_lifetime_passes(server, clients):
    c = await sleeping(server, clients, "sleep-expire", lifetime=1)
    with pytest.raises(Queued) as qi:
        await server.devices.send("sleep-expire", ReadRequest("/3/0"))
    await wait_until(lambda: server.devices.get_request(qi.value.request_id).state == "failed")
    assert "lifetime" in server.devices.get_request(qi.value.request_id).error


async def test_restart_keeps_registrations_queue_and_latest_values(db_url, clients):
    async with running(db_url) as srv:
        c = await clients("persist", queue=True, lifetime=300)
        gone = await clients("short-lived", lifetime=1)
        await c.register(srv.coap_port)
        await gone.register(srv.coap_port)
        await srv.devices.send("persist", ReadRequest("/3/0/9"))
        await c.sleep()
        srv.devices.end_awake_window("persist")
        with pytest.raises(Queued) as qi:
            await srv.devices.send("persist", WriteRequest("/1/0/1", {"/1/0/1": 555}))
        reg_before = srv.registrations.get("persist")
    await asyncio.sleep(1.1)  # short-lived's lifetime passes while the server is down

    async with running(db_url) as srv2:
        reg = srv2.registrations.get("persist")
        assert reg is not None and reg.online
        assert reg.registration_id == reg_before.registration_id
        assert reg.objects == reg_before.objects and reg.queue_mode
        assert not srv2.registrations.get("short-lived").online
        assert srv2.devices.latest("persist")[P("/3/0/9")][0] == 80
        assert srv2.devices.get_request(qi.value.request_id).state == "pending"
        c.server = ("127.0.0.1", srv2.coap_port)
        await c.wake()  # Update with the id from before the restart
        await wait_until(lambda: srv2.devices.get_request(qi.value.request_id).state == "done")
        assert c.values[(1, 0, 1)] == 555


async def test_registration_interface_on_each_database(db_url, clients):
    async with running(db_url) as srv:
        c = await clients("db-dev")
        assert (await c.register(srv.coap_port)).code == Code.CREATED
        assert (await c.update(lifetime=90, objects=True)).code == Code.CHANGED
        resp = await srv.devices.send("db-dev", ReadRequest("/3/0/0"))
        assert resp.values == {P("/3/0/0"): "ACME"}
        await srv.store.flush()
        stored = {r.endpoint: r for r in await srv.store.load_registrations()}
        assert stored["db-dev"].lifetime == 90
        assert (await c.deregister()).code == Code.DELETED
        await srv.store.flush()
        assert await srv.store.load_registrations() == []
        assert (await srv.store.load_latest()).get("db-dev") is None
        events = await srv.store.events(endpoint="db-dev")
        assert {"registered", "updated", "deregistered"} <= {e.kind for e in events}


async def test_after_a_restart_devices_are_reached_at_their_stored_address(sqlite_url, clients):
    async with running(sqlite_url) as srv:
        c = await clients("stay", lifetime=300)
        await c.register(srv.coap_port)
    async with running(sqlite_url) as srv2:
        # no new Register or Update: the request goes to the address stored before the restart
        resp = await srv2.devices.send("stay", ReadRequest("/3/0/0"))
        assert resp.values == {P("/3/0/0"): "ACME"}


async def test_a_failing_database_write_refuses_the_registration_and_keeps_nothing(server, clients,
                                                                                  sqlite_url):
    from sqlalchemy import create_engine, text

    eng = create_engine(sqlite_url)
    with eng.begin() as conn:  # the database loses the table under the running server
        conn.execute(text("DROP TABLE registration"))
    eng.dispose()
    c = await clients("db-fail")
    resp = await c.register(server.coap_port)
    assert resp.code.dotted == "5.00"
    assert server.registrations.get("db-fail") is None
    other = await clients("db-fail-2")
    assert (await other.register(server.coap_port)).code.dotted == "5.00"  # still answering


async def test_frequent_updates_keep_one_expiry_entry_and_still_expire(server, clients):
    c = await clients("chatty", lifetime=2)
    await c.register(server.coap_port)
    for _ in range(20):
        await c.update()
    assert len(server.registrations._expiry) == 1
    await c.update(lifetime=1)  # a shorter lifetime is scheduled at once
    await wait_until(lambda: not server.registrations.get("chatty").online, timeout=4)


async def test_in_memory_store_serves_registration_and_queue_mode(sqlite_url, clients):
    from lwm2m_server.store.repository import MemoryStore

    store = MemoryStore()
    async with running(sqlite_url, store=store) as srv:
        c = await clients("mem-dev", queue=True)
        await c.register(srv.coap_port)
        assert "mem-dev" in store.registrations
        await c.sleep()
        srv.devices.end_awake_window("mem-dev")
        with pytest.raises(Queued) as qi:
            await srv.devices.send("mem-dev", ReadRequest("/3/0/0"))
        assert store.queued[qi.value.request_id][0].state == "pending"
        await c.wake()
        await wait_until(lambda: srv.devices.get_request(qi.value.request_id).state == "done")
        assert store.queued[qi.value.request_id][0].state == "done"
        assert [e.kind for e in await store.events(endpoint="mem-dev", kind="registered")] == ["registered"]


async def test_invalid_write_to_a_sleeping_device_is_refused_not_queued(server, clients):
    from lwm2m_server.protocol.errors import InvalidRequest

    c = await sleeping(server, clients, "sleep-bad")
    with pytest.raises(InvalidRequest):
        await server.devices.send("sleep-bad", WriteRequest("/1/0/1", {"/1/0/1": "three hundred"}))
    with pytest.raises(InvalidRequest):
        await server.devices.send("sleep-bad", WriteRequest("/3/0/0", {"/3/0/0": "read-only"}))
    assert server.devices.queued_for("sleep-bad") == []
