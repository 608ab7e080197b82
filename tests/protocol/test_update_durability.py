"""Durability of Updates: changes are committed before the 2.04, pure refreshes are written behind."""

from __future__ import annotations

import asyncio

from aiocoap import Code
from sqlalchemy import create_engine, select

from lwm2m_server.events import EventBus
from lwm2m_server.protocol.registration import RegistrationManager
from lwm2m_server.store.db import init_db
from lwm2m_server.store.repository import REG, SqlStore
from tests.protocol.conftest import running


def stored_row(db_url: str, endpoint: str) -> dict:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return dict(conn.execute(select(REG).where(REG.c.endpoint == endpoint)).one()._mapping)
    finally:
        eng.dispose()


async def test_an_update_that_changes_the_lifetime_is_stored_before_its_2_04(db_url, clients):
    async with running(db_url) as srv:
        c = await clients("durable", lifetime=300)
        await c.register(srv.coap_port)
        assert (await c.update(lifetime=120)).code == Code.CHANGED
        # no flush: the row must already say 120 when the device has its answer
        assert stored_row(db_url, "durable")["lifetime"] == 120


async def test_a_refresh_only_update_is_written_behind_and_lands_with_the_next_commit(db_url, clients):
    async with running(db_url) as srv:
        c = await clients("refresh", lifetime=300)
        await c.register(srv.coap_port)
        await srv.store.flush()
        before = stored_row(db_url, "refresh")["last_seen"]
        await asyncio.sleep(0.05)
        assert (await c.update()).code == Code.CHANGED
        await srv.store.flush()
        row = stored_row(db_url, "refresh")
        assert row["last_seen"] > before
        assert row["lifetime"] == 300 and row["online"]


async def test_a_late_refresh_of_a_replaced_registration_leaves_the_new_one_alone(sqlite_url):
    engine = create_engine(sqlite_url)
    init_db(engine)
    store = SqlStore(engine)
    await store.start()
    now = [1000.0]
    mgr = RegistrationManager(store, EventBus(), clock=lambda: now[0])
    try:
        first = await mgr.register(["ep=again", "lt=100"], b"</3/0>", ("127.0.0.1", 5000))
        now[0] = 1010.0
        refreshed = await mgr.update(first.registration_id, [], b"", ("127.0.0.1", 5000))
        # the device registers anew before the refresh is committed
        now[0] = 1020.0
        second = await mgr.register(["ep=again", "lt=100"], b"</3/0>", ("127.0.0.1", 5001))
        store.refresh_registration_nowait(refreshed)  # a refresh of the old id, late
        await store.flush()
        [row] = await store.load_registrations()
        assert row.registration_id == second.registration_id
        assert row.last_seen.timestamp() == 1020.0 and row.address == ("127.0.0.1", 5001)
    finally:
        await store.stop()
        engine.dispose()


async def test_an_update_from_a_new_address_is_stored_before_its_2_04(sqlite_url):
    engine = create_engine(sqlite_url)
    init_db(engine)
    store = SqlStore(engine)
    await store.start()
    mgr = RegistrationManager(store, EventBus())
    try:
        reg = await mgr.register(["ep=moved", "lt=100"], b"</3/0>", ("127.0.0.1", 5000))
        await mgr.update(reg.registration_id, [], b"", ("127.0.0.1", 6000))
        assert stored_row(sqlite_url, "moved")["port"] == 6000  # no flush
    finally:
        await store.stop()
        engine.dispose()
