"""The registration interface over real UDP: Register, Update, De-register and their bad inputs."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import Code

from lwm2m_server.model import Path
from tests.protocol.conftest import count_rows, running


async def test_register_answers_created_with_location_and_keeps_the_device(server, clients):
    c = await clients("dev-a")
    resp = await c.register(server.coap_port)
    assert resp.code == Code.CREATED
    assert resp.opt.location_path[0] == "rd" and len(resp.opt.location_path) == 2
    reg = server.registrations.get("dev-a")
    assert reg is not None and reg.online
    assert reg.registration_id == resp.opt.location_path[1]
    assert reg.lwm2m_version == "1.1" and reg.binding == "U" and reg.lifetime == 60
    assert reg.address == ("127.0.0.1", c.port)
    assert reg.objects == (Path.parse("/1/0"), Path.parse("/3/0"))


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_register_accepts_lwm2m_versions_1_0_to_1_2(server, clients, version):
    c = await clients(f"dev-{version}", lwm2m=version)
    assert (await c.register(server.coap_port)).code == Code.CREATED
    assert server.registrations.get(f"dev-{version}").lwm2m_version == version


async def test_register_without_binding_means_udp_and_without_root_link(server, clients):
    c = await clients("dev-nob", binding=None, root_link=False)
    assert (await c.register(server.coap_port)).code == Code.CREATED
    reg = server.registrations.get("dev-nob")
    assert reg.binding == "U" and not reg.queue_mode and reg.root_path == "/"
    assert reg.preferred_format is None


async def test_register_root_link_ct_sets_the_preferred_format(server, clients):
    c = await clients("dev-ct", root_ct=110)
    assert (await c.register(server.coap_port)).code == Code.CREATED
    assert server.registrations.get("dev-ct").preferred_format == 110


async def test_register_with_alternate_root_path_and_object_versions(server, clients):
    c = await clients("dev-alt")
    payload = b'</lwm2m>;rt="oma.lwm2m";ct=11542,</lwm2m/1/0>,</lwm2m/3>;ver=1.1,</lwm2m/3/0>,</lwm2m/5>'
    assert (await c.register(server.coap_port, payload=payload)).code == Code.CREATED
    reg = server.registrations.get("dev-alt")
    assert reg.root_path == "/lwm2m" and reg.preferred_format == 11542
    assert reg.object_versions == {3: "1.1"}
    assert [str(p) for p in reg.objects] == ["/1/0", "/3/0", "/5"]


async def test_register_queue_mode_by_q_parameter_and_by_uq_binding(server, clients):
    c11 = await clients("dev-q11", queue=True)
    c10 = await clients("dev-q10", lwm2m="1.0", binding="UQ")
    await c11.register(server.coap_port)
    await c10.register(server.coap_port)
    assert server.registrations.get("dev-q11").queue_mode
    assert server.registrations.get("dev-q10").queue_mode


async def test_update_changes_lifetime_binding_and_objects(server, clients):
    c = await clients("dev-up")
    await c.register(server.coap_port)
    before = server.registrations.get("dev-up")
    assert (await c.update(lifetime=120)).code == Code.CHANGED
    reg = server.registrations.get("dev-up")
    assert reg.lifetime == 120 and reg.registration_id == before.registration_id
    assert reg.objects == before.objects  # empty payload keeps the objects
    c.set("/5/0/3", 0)
    assert (await c.update(binding="UQ", objects=True)).code == Code.CHANGED
    reg = server.registrations.get("dev-up")
    assert reg.binding == "UQ" and reg.queue_mode
    assert Path.parse("/5/0") in reg.objects


async def test_update_from_a_new_source_port_moves_the_device(server, clients):
    c = await clients("dev-port", {"/3/0/0": "ACME"})
    await c.register(server.coap_port)
    old_port = c.port
    await c.stop()
    await c.start()  # a reboot: same endpoint, new source port
    assert c.port != old_port
    assert (await c.update()).code == Code.CHANGED
    assert server.registrations.get("dev-port").address == ("127.0.0.1", c.port)
    from lwm2m_server.protocol.requests import ReadRequest
    resp = await server.devices.send("dev-port", ReadRequest("/3/0/0"))
    assert resp.values == {Path.parse("/3/0/0"): "ACME"}


async def test_deregister_removes_the_registration(server, clients, sqlite_url):
    c = await clients("dev-del")
    await c.register(server.coap_port)
    assert (await c.deregister()).code == Code.DELETED
    assert server.registrations.get("dev-del") is None
    await server.store.flush()
    assert count_rows(sqlite_url, "registration") == 0
    # the id is gone: a second De-register and an Update get 4.04
    assert (await c.deregister()).code == Code.NOT_FOUND
    assert (await c.update()).code == Code.NOT_FOUND


async def test_register_again_with_same_endpoint_replaces_the_old_registration(server, clients):
    c = await clients("dev-re")
    await c.register(server.coap_port)
    old_location = c.location
    await c.register(server.coap_port)
    assert c.location != old_location
    assert len([r for r in server.registrations.list() if r.endpoint == "dev-re"]) == 1
    assert server.registrations.get("dev-re").registration_id == c.location.split("/")[1]
    c.location = old_location
    assert (await c.update()).code == Code.NOT_FOUND


@pytest.mark.parametrize("query, fragment", [
    (["lt=60", "lwm2m=1.1"], b"missing endpoint name"),
    (["ep=", "lt=60"], b"missing endpoint name"),
    (["ep=x", "lt=abc"], b"lifetime"),
    (["ep=x", "lt=0"], b"lifetime"),
    (["ep=x", "lt=-5"], b"lifetime"),
    (["ep=x", "lwm2m=one"], b"must look like 1.1"),
    (["ep=x", "b=XYZ"], b"binding"),
    (["ep=x", "ep=y"], b"given twice"),
    (["ep=x", "lt"], b"has no value"),
])
async def test_register_with_bad_query_gets_bad_request_and_stores_nothing(server, clients, sqlite_url,
                                                                           query, fragment):
    c = await clients("x")
    resp = await c.register(server.coap_port, query=query)
    assert resp.code == Code.BAD_REQUEST
    assert fragment in resp.payload
    assert server.registrations.list() == []
    await server.store.flush()
    assert count_rows(sqlite_url, "registration") == 0


@pytest.mark.parametrize("payload", [b"</3/0", b"<3/0>;;", b"</3/0/1/2/3>", b"\xff\xfe", b"</abc>"])
async def test_register_with_malformed_payload_gets_bad_request(server, clients, payload):
    c = await clients("bad-payload")
    resp = await c.register(server.coap_port, payload=payload)
    assert resp.code == Code.BAD_REQUEST, resp.payload
    assert resp.payload
    assert server.registrations.get("bad-payload") is None


async def test_oversized_registration_payload_gets_4_13(sqlite_url, clients):
    async with running(sqlite_url, max_payload=1024) as srv:
        c = await clients("big")
        payload = ",".join(f"</{o}/0>" for o in range(3000, 3400)).encode()
        assert len(payload) > 1024
        resp = await c.register(srv.coap_port, payload=payload)
        assert resp.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert srv.registrations.get("big") is None
        await c.register(srv.coap_port)
        assert (await c.update(payload=payload)).code == Code.REQUEST_ENTITY_TOO_LARGE
        assert srv.registrations.get("big").objects == (Path.parse("/1/0"), Path.parse("/3/0"))


async def test_update_with_bad_lifetime_keeps_the_registration_unchanged(server, clients):
    c = await clients("dev-badup")
    await c.register(server.coap_port)
    before = server.registrations.get("dev-badup")
    resp = await c.update(query=["lt=zero"])
    assert resp.code == Code.BAD_REQUEST
    assert server.registrations.get("dev-badup") == before


async def test_register_with_wrong_content_format_gets_4_15(server, clients):
    c = await clients("dev-cf")
    c.server = ("127.0.0.1", server.coap_port)
    resp = await c._request(Code.POST, ("rd",), ["ep=dev-cf"], b'{"a": 1}', 50)
    assert resp.code == Code.UNSUPPORTED_CONTENT_FORMAT
    assert server.registrations.get("dev-cf") is None


async def test_unknown_path_and_method_get_clear_codes(server, clients):
    c = await clients("dev-x")
    c.server = ("127.0.0.1", server.coap_port)
    assert (await c._request(Code.GET, ("rd",))).code == Code.METHOD_NOT_ALLOWED
    assert (await c._request(Code.GET, ("nothing",))).code == Code.NOT_FOUND


async def test_many_concurrent_registrations_are_all_kept(server, clients, sqlite_url):
    cs = [await clients(f"dev-{i}") for i in range(30)]
    resps = await asyncio.gather(*(c.register(server.coap_port) for c in cs))
    assert all(r.code == Code.CREATED for r in resps)
    assert len(server.registrations.list()) == 30
    await server.store.flush()
    assert count_rows(sqlite_url, "registration") == 30


async def test_server_on_the_ipv6_wildcard_serves_ipv4_and_ipv6_clients(sqlite_url, clients):
    async with running(sqlite_url, coap_host="::") as srv:
        v4 = await clients("v4-dev")
        v6 = await clients("v6-dev", host="::1")
        assert (await v4.register(srv.coap_port, "127.0.0.1")).code == Code.CREATED
        assert (await v6.register(srv.coap_port, "::1")).code == Code.CREATED
        assert srv.registrations.get("v4-dev").address == ("127.0.0.1", v4.port)
        assert srv.registrations.get("v6-dev").address == ("::1", v6.port)
        from lwm2m_server.protocol.requests import ReadRequest
        for ep in ("v4-dev", "v6-dev"):
            assert (await srv.devices.send(ep, ReadRequest("/3/0/0"))).values == {Path.parse("/3/0/0"): "ACME"}


async def test_a_busy_coap_port_fails_start_with_an_os_error(server, sqlite_url):
    from lwm2m_server.server import LwM2MServer
    from lwm2m_server.config import Settings

    other = LwM2MServer(Settings(coap_host="127.0.0.1", coap_port=server.coap_port, db_url=sqlite_url))
    with pytest.raises(OSError):
        await other.start()
    other.engine.dispose()


async def test_unknown_query_parameters_are_ignored(server, clients):
    c = await clients("future-dev")
    q = c.register_query() + ["apn=internet", "newflag"]
    assert (await c.register(server.coap_port, query=q)).code == Code.CREATED
