"""After a Register the server reads /3/0 (and /33100/0) in the background, once per registration,
into latest values; the setting ``read_on_register`` turns it off. Over real UDP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiocoap import Code

from lwm2m_server.config import Settings
from lwm2m_server.model import Path
from tests.protocol.conftest import DEVICE_VALUES, running
from tests.protocol.test_lifecycle import wait_until

P = Path.parse

MODEL_VALUES = {**DEVICE_VALUES, "/3/0/3": "1.4.2", "/33100/0/0": 1, "/33100/0/1/0": "kws-v1",
                "/33100/0/1/1": "kws-v2", "/33100/0/4": 12}


@pytest.fixture
async def server(sqlite_url: str) -> AsyncIterator[Any]:
    """The shared fixture's server, with the background read on (the shared one turns it off)."""
    async with running(sqlite_url, read_on_register=True) as srv:
        yield srv


def reads(c: Any, path: str) -> int:
    return sum(1 for r in c.received if r["method"] == "GET" and r["path"] == path and r["observe"] is None)


def latest(srv: Any, endpoint: str, path: str) -> Any:
    return srv.devices.latest(endpoint).get(P(path), (None,))[0]


async def drain(sub: Any) -> list[Any]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


async def test_register_fills_firmware_version_and_model_info_into_latest_values(sqlite_url, clients):
    async with running(sqlite_url, read_on_register=True) as srv:
        c = await clients("ror-model", MODEL_VALUES)
        assert (await c.register(srv.coap_port)).code == Code.CREATED
        await wait_until(lambda: latest(srv, "ror-model", "/33100/0/1/1") == "kws-v2")
        assert latest(srv, "ror-model", "/3/0/3") == "1.4.2"
        assert latest(srv, "ror-model", "/3/0/0") == "ACME"
        assert latest(srv, "ror-model", "/33100/0/0") == 1
        assert (reads(c, "/3/0"), reads(c, "/33100/0")) == (1, 1)
        await srv.store.flush()
        stored = (await srv.store.load_latest())["ror-model"]
        assert stored[P("/3/0/3")][0] == "1.4.2"


async def test_device_without_the_model_object_gets_only_the_device_read(server, clients):
    c = await clients("ror-plain")
    await c.register(server.coap_port)
    await wait_until(lambda: latest(server, "ror-plain", "/3/0/1") == "TinyML-1")
    await asyncio.sleep(0.1)
    assert [r["path"] for r in c.received] == ["/3/0"]


async def test_the_read_never_delays_the_register_answer(sqlite_url, clients):
    async with running(sqlite_url, request_timeout=2.0, read_on_register=True) as srv:
        c = await clients("ror-silent", behaviour="silent")
        started = time.monotonic()
        assert (await c.register(srv.coap_port)).code == Code.CREATED
        assert time.monotonic() - started < 1.0  # the device never answers the read
        await wait_until(lambda: reads(c, "/3/0") == 1)


async def test_at_most_one_read_per_registration_and_again_after_a_new_register(server, clients):
    c = await clients("ror-once", MODEL_VALUES)
    await c.register(server.coap_port)
    await wait_until(lambda: reads(c, "/33100/0") == 1)
    for _ in range(3):
        await c.update()
    await c.update(objects=True)
    await asyncio.sleep(0.2)
    assert (reads(c, "/3/0"), reads(c, "/33100/0")) == (1, 1)
    c.values[(3, 0, 3)] = "1.5.0"  # a firmware update, then the device registers again
    await c.register(server.coap_port)
    await wait_until(lambda: latest(server, "ror-once", "/3/0/3") == "1.5.0")
    await wait_until(lambda: reads(c, "/33100/0") == 2)
    assert reads(c, "/3/0") == 2


async def test_setting_off_sends_no_read(sqlite_url, clients):
    async with running(sqlite_url, read_on_register=False) as srv:
        c = await clients("ror-off", MODEL_VALUES)
        await c.register(srv.coap_port)
        await asyncio.sleep(0.3)
        assert c.received == []
        assert srv.devices.latest("ror-off") == {}


def test_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LWM2M_READ_ON_REGISTER", "false")
    assert Settings().read_on_register is False
    monkeypatch.delenv("LWM2M_READ_ON_REGISTER")
    assert Settings().read_on_register is True


async def test_a_failed_read_is_only_an_event(server, clients):
    sub = server.events.subscribe()
    c = await clients("ror-garbage", behaviour="garbage")
    assert (await c.register(server.coap_port)).code == Code.CREATED
    await wait_until(lambda: any(e.kind == "read_on_register_failed" for e in list(sub.queue._queue)))
    failed = [e for e in await drain(sub) if e.kind == "read_on_register_failed"]
    assert failed[0].endpoint == "ror-garbage" and failed[0].data["path"] == "/3/0"
    assert "decode" in failed[0].data["error"]
    assert server.registrations.get("ror-garbage").online
    assert server.devices.latest("ror-garbage") == {}
    sub.close()


async def test_queue_mode_device_is_read_while_awake_and_never_queued(sqlite_url, clients):
    async with running(sqlite_url, request_timeout=0.5, read_on_register=True) as srv:
        awake = await clients("ror-q-awake", queue=True)
        await awake.register(srv.coap_port)
        await wait_until(lambda: latest(srv, "ror-q-awake", "/3/0/0") == "ACME")
        sub = srv.events.subscribe()
        asleep = await clients("ror-q-asleep", queue=True, behaviour="silent")  # sleeps at once
        await asleep.register(srv.coap_port)
        await wait_until(lambda: any(e.kind == "read_on_register_failed" for e in list(sub.queue._queue)),
                         timeout=3)
        assert srv.devices.queued_for("ror-q-asleep") == []
        assert [e.kind for e in await drain(sub)].count("request_queued") == 0
        sub.close()


async def test_background_reads_wait_their_turn_while_devices_keep_sending(sqlite_url, clients):
    async with running(sqlite_url, read_on_register=True) as srv:
        pacer = srv.devices.background.pacer
        # One background request per 0.5 s while Registers or Updates arrive.
        pacer.burst_rate = pacer.busy_rate = 2.0
        pacer.busy_window = 0.5
        devices = [await clients(f"ror-pace-{i}") for i in range(4)]
        for c in devices:
            await c.register(srv.coap_port)
        started = time.monotonic()
        while time.monotonic() - started < 1.0:  # the devices' own traffic keeps the server busy
            await devices[0].update()
            await asyncio.sleep(0.05)
        assert sum(reads(c, "/3/0") for c in devices) <= 3  # 1 at once, then 1 per 0.5 s
        # Quiet again: the rest go out at the idle pace.
        await wait_until(lambda: all(reads(c, "/3/0") == 1 for c in devices), timeout=3)


async def test_a_device_that_leaves_before_its_background_read_is_never_read(sqlite_url, clients):
    async with running(sqlite_url, read_on_register=True) as srv:
        background = srv.devices.background
        pacer = background.pacer
        pacer.burst_rate = pacer.busy_rate = pacer.idle_rate = 1.0  # one read per second
        first, leaving = await clients("ror-first"), await clients("ror-leaving")
        await first.register(srv.coap_port)
        await wait_until(lambda: reads(first, "/3/0") == 1)
        await leaving.register(srv.coap_port)  # its read waits about a second for its turn
        await asyncio.sleep(0.1)
        assert background.pending() == 1
        assert (await leaving.deregister()).code == Code.DELETED
        assert background.pending() == 0  # its task was cancelled, not left to run
        await asyncio.sleep(1.3)
        assert leaving.received == []
