"""End to end over real UDP and HTTP on 127.0.0.1: a test client registers with the running
server, then everything goes through the REST API; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.lwm2m_client import LwM2MTestClient

from .conftest import Stack, eventually, registered

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def device(stack: Stack) -> AsyncIterator[LwM2MTestClient]:
    """A fresh "node-1" for each test (de-registered afterwards; the stack is shared)."""
    async with registered(stack, "node-1") as client:
        yield client
        with contextlib.suppress(Exception):
            await client.deregister()


async def test_registered_device_is_listed_with_its_registration(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.get("/api/v1/devices", headers=stack.auth("read"))
    assert r.status_code == 200
    assert "node-1" in [d["endpoint"] for d in r.json()]
    page = (await stack.http.get("/api/v1/devices?limit=1&offset=0", headers=stack.auth("read"))).json()
    assert len(page) == 1
    d = (await stack.http.get("/api/v1/devices/node-1", headers=stack.auth("read"))).json()
    assert d["registration_id"] == device.location.split("/")[-1]  # type: ignore[union-attr]
    assert (d["lwm2m_version"], d["binding"], d["lifetime"], d["online"]) == ("1.1", "U", 60, True)
    assert {"/1/0", "/3/0"} <= set(d["objects"])
    assert d["last_seen"] and d["address"].endswith(f":{device.port}")


async def test_read_write_and_read_back(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.get("/api/v1/devices/node-1/data/3/0", headers=stack.auth("read"))
    assert r.status_code == 200
    body = r.json()
    assert body["path"] == "/3/0"
    assert body["values"]["/3/0/0"] == "ACME" and body["values"]["/3/0/7/1"] == 5000
    r = await stack.http.put("/api/v1/devices/node-1/data/1/0/1", json={"values": {"/1/0/1": 120}},
                             headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert device.values[(1, 0, 1)] == 120
    r = await stack.http.get("/api/v1/devices/node-1/data/1/0/1", headers=stack.auth("read"))
    assert r.json()["values"] == {"/1/0/1": 120}
    metrics = (await stack.http.get("/metrics")).text
    assert 'lwm2m_requests_total{operation="read",outcome="ok"}' in metrics
    assert 'lwm2m_requests_total{operation="write",outcome="ok"}' in metrics
    assert 'lwm2m_request_seconds_count{operation="read"}' in metrics


async def test_partial_update_of_an_instance_keeps_other_resources(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.put("/api/v1/devices/node-1/data/1/0", json={"values": {"/1/0/1": 60, "/1/0/6": True}},
                             headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert device.received[-1]["method"] == "POST"
    assert device.values[(1, 0, 1)] == 60 and device.values[(1, 0, 6)] is True
    assert device.values[(1, 0, 7)] == "U"


async def test_execute_passes_arguments_to_the_device(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.post("/api/v1/devices/node-1/execute/3/0/4", json={"args": "0='now'"},
                              headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert device.executed == [("/3/0/4", "0='now'")]


async def test_discover_and_write_attributes(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.put("/api/v1/devices/node-1/attributes/3/0/9", json={"pmin": 1, "pmax": 30},
                             headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert device.attributes["/3/0/9"] == {"pmin": "1", "pmax": "30"}
    r = await stack.http.get("/api/v1/devices/node-1/discover/3/0", headers=stack.auth("read"))
    assert r.status_code == 200
    links = {link["path"]: link["attributes"] for link in r.json()["links"]}
    assert "/3/0/0" in links and str(links["/3/0/9"].get("pmax")) == "30"


async def test_create_then_delete_an_instance(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.post("/api/v1/devices/node-1/create/1",
                              json={"values": {"/1/1/0": 2, "/1/1/1": 60, "/1/1/6": False, "/1/1/7": "U"},
                                    "instance_id": 1},
                              headers=stack.auth("write"))
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "/1/1" and device.values[(1, 1, 1)] == 60
    r = await stack.http.delete("/api/v1/devices/node-1/data/1/1", headers=stack.auth("write"))
    assert r.status_code == 200 and (1, 1) not in device.instances
    # Without an instance id the device picks one and says which in its answer.
    r = await stack.http.post("/api/v1/devices/node-1/create/1",
                              json={"values": {"/1/0/0": 3, "/1/0/1": 90, "/1/0/6": False, "/1/0/7": "U"}},
                              headers=stack.auth("write"))
    assert r.status_code == 201, r.text
    created = r.json()["path"]
    assert created.startswith("/1/") and created != "/1/0"
    assert device.values[(1, int(created.split("/")[2]), 1)] == 90


async def test_composite_read_and_write(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.post("/api/v1/devices/node-1/composite/read",
                              json={"paths": ["/3/0/0", "/1/0/1"]}, headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert r.json()["values"] == {"/1/0/1": 300, "/3/0/0": "ACME"}
    r = await stack.http.put("/api/v1/devices/node-1/composite/write",
                             json={"values": {"/1/0/1": 90, "/3/0/13": 1700000000}},
                             headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert device.values[(1, 0, 1)] == 90 and device.values[(3, 0, 13)] == 1700000000


async def test_observe_notifications_show_in_latest_events_and_the_stream(
        stack: Stack, device: LwM2MTestClient) -> None:
    read = stack.auth("read")
    r = await stack.http.post("/api/v1/devices/node-1/observe/3/0/9", headers=stack.auth("write"))
    assert r.status_code == 200 and r.json()["values"] == {"/3/0/9": 80}

    async with stack.http.stream("GET", "/api/v1/events/stream?endpoint=node-1&kind=notification",
                                 headers=read) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"
        device.set("/3/0/9", 70)
        frame: dict[str, str] = {}
        async with asyncio.timeout(5):
            async for line in lines:
                if not line:
                    if frame:
                        break
                    continue
                key, _, value = line.partition(": ")
                frame[key] = value
    assert frame["event"] == "notification"
    assert json.loads(frame["data"])["data"]["values"] == {"/3/0/9": 70}

    async def latest() -> Any:
        got = (await stack.http.get("/api/v1/devices/node-1/latest", headers=read)).json()
        return got["values"].get("/3/0/9", {}).get("value") == 70 and got

    assert (await eventually(latest))["values"]["/3/0/9"]["time"]
    events = (await stack.http.get("/api/v1/events?endpoint=node-1&kind=notification", headers=read)).json()
    assert events and events[0]["data"]["values"] == {"/3/0/9": 70}

    r = await stack.http.delete("/api/v1/devices/node-1/observe/3/0/9", headers=stack.auth("write"))
    assert r.status_code == 200
    device.set("/3/0/9", 65)  # the server answers this notification with a Reset

    async def observer_gone() -> bool:
        return device.root.observers == []

    await eventually(observer_gone)
    events = (await stack.http.get("/api/v1/events?endpoint=node-1&kind=notification", headers=read)).json()
    assert all(e["data"]["values"] != {"/3/0/9": 65} for e in events)
    r = await stack.http.delete("/api/v1/devices/node-1/observe/3/0/9", headers=stack.auth("write"))
    assert r.status_code == 400 and "no observation" in r.json()["detail"]


async def test_update_changes_the_registration_and_is_an_event(stack: Stack, device: LwM2MTestClient) -> None:
    resp = await device.update(lifetime=120)
    assert str(resp.code).startswith("2.04")
    d = (await stack.http.get("/api/v1/devices/node-1", headers=stack.auth("read"))).json()
    assert d["lifetime"] == 120
    kinds = [e["kind"] for e in (await stack.http.get("/api/v1/events?endpoint=node-1",
                                                       headers=stack.auth("read"))).json()]
    assert kinds[:2] == ["updated", "registered"]


async def test_deregistered_device_is_gone(stack: Stack, device: LwM2MTestClient) -> None:
    resp = await device.deregister()
    assert str(resp.code).startswith("2.02")
    r = await stack.http.get("/api/v1/devices/node-1/data/3/0", headers=stack.auth("read"))
    assert r.status_code == 404 and r.json()["error"] == "device_not_found"
    listed = (await stack.http.get("/api/v1/devices?online=true", headers=stack.auth("read"))).json()
    assert "node-1" not in [d["endpoint"] for d in listed]


async def test_lifetime_expiry_marks_the_device_offline_and_reads_get_409(stack: Stack) -> None:
    async with registered(stack, "short-lived", lifetime=1):
        async def offline() -> bool:
            d = (await stack.http.get("/api/v1/devices/short-lived", headers=stack.auth("read"))).json()
            return d["online"] is False

        await eventually(offline, timeout=6)
        r = await stack.http.get("/api/v1/devices/short-lived/data/3/0", headers=stack.auth("read"))
        assert r.status_code == 409 and r.json()["error"] == "device_offline"
        r = await stack.http.put("/api/v1/devices/short-lived/data/1/0/1", json={"values": {"/1/0/1": 5}},
                                 headers=stack.auth("write"))
        assert r.status_code == 409 and "offline" in r.json()["detail"]
        kinds = [e["kind"] for e in (await stack.http.get("/api/v1/events?endpoint=short-lived",
                                                           headers=stack.auth("read"))).json()]
        assert "expired" in kinds


async def test_queue_mode_request_is_queued_then_delivered_on_wake_up(stack: Stack) -> None:
    async with registered(stack, "sleepy", queue=True, asleep=True) as client:
        r = await stack.http.put("/api/v1/devices/sleepy/data/1/0/1", json={"values": {"/1/0/1": 42}},
                                 headers=stack.auth("write"))
        assert r.status_code == 202, r.text
        rid = r.json()["request_id"]
        assert r.headers["location"] == f"/api/v1/requests/{rid}"
        polled = (await stack.http.get(f"/api/v1/requests/{rid}", headers=stack.auth("read"))).json()
        assert polled["state"] == "pending" and polled["endpoint"] == "sleepy"

        await client.wake()  # new source port, then Update: the queued write goes out

        async def done() -> Any:
            q = (await stack.http.get(f"/api/v1/requests/{rid}", headers=stack.auth("read"))).json()
            return q["state"] == "done" and q

        assert (await eventually(done))["result"] == {"code": "2.04"}
        assert client.values[(1, 0, 1)] == 42


async def test_queue_mode_caller_can_wait_with_timeout(stack: Stack) -> None:
    async with registered(stack, "sleepy2", queue=True, asleep=True) as client:
        short = await stack.http.get("/api/v1/devices/sleepy2/data/3/0/9?timeout=0.3",
                                     headers=stack.auth("read"))
        assert short.status_code == 202

        async def wake_soon() -> None:
            await asyncio.sleep(0.5)
            await client.wake()

        waker = asyncio.create_task(wake_soon())
        r = await stack.http.get("/api/v1/devices/sleepy2/data/3/0/0?timeout=10", headers=stack.auth("read"))
        await waker
        assert r.status_code == 200, r.text
        assert r.json()["values"] == {"/3/0/0": "ACME"}


async def test_observe_composite_notifications_reach_latest(stack: Stack, device: LwM2MTestClient) -> None:
    r = await stack.http.post("/api/v1/devices/node-1/composite/observe",
                              json={"paths": ["/3/0/9", "/1/0/1"]}, headers=stack.auth("write"))
    assert r.status_code == 200, r.text
    assert r.json()["values"] == {"/1/0/1": 300, "/3/0/9": 80} and r.json()["observing"] is True
    device.set("/1/0/1", 77)

    async def latest() -> bool:
        got = (await stack.http.get("/api/v1/devices/node-1/latest", headers=stack.auth("read"))).json()
        return got["values"].get("/1/0/1", {}).get("value") == 77

    await eventually(latest)
    r = await stack.http.post("/api/v1/devices/node-1/composite/observe/cancel",
                              json={"paths": ["/3/0/9", "/1/0/1"]}, headers=stack.auth("write"))
    assert r.status_code == 200, r.text

    async def cancel_reached_the_device() -> bool:  # active cancel: FETCH with Observe=1
        return any(q["method"] == "FETCH" and q["observe"] == 1 for q in device.received)

    await eventually(cancel_reached_the_device)
    assert device.root.observers == []


async def test_send_from_the_device_is_stored_and_visible(stack: Stack, device: LwM2MTestClient) -> None:
    resp = await device.send({"/3/0/9": 55, "/33100/0/6": 2})
    assert str(resp.code).startswith("2.04")
    events = (await stack.http.get("/api/v1/events?endpoint=node-1&kind=send", headers=stack.auth("read"))).json()
    assert events and events[0]["kind"] == "send"
    got = (await stack.http.get("/api/v1/devices/node-1/latest", headers=stack.auth("read"))).json()
    assert got["values"]["/3/0/9"]["value"] == 55 and got["values"]["/33100/0/6"]["value"] == 2


async def test_queued_request_fails_with_a_reason_when_the_sleeper_expires(stack: Stack) -> None:
    async with registered(stack, "sleepy3", queue=True, lifetime=3, asleep=True):
        r = await stack.http.get("/api/v1/devices/sleepy3/data/3/0/0", headers=stack.auth("read"))
        assert r.status_code == 202
        rid = r.json()["request_id"]

        async def failed() -> Any:
            q = (await stack.http.get(f"/api/v1/requests/{rid}", headers=stack.auth("read"))).json()
            return q["state"] in ("failed", "expired") and q

        q = await eventually(failed, timeout=6)
        assert q["error"] and q["result"] is None


async def test_device_list_pages_by_keyset_with_a_next_link_and_streams_every_device(stack: Stack) -> None:
    names = ["page-a", "page-b", "page-c"]
    async with contextlib.AsyncExitStack() as es:
        for n in names:
            await es.enter_async_context(registered(stack, n))
        listed = sorted(d["endpoint"] for d in (await stack.http.get(
            "/api/v1/devices", headers=stack.auth("read"))).json())
        seen: list[str] = []
        url = "/api/v1/devices?limit=2"
        while url:
            r = await stack.http.get(url, headers=stack.auth("read"))
            assert r.status_code == 200
            page = [d["endpoint"] for d in r.json()]
            assert len(page) <= 2 and page == sorted(page)
            seen += page
            nxt = r.links.get("next", {}).get("url")
            url = nxt.split("://", 1)[-1].split("/", 1)[-1] if nxt else ""
            url = "/" + url if url else ""
        assert seen == listed and set(names) <= set(seen)
        r = await stack.http.get("/api/v1/devices", headers={**stack.auth("read"),
                                                             "Accept": "application/x-ndjson"})
        assert r.headers["content-type"].startswith("application/x-ndjson")
        streamed = [json.loads(line)["endpoint"] for line in r.text.splitlines()]
        assert streamed == listed
        after = (await stack.http.get("/api/v1/devices?after=page-a&limit=1",
                                      headers=stack.auth("read"))).json()
        assert [d["endpoint"] for d in after] == ["page-b"]
