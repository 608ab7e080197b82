"""Bad input and failing devices through the REST API, each pinned to its HTTP code; nothing is
sent to the device for a request the server refuses, and other devices keep being served.
(409 for an offline device is pinned in test_device_flow.py, on both databases.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.lwm2m_client import LwM2MTestClient

from .conftest import Stack, registered, start_stack, stop_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fast(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """SQLite, devices get 0.5 s to answer; shared by this module's tests."""
    db = tmp_path_factory.mktemp("errors") / "err.db"
    s = await start_stack(f"sqlite:///{db}", settings={"request_timeout": 0.5})
    try:
        yield s
    finally:
        await stop_stack(s)


@pytest_asyncio.fixture(loop_scope="module")
async def node(fast: Stack) -> AsyncIterator[LwM2MTestClient]:
    async with registered(fast, "node-1") as c:
        yield c
        await c.deregister()


async def test_401_without_token_and_with_a_bad_token(fast: Stack, node: LwM2MTestClient) -> None:
    r = await fast.http.get("/api/v1/devices/node-1/data/3/0")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = await fast.http.get("/api/v1/devices", headers={"Authorization": "Bearer lwm2m_forged"})
    assert r.status_code == 401
    assert node.received == []


async def test_403_when_the_token_lacks_the_scope(fast: Stack, node: LwM2MTestClient) -> None:
    r = await fast.http.put("/api/v1/devices/node-1/data/1/0/1", json={"values": {"/1/0/1": 1}},
                            headers=fast.auth("read"))
    assert r.status_code == 403 and r.json()["scope"] == "write"
    r = await fast.http.get("/api/v1/devices/node-1/data/3/0", headers=fast.auth("deploy"))
    assert r.status_code == 403 and r.json()["scope"] == "read"
    assert node.received == []
    r = await fast.http.get("/api/v1/devices/node-1/data/3/0/0", headers=fast.auth("admin"))
    assert r.status_code == 200


async def test_404_for_an_unknown_endpoint_and_request_id(fast: Stack) -> None:
    for method, url in [("GET", "/api/v1/devices/ghost"), ("GET", "/api/v1/devices/ghost/data/3/0"),
                        ("GET", "/api/v1/devices/ghost/latest"), ("GET", "/api/v1/requests/nope")]:
        r = await fast.http.request(method, url, headers=fast.auth("read"))
        assert r.status_code == 404, url
        assert r.json()["detail"]
    r = await fast.http.post("/api/v1/devices/ghost/execute/3/0/4", headers=fast.auth("write"))
    assert r.status_code == 404 and r.json()["error"] == "device_not_found"


async def test_504_when_the_device_never_answers_and_others_are_still_served(fast: Stack,
                                                                              node: LwM2MTestClient) -> None:
    async with registered(fast, "mute", behaviour="silent"):
        slow = asyncio.create_task(fast.http.get("/api/v1/devices/mute/data/3/0/0", headers=fast.auth("read")))
        await asyncio.sleep(0.05)
        other = await fast.http.get("/api/v1/devices/node-1/data/3/0/0", headers=fast.auth("read"))
        assert other.status_code == 200 and not slow.done()
        r = await slow
        assert r.status_code == 504 and r.json()["error"] == "device_timeout"


async def test_502_with_the_coap_code_when_the_device_answers_an_error(fast: Stack, node: LwM2MTestClient) -> None:
    r = await fast.http.get("/api/v1/devices/node-1/data/3/7", headers=fast.auth("read"))
    assert r.status_code == 502
    assert r.json()["coap_code"] == "4.04" and r.json()["error"] == "device_error"


async def test_502_when_the_device_answers_garbage(fast: Stack) -> None:
    async with registered(fast, "garbled", behaviour="garbage"):
        r = await fast.http.get("/api/v1/devices/garbled/data/3/0", headers=fast.auth("read"))
        assert r.status_code == 502 and "decode" in r.json()["detail"]


@pytest.mark.parametrize("method, url, body, message", [
    ("GET", "/api/v1/devices/node-1/data/3/x", None, "not a number"),
    ("GET", "/api/v1/devices/node-1/data/3/70000", None, "outside"),
    ("PUT", "/api/v1/devices/node-1/data/1/0/1", {"values": {"/1/0/1": "ten"}}, "not a valid integer"),
    ("PUT", "/api/v1/devices/node-1/data/3/0/0", {"values": {"/3/0/0": "x"}}, "not writable"),
    ("PUT", "/api/v1/devices/node-1/data/4242/0/1", {"values": {"/4242/0/1": 1}}, "no definition"),
    ("PUT", "/api/v1/devices/node-1/data/1/0", {"values": {"/3/0/13": 1}}, "not under /1/0"),
    ("PUT", "/api/v1/devices/node-1/data/1/0/1", {"vals": {}}, "values"),
    ("PUT", "/api/v1/devices/node-1/data/1/0/1", None, "body"),
    ("POST", "/api/v1/devices/node-1/execute/3/0/0", None, "not executable"),
    ("POST", "/api/v1/devices/node-1/execute/3/0", None, "must name a resource"),
    ("PUT", "/api/v1/devices/node-1/attributes/3/0/9", {"pmin": 60, "pmax": 10}, "pmax"),
    ("PUT", "/api/v1/devices/node-1/attributes/3/0/9", {"every": 1}, "every"),
    ("PUT", "/api/v1/devices/node-1/attributes/3/0/9", {}, "at least one"),
    ("POST", "/api/v1/devices/node-1/create/1/0", {"values": {"/1/0/1": 1}}, "create names an object"),
    ("POST", "/api/v1/devices/node-1/composite/read", {"paths": []}, "paths"),
    ("GET", "/api/v1/devices/node-1/data/3/0?timeout=-1", None, "timeout"),
])
async def test_400_for_bad_input_and_nothing_reaches_the_device(fast: Stack, node: LwM2MTestClient,
                                                                method: str, url: str, body: object,
                                                                message: str) -> None:
    r = await fast.http.request(method, url, json=body, headers=fast.auth("write" if method != "GET" else "read"))
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"] and r.json()["error"] == "invalid_request"
    assert node.received == []


async def test_400_for_a_composite_operation_on_a_lwm2m_1_0_device(fast: Stack) -> None:
    async with registered(fast, "old", lwm2m="1.0") as old:
        r = await fast.http.post("/api/v1/devices/old/composite/read", json={"paths": ["/3/0/0"]},
                                 headers=fast.auth("write"))
        assert r.status_code == 400 and "1.1" in r.json()["detail"]
        assert old.received == []
