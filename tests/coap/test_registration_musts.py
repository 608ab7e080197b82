"""The registration interface's MUSTs: expired registrations, the lwm2m= version, endpoint names."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import Code

from tests.protocol.conftest import count_rows


async def test_update_to_an_expired_registration_gets_4_04_and_register_works_again(server, clients):
    c = await clients("expiring", lifetime=1)
    assert (await c.register(server.coap_port)).code == Code.CREATED
    deadline = asyncio.get_running_loop().time() + 5
    while server.registrations.get("expiring").online:
        assert asyncio.get_running_loop().time() < deadline, "never expired"
        await asyncio.sleep(0.05)
    resp = await c.update()
    assert resp.code == Code.NOT_FOUND
    assert b"expired" in resp.payload
    assert not server.registrations.get("expiring").online  # not revived by the Update
    assert (await c.register(server.coap_port)).code == Code.CREATED
    assert server.registrations.get("expiring").online


async def test_update_after_the_lifetime_passed_is_refused_before_the_expiry_tick(server, clients):
    c = await clients("late", lifetime=30)
    await c.register(server.coap_port)
    clock = server.registrations._clock
    server.registrations._clock = lambda: clock() + 31  # the lifetime passed, no expiry tick yet
    try:
        resp = await c.update()
    finally:
        server.registrations._clock = clock
    assert resp.code == Code.NOT_FOUND


@pytest.mark.parametrize("version", ["2.0", "1.3", "0.9"])
async def test_unsupported_lwm2m_version_gets_4_12_precondition_failed(server, clients, sqlite_url,
                                                                       version):
    c = await clients("vers", lwm2m=version)
    resp = await c.register(server.coap_port)
    assert resp.code == Code.PRECONDITION_FAILED
    assert b"unsupported LwM2M version" in resp.payload
    assert server.registrations.get("vers") is None
    await server.store.flush()
    assert count_rows(sqlite_url, "registration") == 0


async def test_lwm2m_1_0_0_is_version_1_0(server, clients):
    c = await clients("v100", lwm2m="1.0.0")
    assert (await c.register(server.coap_port)).code == Code.CREATED
    assert server.registrations.get("v100").lwm2m_version == "1.0"


@pytest.mark.parametrize("endpoint", ["a/b", "/lead", "trail/", "urn:dev/../x"])
async def test_endpoint_name_with_a_slash_is_refused_with_a_reason(server, clients, endpoint):
    c = await clients(endpoint)
    resp = await c.register(server.coap_port)
    assert resp.code == Code.BAD_REQUEST
    assert b"contains '/'" in resp.payload
    assert server.registrations.list() == []
