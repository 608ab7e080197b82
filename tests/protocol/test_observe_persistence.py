"""Observations survive a server restart and a new Register, over real UDP, on SQLite and
PostgreSQL (and on the in-memory store shared by two server instances)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import InvalidRequest
from lwm2m_server.protocol.requests import (CancelObserveRequest, ObserveCompositeRequest,
                                            ObserveRequest, WriteAttributesRequest)
from lwm2m_server.store.repository import MemoryStore
from tests.protocol.conftest import count_rows, running
from tests.protocol.test_lifecycle import wait_until

P = Path.parse
# The background read after Register is tested on its own: off here, so counts are observes only.
QUIET = {"read_on_register": False}


def observes(c: Any, path: str, observe: int = 0, method: str = "GET") -> int:
    """How many Observe (or cancel, ``observe=1``) requests of ``path`` the device received (the
    test client logs the request again for each notification it renders: count before those)."""
    return sum(1 for r in c.received
               if r["method"] == method and r["path"] == path and r["observe"] == observe)


async def observing(srv: Any, clients: Any, endpoint: str, path: str = "/3/0/9", **kw: Any) -> Any:
    """A test client registered (lifetime 300 s) on ``srv`` and observed at ``path``."""
    c = await clients(endpoint, lifetime=300, **kw)
    await c.register(srv.coap_port)
    await srv.devices.send(endpoint, ObserveRequest(path))
    return c


async def test_observation_is_re_established_after_a_restart_without_a_new_call(db_url, clients):
    async with running(db_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-restart")
        [stored] = srv.devices.stored_observations("obs-restart")
        assert stored.paths == (P("/3/0/9"),) and stored.origin == "api" and not stored.composite
    assert count_rows(db_url, "observation") == 1

    async with running(db_url, **QUIET) as srv2:
        sub = srv2.events.subscribe()
        # re-observed at start-up: the device is registered and not in queue mode
        await wait_until(lambda: observes(c, "/3/0/9") == 2)
        await wait_until(lambda: srv2.devices.observations("obs-restart") == [(P("/3/0/9"),)])
        c.set("/3/0/9", 42)
        await wait_until(lambda: srv2.devices.latest("obs-restart").get(P("/3/0/9"), (None,))[0] == 42)
        kinds = []
        while not sub.queue.empty():
            kinds.append(sub.queue.get_nowait())
        assert "observation_restored" in [e.kind for e in kinds]
        assert any(e.kind == "notification" and e.data["values"] == {"/3/0/9": 42} for e in kinds)
        sub.close()
    assert count_rows(db_url, "observation") == 1  # still observed: kept for the next start


async def test_cancel_removes_the_stored_observation_and_a_restart_does_not_observe_again(db_url, clients):
    async with running(db_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-cancel")
        await srv.devices.send("obs-cancel", CancelObserveRequest("/3/0/9"))
        assert srv.devices.stored_observations("obs-cancel") == []
        await wait_until(lambda: observes(c, "/3/0/9", observe=1) == 1)
    assert count_rows(db_url, "observation") == 0
    async with running(db_url, **QUIET) as srv2:
        await asyncio.sleep(0.3)
        assert observes(c, "/3/0/9") == 1
        assert srv2.devices.observations("obs-cancel") == []
        with pytest.raises(InvalidRequest, match="no observation"):
            await srv2.devices.send("obs-cancel", CancelObserveRequest("/3/0/9"))


async def test_cancel_after_a_restart_removes_an_observation_not_yet_re_established(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-cancel-late", queue=True)
    async with running(sqlite_url, **QUIET) as srv2:
        # queue mode: not re-observed at start-up, yet the caller may cancel it (device asleep)
        assert srv2.devices.observations("obs-cancel-late") == []
        srv2.devices.queue._awake_until["obs-cancel-late"] = float("inf")  # awake: the cancel is not queued
        await srv2.devices.send("obs-cancel-late", CancelObserveRequest("/3/0/9"))
        assert srv2.devices.stored_observations("obs-cancel-late") == []
    assert count_rows(sqlite_url, "observation") == 0
    assert observes(c, "/3/0/9") == 1


async def test_a_new_register_re_observes_and_notifications_keep_flowing(db_url, clients):
    async with running(db_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-rereg")
        first_id = srv.registrations.get("obs-rereg").registration_id
        await c.register(srv.coap_port)  # e.g. after a reboot: the client dropped its observations
        assert srv.registrations.get("obs-rereg").registration_id != first_id
        await wait_until(lambda: observes(c, "/3/0/9") == 2)
        await wait_until(lambda: srv.devices.observations("obs-rereg") == [(P("/3/0/9"),)])
        c.set("/3/0/9", 17)
        await wait_until(lambda: srv.devices.latest("obs-rereg").get(P("/3/0/9"), (None,))[0] == 17)
        assert len(srv.devices.stored_observations("obs-rereg")) == 1


async def test_de_register_removes_the_stored_observations(db_url, clients):
    async with running(db_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-dereg")
        assert count_rows(db_url, "observation") == 1
        await c.deregister()
        await srv.store.flush()
        assert srv.devices.stored_observations("obs-dereg") == []
        assert await srv.store.load_observations() == []
    assert count_rows(db_url, "observation") == 0


async def test_queue_mode_device_is_re_observed_at_its_next_update_not_at_start_up(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-queue", queue=True)
    await c.sleep()
    async with running(sqlite_url, **QUIET) as srv2:
        await asyncio.sleep(0.3)
        assert observes(c, "/3/0/9") == 1  # asleep: nothing sent, nothing queued
        assert srv2.devices.queued_for("obs-queue") == []
        c.server = ("127.0.0.1", srv2.coap_port)
        await c.wake()  # new port, Update
        await wait_until(lambda: observes(c, "/3/0/9") == 2)
        await wait_until(lambda: srv2.devices.observations("obs-queue") == [(P("/3/0/9"),)])
        c.set("/3/0/9", 5)
        await wait_until(lambda: srv2.devices.latest("obs-queue").get(P("/3/0/9"), (None,))[0] == 5)
        sub = srv2.events.subscribe()
        await c.update()  # already active: not observed again
        await asyncio.sleep(0.2)
        kinds = []
        while not sub.queue.empty():
            kinds.append(sub.queue.get_nowait().kind)
        assert kinds == ["updated"]
        sub.close()


async def test_composite_observation_and_write_attributes_come_back_after_a_restart(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await clients("obs-comp", lifetime=300)
        await c.register(srv.coap_port)
        await srv.devices.send("obs-comp", WriteAttributesRequest("/3/0/9", {"pmin": 1, "pmax": 30}))
        await srv.devices.send("obs-comp", ObserveRequest("/3/0/9"))
        await srv.devices.send("obs-comp", ObserveCompositeRequest(["/1/0/1", "/3/0/0"]))
        stored = {o.paths: o for o in srv.devices.stored_observations("obs-comp")}
        assert stored[(P("/3/0/9"),)].attributes == {"pmin": 1, "pmax": 30}
        assert stored[(P("/1/0/1"), P("/3/0/0"))].composite
    c.attributes.clear()
    async with running(sqlite_url, **QUIET) as srv2:
        await wait_until(lambda: sorted(srv2.devices.observations("obs-comp")) ==
                         sorted([(P("/3/0/9"),), (P("/1/0/1"), P("/3/0/0"))]))
        assert c.attributes["/3/0/9"] == {"pmin": "1", "pmax": "30"}
        assert observes(c, "/", method="FETCH") == 2
        c.set("/1/0/1", 120)
        await wait_until(lambda: srv2.devices.latest("obs-comp").get(P("/1/0/1"), (None,))[0] == 120)


async def test_the_origin_of_an_observation_is_stored_and_checked(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await clients("obs-origin", lifetime=300)
        await c.register(srv.coap_port)
        await srv.devices.send("obs-origin", ObserveRequest("/3/0/9"), origin="rollout")
        with pytest.raises(InvalidRequest, match="origin"):
            await srv.devices.send("obs-origin", ObserveRequest("/3/0/0"), origin="someone")
        assert [o.origin for o in await srv.store.load_observations()] == ["rollout"]
        assert observes(c, "/3/0/0") == 0


async def test_a_path_the_device_no_longer_has_is_dropped_when_re_observing(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-gone")
    del c.values[(3, 0, 9)]  # new firmware without that resource
    async with running(sqlite_url, **QUIET) as srv2:
        sub = srv2.events.subscribe()
        await wait_until(lambda: srv2.devices.stored_observations("obs-gone") == [])
        ended = await asyncio.wait_for(sub.queue.get(), 2)
        while ended.kind != "observation_ended":
            ended = await asyncio.wait_for(sub.queue.get(), 2)
        assert "4.04" in ended.data["reason"]
        sub.close()
    assert count_rows(sqlite_url, "observation") == 0


async def test_the_in_memory_store_keeps_observations_for_a_new_server_instance(sqlite_url, clients):
    store = MemoryStore()
    async with running(sqlite_url, store=store, **QUIET) as srv:
        c = await observing(srv, clients, "obs-mem")
        assert list(store.observations) == [("obs-mem", (P("/3/0/9"),))]
    async with running(sqlite_url, store=store, **QUIET) as srv2:
        await wait_until(lambda: observes(c, "/3/0/9") == 2)
        await srv2.devices.send("obs-mem", CancelObserveRequest("/3/0/9"))
        assert store.observations == {}


async def test_cancel_for_a_sleeping_device_forgets_the_observation_without_queueing(sqlite_url, clients):
    async with running(sqlite_url, **QUIET) as srv:
        c = await observing(srv, clients, "obs-asleep", queue=True)
        await c.sleep()
        srv.devices.end_awake_window("obs-asleep")
        resp = await srv.devices.send("obs-asleep", CancelObserveRequest("/3/0/9"))
        assert resp.code == "2.05"
        assert srv.devices.stored_observations("obs-asleep") == []
        assert srv.devices.queued_for("obs-asleep") == []
    assert count_rows(sqlite_url, "observation") == 0


async def test_observe_queued_for_a_sleeping_device_keeps_the_callers_origin(sqlite_url, clients):
    from lwm2m_server.protocol.errors import Queued

    async with running(sqlite_url, **QUIET) as srv:
        c = await clients("obs-queued-origin", queue=True, lifetime=300)
        await c.register(srv.coap_port)
        await c.sleep()
        srv.devices.end_awake_window("obs-queued-origin")
        with pytest.raises(Queued):
            await srv.devices.send("obs-queued-origin", ObserveRequest("/3/0/9"), origin="rollout")
        await c.wake()
        await wait_until(lambda: bool(srv.devices.stored_observations("obs-queued-origin")))
        [stored] = srv.devices.stored_observations("obs-queued-origin")
        assert stored.origin == "rollout"
