"""Retention: expired registrations, old events and finished queued requests are purged in
batches by the housekeeping task, on SQLite and PostgreSQL; what is still kept stays."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

from aiocoap import Code

from lwm2m_server.config import Settings
from lwm2m_server.metrics import PURGED
from lwm2m_server.protocol.queue import QueuedRequest
from lwm2m_server.protocol.requests import ReadRequest, request_to_json
from lwm2m_server.store.retention import RetentionPolicy
from tests.protocol.conftest import count_rows, running


def queued(i: int, state: str, age: timedelta) -> QueuedRequest:
    when = datetime.now(timezone.utc) - age
    return QueuedRequest(id=f"q{i}", endpoint="gone-0", request=request_to_json(ReadRequest("/3/0")),
                         state=state, created_at=when, updated_at=when, expires_at=when)


async def test_housekeeping_purges_what_is_past_retention_in_batches(db_url, clients) -> None:
    async with running(db_url, retention_registrations=60, retention_events=60,
                       retention_requests=600, retention_batch=7) as srv:
        keep = await clients("keeper", lifetime=300)
        assert (await keep.register(srv.coap_port)).code == Code.CREATED
        for i in range(15):
            c = await clients(f"gone-{i}", lifetime=1)
            assert (await c.register(srv.coap_port)).code == Code.CREATED
        deadline = time.monotonic() + 5
        while any(r.online for r in srv.registrations.list() if r.endpoint.startswith("gone-")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        for i in range(10):
            await srv.store.save_queued(queued(i, "done", timedelta(seconds=300)), ReadRequest("/3/0"))
        await srv.store.save_queued(queued(98, "pending", timedelta(hours=1)), ReadRequest("/3/0"))
        await srv.store.save_queued(queued(99, "failed", timedelta(seconds=1)), ReadRequest("/3/0"))
        await srv.store.flush()
        events_before = count_rows(db_url, "device_event")
        assert events_before >= 31  # registered + expired per device, and the keeper's

        # Nothing is old enough yet.
        assert await srv.retention.run_once() == {"registrations": 0, "events": 0, "requests": 0}

        purged_before = PURGED.value("event")
        srv.retention.clock = lambda: time.time() + 400  # later: past 60 s, and 300 s + 400 s > 600 s
        done = await srv.retention.run_once()
        assert done["registrations"] == 15
        assert done["requests"] == 10  # not the pending one, not the one finished a second ago
        assert done["events"] == events_before
        assert PURGED.value("event") - purged_before == events_before
        assert [r.endpoint for r in srv.registrations.list()] == ["keeper"]
        assert srv.registrations.get("keeper").online
        await srv.store.flush()
        assert count_rows(db_url, "registration") == 1
        assert count_rows(db_url, "device_event") == 0
        assert count_rows(db_url, "queued_request") == 2
        assert await srv.store.get_queued("q98") is not None
        assert await srv.store.get_queued("q99") is not None
        # A purged endpoint may register again as a new device.
        again = await clients("gone-3")
        assert (await again.register(srv.coap_port)).code == Code.CREATED


async def test_retention_zero_keeps_for_ever(sqlite_url, clients) -> None:
    async with running(sqlite_url, retention_registrations=0, retention_events=0,
                       retention_requests=0) as srv:
        c = await clients("old", lifetime=1)
        await c.register(srv.coap_port)
        await asyncio.sleep(1.5)
        srv.retention.clock = lambda: time.time() + 10 * 365 * 86400
        assert await srv.retention.run_once() == {"registrations": 0, "events": 0, "requests": 0}
        assert srv.registrations.get("old") is not None


def test_retention_settings_have_defaults_and_come_from_the_environment(monkeypatch) -> None:
    policy = RetentionPolicy.from_settings(Settings())
    assert policy.registrations == 30 * 86400 and policy.events == 30 * 86400
    assert policy.requests == 7 * 86400 and policy.batch == 1000 and policy.interval == 600
    monkeypatch.setenv("LWM2M_RETENTION_EVENTS", "3600")
    monkeypatch.setenv("LWM2M_RETENTION_BATCH", "50")
    policy = RetentionPolicy.from_settings(Settings())
    assert policy.events == 3600 and policy.batch == 50
