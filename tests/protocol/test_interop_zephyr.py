"""What the Zephyr LwM2M client (subsys/net/lib/lwm2m, lwm2m_rd_client.c and lwm2m_rw_link_format.c)
sends, replayed over real UDP with the test client's exact queries and payloads:

- Register: ``lwm2m=1.1``, ``ep=``, ``lt=`` in that order; no ``b=`` when the binding is plain U
  without queue mode; with queue mode ``b=U`` plus a bare ``Q`` (1.1) or ``b=UQ`` (1.0).
- The root link has no ``rt``: ``</>;ct=112`` (SenML CBOR build), ``</>;ct=110`` (SenML JSON
  only), and only the LwM2M JSON build writes ``</>;rt="oma.lwm2m";ct=11543``. Objects carry
  ``;ver=`` when their version differs from the core one.
- Update: ``lt=`` only when the lifetime changed, a payload (with Content-Format 40) only when
  the objects changed; otherwise an empty POST with no options but the path.
"""

from __future__ import annotations

from aiocoap import Code

from lwm2m_server.model import Path
from lwm2m_server.protocol.requests import ReadRequest
from tests.support.lwm2m_client import SENML_CBOR, SENML_JSON, LwM2MTestClient

P = Path.parse
VALUES = {"/1/0/0": 101, "/1/0/1": 300, "/1/0/7": "U", "/3/0/0": "Zephyr", "/3/0/9": 95,
          "/5/0/3": 0}
ZEPHYR_CBOR = b"</>;ct=112,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</5/0>"


async def zephyr(server, clients, ep: str, query: list[str], payload: bytes, **kw):  # type: ignore[no-untyped-def]
    c = await clients(ep, VALUES, **kw)
    resp = await c.register(server.coap_port, query=query, payload=payload)
    assert resp.code == Code.CREATED, (resp.code, resp.payload)
    return c


async def test_zephyr_senml_cbor_register_without_rt_or_binding_is_read_in_senml_cbor(server, clients):
    c = await zephyr(server, clients, "zephyr-1", ["lwm2m=1.1", "ep=zephyr-1", "lt=300"], ZEPHYR_CBOR)
    reg = server.registrations.get("zephyr-1")
    assert (reg.lwm2m_version, reg.binding, reg.queue_mode, reg.lifetime) == ("1.1", "U", False, 300)
    assert reg.preferred_format == SENML_CBOR and reg.root_path == "/"
    assert reg.object_versions == {1: "1.1", 3: "1.1"}
    assert set(reg.objects) == {P("/1/0"), P("/3/0"), P("/5/0")}
    c.received.clear()
    r = await server.devices.send("zephyr-1", ReadRequest(P("/3/0")))
    assert r.values[P("/3/0/0")] == "Zephyr"
    assert [m["accept"] for m in c.received if m["path"] == "/3/0"] == [SENML_CBOR]


async def test_zephyr_senml_json_only_build_is_read_in_senml_json(server, clients):
    c = await zephyr(server, clients, "zephyr-json", ["lwm2m=1.1", "ep=zephyr-json", "lt=300"],
                     b"</>;ct=110,</1/0>,</3/0>", formats=(SENML_JSON, 0, 42))
    c.received.clear()
    r = await server.devices.send("zephyr-json", ReadRequest(P("/3/0/9")))
    assert r.values == {P("/3/0/9"): 95}
    assert [m["accept"] for m in c.received if m["path"] == "/3/0/9"] == [SENML_JSON]


async def test_zephyr_queue_mode_1_1_is_b_u_and_a_bare_q(server, clients):
    await zephyr(server, clients, "zephyr-q", ["lwm2m=1.1", "ep=zephyr-q", "lt=300", "b=U", "Q"], ZEPHYR_CBOR)
    reg = server.registrations.get("zephyr-q")
    assert (reg.binding, reg.queue_mode) == ("U", True)


async def test_zephyr_1_0_lwm2m_json_build_registers_with_b_uq(server, clients):
    await zephyr(server, clients, "zephyr-10", ["lwm2m=1.0", "ep=zephyr-10", "lt=300", "b=UQ"],
                 b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>')
    reg = server.registrations.get("zephyr-10")
    assert (reg.lwm2m_version, reg.queue_mode, reg.preferred_format) == ("1.0", True, 11543)


async def test_zephyr_updates_empty_lifetime_only_and_with_objects(server, clients):
    c = await zephyr(server, clients, "zephyr-u", ["lwm2m=1.1", "ep=zephyr-u", "lt=300"], ZEPHYR_CBOR)
    before = server.registrations.get("zephyr-u")
    # Nothing changed: a bare POST, no query, no payload, no Content-Format.
    assert (await c.update()).code == Code.CHANGED
    after = server.registrations.get("zephyr-u")
    assert after.objects == before.objects and after.lifetime == 300
    assert (await c.update(lifetime=600)).code == Code.CHANGED
    assert server.registrations.get("zephyr-u").lifetime == 600
    # Objects changed: the payload comes with Content-Format 40 and replaces the object list.
    resp = await c.update(payload=b"</>;ct=112,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</3303/0>")
    assert resp.code == Code.CHANGED
    reg = server.registrations.get("zephyr-u")
    assert set(reg.objects) == {P("/1/0"), P("/3/0"), P("/3303/0")} and reg.lifetime == 600
