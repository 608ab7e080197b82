"""Device-management operations end to end over real UDP: the server's DeviceManager against the
independent test client."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m_server.events import Event
from lwm2m_server.model import ObjLnk, Path
from lwm2m_server.protocol.errors import (DeviceError, DeviceNotFound, DeviceTimeout,
                                          InvalidRequest)
from lwm2m_server.protocol.requests import (
    CancelObserveCompositeRequest, CancelObserveRequest, CreateRequest, CreateResponse,
    DeleteRequest, DiscoverRequest, EmptyResponse, ExecuteRequest, ObserveCompositeRequest,
    ObserveRequest, ReadCompositeRequest, ReadRequest, WriteAttributesRequest,
    WriteCompositeRequest, WriteRequest)
from tests.support.lwm2m_client import SENML_CBOR, SENML_JSON, TEXT, TLV, Link

P = Path.parse


async def registered(server, clients, ep="dev", values=None, **kw):
    c = await clients(ep, values, **kw)
    resp = await c.register(server.coap_port)
    assert resp.code.dotted == "2.01", (resp.code, resp.payload)
    return c


async def next_event(sub, kind: str, timeout: float = 5.0) -> Event:
    async def find() -> Event:
        async for e in sub:
            if e.kind == kind:
                return e
        raise AssertionError("subscription ended")
    return await asyncio.wait_for(find(), timeout)


async def test_read_uses_senml_cbor_for_1_1_devices(server, clients):
    c = await registered(server, clients)
    resp = await server.devices.send("dev", ReadRequest("/3/0"))
    assert resp.values[P("/3/0/0")] == "ACME"
    assert resp.values[P("/3/0/7/1")] == 5000
    assert c.received[-1]["accept"] == SENML_CBOR
    assert server.devices.latest("dev")[P("/3/0/9")][0] == 80


async def test_read_uses_tlv_for_1_0_devices(server, clients):
    c = await registered(server, clients, "dev10", lwm2m="1.0")
    resp = await server.devices.send("dev10", ReadRequest("/3/0"))
    assert resp.values[P("/3/0/1")] == "TinyML-1"
    assert resp.values[P("/3/0/7/0")] == 3800
    assert c.received[-1]["accept"] == TLV


async def test_read_asks_for_the_root_link_ct_format_first(server, clients):
    c = await registered(server, clients, "devct", root_ct=SENML_JSON)
    resp = await server.devices.send("devct", ReadRequest("/1/0/1"))
    assert resp.values == {P("/1/0/1"): 300}
    assert c.received[-1]["accept"] == SENML_JSON


async def test_read_falls_back_on_4_06_and_remembers_the_format(server, clients):
    c = await registered(server, clients, "devtlv", formats=(TLV, TEXT))
    resp = await server.devices.send("devtlv", ReadRequest("/3/0"))
    assert resp.values[P("/3/0/0")] == "ACME"
    accepts = [r["accept"] for r in c.received]
    assert accepts[0] == SENML_CBOR and accepts[-1] == TLV
    n = len(c.received)
    await server.devices.send("devtlv", ReadRequest("/1/0"))
    assert [r["accept"] for r in c.received[n:]] == [TLV]


async def test_write_falls_back_on_4_15(server, clients):
    c = await registered(server, clients, "devw", formats=(TLV,))
    await server.devices.send("devw", WriteRequest("/1/0", {"/1/0/1": 900}, replace=False))
    assert c.values[(1, 0, 1)] == 900
    assert c.received[-1]["content_format"] == TLV
    assert c.received[-1]["method"] == "POST"


async def test_write_single_resource_as_text_and_replace_instance(server, clients):
    c = await registered(server, clients)
    r = await server.devices.send("dev", WriteRequest("/1/0/1", {"/1/0/1": 600}))
    assert isinstance(r, EmptyResponse) and r.code == "2.04"
    assert c.values[(1, 0, 1)] == 600
    assert c.received[-1]["content_format"] == TEXT and c.received[-1]["method"] == "PUT"
    await server.devices.send("dev", WriteRequest("/1/0", {"/1/0/1": 30, "/1/0/2": 1, "/1/0/7": "UQ"}))
    assert c.received[-1]["content_format"] == SENML_CBOR and c.received[-1]["method"] == "PUT"
    assert c.values[(1, 0, 7)] == "UQ"


async def test_write_refuses_values_that_do_not_fit_the_definition(server, clients):
    c = await registered(server, clients)
    n = len(c.received)
    with pytest.raises(InvalidRequest):
        await server.devices.send("dev", WriteRequest("/1/0/1", {"/1/0/1": "not a number"}))
    with pytest.raises(InvalidRequest, match="not defined"):
        await server.devices.send("dev", WriteRequest("/4242/0/1", {"/4242/0/1": 1}))
    with pytest.raises(InvalidRequest, match="not writable"):
        await server.devices.send("dev", WriteRequest("/3/0/0", {"/3/0/0": "x"}))
    assert len(c.received) == n  # nothing was sent


async def test_execute_with_arguments(server, clients):
    c = await registered(server, clients, values={"/3/0/0": "ACME", "/3/0/4": None})
    await server.devices.send("dev", ExecuteRequest("/3/0/4", "0='a',1"))
    assert c.executed == [("/3/0/4", "0='a',1")]


async def test_create_and_delete_an_instance(server, clients):
    c = await registered(server, clients)
    r = await server.devices.send("dev", CreateRequest("/1", {"/1/1/0": 2, "/1/1/1": 60, "/1/1/7": "U"},
                                                       instance_id=1))
    assert isinstance(r, CreateResponse) and r.path == P("/1/1")
    assert c.values[(1, 1, 1)] == 60
    r = await server.devices.send("dev", CreateRequest("/1", {"/1/0/0": 3, "/1/0/1": 90, "/1/0/7": "U"}))
    assert r.path == P("/1/2")  # the device chose the id
    await server.devices.send("dev", DeleteRequest("/1/1"))
    assert (1, 1) not in c.instances


async def test_create_in_tlv_for_1_0_device(server, clients):
    c = await registered(server, clients, "d10", lwm2m="1.0")
    r = await server.devices.send("d10", CreateRequest("/1", {"/1/5/0": 5, "/1/5/1": 60, "/1/5/7": "U"},
                                                       instance_id=5))
    assert r.path == P("/1/5") and c.values[(1, 5, 1)] == 60


async def test_discover_and_write_attributes(server, clients):
    c = await registered(server, clients)
    await server.devices.send("dev", WriteAttributesRequest("/3/0/9", {"pmin": 10, "pmax": 60, "gt": 50.5}))
    assert c.attributes["/3/0/9"] == {"pmin": "10", "pmax": "60", "gt": "50.5"}
    r = await server.devices.send("dev", DiscoverRequest("/3/0"))
    by_path = {link["path"]: link["attributes"] for link in r.links}
    assert by_path[P("/3/0/9")] == {"pmin": "10", "pmax": "60", "gt": "50.5"}
    assert P("/3/0/0") in by_path
    with pytest.raises(InvalidRequest, match="unknown attributes"):
        await server.devices.send("dev", WriteAttributesRequest("/3/0/9", {"bogus": 1}))


async def test_read_and_write_composite(server, clients):
    c = await registered(server, clients)
    r = await server.devices.send("dev", ReadCompositeRequest((P("/3/0/0"), P("/1/0/1"))))
    assert r.values == {P("/3/0/0"): "ACME", P("/1/0/1"): 300}
    assert c.received[-1]["method"] == "FETCH"
    await server.devices.send("dev", WriteCompositeRequest({"/1/0/1": 45, "/3/0/13": 1800000000}))
    assert c.values[(1, 0, 1)] == 45 and c.values[(3, 0, 13)] == 1800000000
    assert c.received[-1]["method"] == "iPATCH"


async def test_composite_operations_are_refused_for_1_0_devices(server, clients):
    await registered(server, clients, "old", lwm2m="1.0")
    with pytest.raises(InvalidRequest, match="1.1"):
        await server.devices.send("old", ReadCompositeRequest((P("/3/0/0"),)))


async def test_observe_notify_and_cancel(server, clients):
    c = await registered(server, clients)
    tokens: list[tuple[str, int | None, bytes]] = []  # (path, observe, token) of each request
    render = c.root.render

    async def spy(request):  # the test client does not record tokens: note them here
        tokens.append(("/" + "/".join(request.opt.uri_path), request.opt.observe, request.token))
        return await render(request)

    c.root.render = spy
    sub = server.events.subscribe()
    first = await server.devices.send("dev", ObserveRequest("/3/0/9"))
    assert first.values == {P("/3/0/9"): 80}
    c.set("/3/0/9", 75)
    e = await next_event(sub, "notification")
    assert e.endpoint == "dev" and e.data["values"] == {"/3/0/9": 75}
    assert server.devices.latest("dev")[P("/3/0/9")][0] == 75
    obs_token = next(t[2] for t in tokens if t[:2] == ("/3/0/9", 0))
    await server.devices.send("dev", CancelObserveRequest("/3/0/9"))
    assert server.devices.observations("dev") == []
    # Active cancel (RFC 7641 3.6): the device gets a GET with Observe=1 and the observation's
    # token, and drops the observation at once.
    for _ in range(100):
        if c.root.observers == []:
            break
        await asyncio.sleep(0.01)
    assert c.root.observers == []
    assert ("/3/0/9", 1, obs_token) in tokens
    cancels = [r for r in c.received if r["observe"] == 1]
    assert [(r["method"], r["path"]) for r in cancels] == [("GET", "/3/0/9")]
    await sub.aclose()


async def test_observe_composite_notifies_on_any_of_its_paths(server, clients):
    c = await registered(server, clients)
    sub = server.events.subscribe()
    first = await server.devices.send("dev", ObserveCompositeRequest((P("/3/0/9"), P("/1/0/1"))))
    assert first.values == {P("/3/0/9"): 80, P("/1/0/1"): 300}
    c.set("/1/0/1", 120)
    e = await next_event(sub, "notification")
    assert e.data["values"]["/1/0/1"] == 120
    await server.devices.send("dev", CancelObserveCompositeRequest((P("/3/0/9"), P("/1/0/1"))))
    assert server.devices.observations("dev") == []
    await sub.aclose()


async def test_device_error_carries_the_coap_code(server, clients):
    await registered(server, clients)
    with pytest.raises(DeviceError) as ei:
        await server.devices.send("dev", ReadRequest("/9/0"))
    assert ei.value.coap_code == "4.04"


async def test_unknown_endpoint_is_device_not_found(server):
    with pytest.raises(DeviceNotFound):
        await server.devices.send("nobody", ReadRequest("/3/0"))


async def test_silent_device_times_out_while_others_are_served(server, clients):
    await registered(server, clients, "silent", behaviour="silent")
    await registered(server, clients, "ok")
    slow = asyncio.ensure_future(server.devices.send("silent", ReadRequest("/3/0"), timeout=1.5))
    await asyncio.sleep(0.1)
    for _ in range(5):  # served while the silent one is pending
        r = await server.devices.send("ok", ReadRequest("/3/0/0"))
        assert r.values == {P("/3/0/0"): "ACME"}
    assert not slow.done()
    with pytest.raises(DeviceTimeout):
        await slow


async def test_garbage_answer_is_a_clear_device_error_and_nothing_is_kept(server, clients):
    await registered(server, clients, "junk", behaviour="garbage")
    with pytest.raises(DeviceError, match="does not decode"):
        await server.devices.send("junk", ReadRequest("/3/0"))
    assert server.devices.latest("junk") == {}


async def test_send_operation_values_are_stored_and_published(server, clients, sqlite_url):
    c = await registered(server, clients)
    sub = server.events.subscribe()
    resp = await c.send({"/3/0/9": 42, "/3/0/0": "ACME-2"})
    assert str(resp.code) == "2.04 Changed"
    e = await next_event(sub, "send")
    assert e.endpoint == "dev" and e.data["values"] == {"/3/0/0": "ACME-2", "/3/0/9": 42}
    assert server.devices.latest("dev")[P("/3/0/9")][0] == 42
    await server.store.flush()
    from tests.protocol.conftest import count_rows
    assert count_rows(sqlite_url, "latest_value") >= 2
    assert count_rows(sqlite_url, "device_event") >= 2
    await sub.aclose()


async def test_send_with_bad_payload_or_format_is_refused_and_not_stored(server, clients):
    c = await registered(server, clients)
    resp = await c._request(__import__("aiocoap").Code.POST, ("dp",), [], b"\xff\xff", SENML_CBOR)
    assert str(resp.code).startswith("4.00")
    resp = await c._request(__import__("aiocoap").Code.POST, ("dp",), [], b"1", TEXT)
    assert str(resp.code).startswith("4.15")
    assert server.devices.latest("dev") == {}


async def test_send_from_an_unregistered_address_is_not_found(server, clients):
    c = await clients("stranger")
    c.server = ("127.0.0.1", server.coap_port)
    resp = await c.send({"/3/0/9": 1})
    assert str(resp.code).startswith("4.04")


async def test_objlnk_and_opaque_values_round_trip(server, clients):
    c = await registered(server, clients, values={"/1/0/0": 1, "/1/0/1": 300, "/1/0/7": "U",
                                                  "/2/0/0": 3, "/2/0/1": 0, "/2/0/3": 1,
                                                  "/3/0/0": "ACME"})
    c.set("/5/0/0", b"\x00\x01\x02")
    r = await server.devices.send("dev", ReadRequest("/5/0/0"))
    assert r.values == {P("/5/0/0"): b"\x00\x01\x02"}
    await server.devices.send("dev", WriteRequest("/5/0/0", {"/5/0/0": b"\xde\xad"}))
    assert c.values[(5, 0, 0)] == b"\xde\xad"
    _ = ObjLnk, Link


async def test_undecodable_notification_becomes_an_error_event_and_keeps_the_last_value(server, clients):
    c = await registered(server, clients)
    sub = server.events.subscribe()
    await server.devices.send("dev", ObserveRequest("/3/0/9"))
    c.behaviour = "garbage"  # the device's next notification does not decode
    c.set("/3/0/9", 1)
    e = await next_event(sub, "notification_error")
    assert e.endpoint == "dev" and "does not decode" in e.data["error"]
    assert server.devices.latest("dev")[P("/3/0/9")][0] == 80
    sub.close()
