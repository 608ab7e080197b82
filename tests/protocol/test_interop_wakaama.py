"""Regressions found by running the server against Eclipse Wakaama's example client (lwm2mclient).

Each test replays over real UDP what that client did, with the independent test client; none of
them needs Wakaama itself. What the client showed:

- Built for LwM2M 1.1 with SenML JSON only (its default: TLV is optional for a 1.1 client), it
  registers with ``</>;rt="oma.lwm2m";ct=110`` and answers a TLV payload with 4.00 Bad Request
  (its parser fails), not 4.15. A Create without an instance id went out in TLV and failed.
- Built with SenML CBOR and TLV (``ct=112``), a Create without an instance id in TLV worked, but the
  server then remembered TLV as "the format that works" and read and observed in TLV afterwards
  instead of the device's preferred SenML CBOR.
- After the client de-registered (or registered again), the server sent it a GET with Observe=1
  for every observation it had: a request to a device that had left (retransmitted for ~45 s),
  or, after a new Register, a stray GET the client answered as a plain Read.
"""

from __future__ import annotations

import asyncio

import pytest
from aiocoap import ACK, CON, Code, Message
from aiocoap.optiontypes import BlockOption

from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import InvalidRequest
from lwm2m_server.protocol.requests import CreateRequest, ObserveRequest, ReadRequest, WriteRequest
from tests.support.lwm2m_client import OPAQUE, SENML_CBOR, SENML_JSON, TEXT, TLV, LwM2MTestClient

P = Path.parse

VALUES = {"/1/0/0": 123, "/1/0/1": 60, "/1/0/7": "U", "/3/0/0": "Open Mobile Alliance",
          "/3/0/9": 100, "/3/0/7/0": 3800, "/3/0/7/1": 5000}


class WakaamaLikeClient(LwM2MTestClient):
    """Answers a payload in a format it was not built with as Wakaama does: 4.00 Bad Request."""

    def _dispatch(self, request: Message, key, cf, accept) -> Message:  # type: ignore[no-untyped-def]
        if request.payload and cf is not None and cf not in self.formats and request.code in (
                Code.POST, Code.PUT):
            return Message(code=Code.BAD_REQUEST)
        return super()._dispatch(request, key, cf, accept)


async def start(client: LwM2MTestClient, server) -> LwM2MTestClient:  # type: ignore[no-untyped-def]
    await client.start()
    resp = await client.register(server.coap_port)
    assert resp.code == Code.CREATED, (resp.code, resp.payload)
    await asyncio.sleep(0.3)  # what the server does on its own after a Register is over
    client.received.clear()
    return client


async def test_create_without_instance_id_on_a_senml_json_only_1_1_client_picks_a_free_id(server):
    c = await start(WakaamaLikeClient("wk-json", VALUES, root_ct=SENML_JSON,
                                      formats=(SENML_JSON, TEXT, OPAQUE)), server)
    try:
        r = await server.devices.send("wk-json", CreateRequest(P("/1"), {P("/1/0/0"): 7, P("/1/0/1"): 90,
                                                                          P("/1/0/7"): "U"}))
        assert r.path == P("/1/1")
        creates = [m for m in c.received if m["method"] == "POST" and m["path"] == "/1"]
        assert [m["content_format"] for m in creates] == [SENML_JSON]  # never TLV
        assert c.values[(1, 1, 1)] == 90 and c.values[(1, 1, 0)] == 7
        assert (1, 0) in c.instances and c.values[(1, 0, 1)] == 60  # the existing one untouched
    finally:
        await c.stop()


async def test_create_without_instance_id_skips_ids_the_server_has_seen_since_registration(server):
    c = await start(WakaamaLikeClient("wk-json2", VALUES, root_ct=SENML_JSON,
                                      formats=(SENML_JSON, TEXT, OPAQUE)), server)
    try:
        r1 = await server.devices.send("wk-json2", CreateRequest(P("/1"), {P("/1/0/1"): 90}))
        # No Update in between: the next free id still comes after the one just created.
        r2 = await server.devices.send("wk-json2", CreateRequest(P("/1"), {P("/1/0/1"): 91}))
        assert (r1.path, r2.path) == (P("/1/1"), P("/1/2"))
        assert c.values[(1, 2, 1)] == 91
    finally:
        await c.stop()


async def test_a_tlv_create_does_not_make_the_server_read_a_senml_device_in_tlv(server):
    # A 1.1 device without a root ct: Create without an id goes in TLV (the device picks the id).
    c = await start(LwM2MTestClient("wk-cbor", VALUES, formats=(SENML_CBOR, SENML_JSON, TLV, TEXT, OPAQUE)),
                    server)
    try:
        r = await server.devices.send("wk-cbor", CreateRequest(P("/1"), {P("/1/0/1"): 90}))
        assert r.path == P("/1/1")
        assert [m["content_format"] for m in c.received if m["method"] == "POST"] == [TLV]
        c.received.clear()
        await server.devices.send("wk-cbor", ReadRequest(P("/3/0")))
        await server.devices.send("wk-cbor", ObserveRequest(P("/3/0/9")))
        gets = [m for m in c.received if m["method"] == "GET"]
        assert [m["accept"] for m in gets] == [SENML_CBOR, SENML_CBOR]
    finally:
        await c.stop()


async def test_a_format_the_device_refused_is_still_learned(server):
    # The other half of the rule: after a 4.15/4.06 the format that worked is used from then on.
    c = await start(LwM2MTestClient("wk-tlv", VALUES, formats=(TLV, TEXT, OPAQUE)), server)
    try:
        await server.devices.send("wk-tlv", WriteRequest(P("/1/0"), {P("/1/0/1"): 30}, replace=False))
        c.received.clear()
        await server.devices.send("wk-tlv", ReadRequest(P("/3/0")))
        accepts = [m["accept"] for m in c.received if m["method"] == "GET"]
        assert accepts == [TLV]
        assert c.values[(1, 0, 1)] == 30
    finally:
        await c.stop()


@pytest.mark.parametrize("leave", ["deregister", "register again"])
async def test_a_device_that_left_or_registered_again_is_not_sent_an_observe_cancel(server, leave):
    c = await start(LwM2MTestClient("wk-obs", VALUES), server)
    try:
        await server.devices.send("wk-obs", ObserveRequest(P("/3/0/9")))
        if leave == "deregister":
            assert (await c.deregister()).code == Code.DELETED
        else:
            c.root.observers.clear()  # the client rebooted: its observations are gone
            assert (await c.register(server.coap_port)).code == Code.CREATED
        await asyncio.sleep(0.3)
        if leave == "deregister":
            assert server.devices.observations("wk-obs") == []
        assert [m for m in c.received if m["observe"] == 1] == []
    finally:
        await c.stop()


class SmallBufferDevice(asyncio.DatagramProtocol):
    """A device on a bare UDP socket (aiocoap only encodes and decodes its messages) that takes at
    most 16 bytes per message, answering as Wakaama's client started with ``-S 16`` did: a larger
    payload sent whole gets 4.13 with Block1 (block 0, more, SZX 0), blocks get 2.31 Continue, the
    last one 2.04. (aiocoap's server side drops a Block1 option from a 4.13, hence the raw socket.)"""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.registered: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.requests: list[Message] = []
        self.values: dict[str, bytes] = {}
        self._parts: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def register(self, port: int) -> None:
        msg = Message(code=Code.POST, uri_path=("rd",),
                      uri_query=("lwm2m=1.1", "ep=wk-small", "b=U", "lt=60"), content_format=40,
                      payload=b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>')
        msg.mtype, msg.mid, msg.token = CON, 1, b"\x01"
        assert self.transport is not None
        self.transport.sendto(msg.encode(), ("127.0.0.1", port))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        msg = Message.decode(data)
        if not msg.code.is_request():
            if not self.registered.done():
                self.registered.set_result(msg)
            return
        self.requests.append(msg)
        resp = Message(code=Code.CHANGED)
        resp.mtype, resp.mid, resp.token = ACK, msg.mid, msg.token
        block = msg.opt.block1
        if block is None and len(msg.payload) > 16:
            resp.code = Code.REQUEST_ENTITY_TOO_LARGE
            resp.opt.block1 = BlockOption.BlockwiseTuple(0, True, 0)
        elif block is not None:
            assert block.size_exponent == 0 and len(msg.payload) <= 16
            self._parts.append(bytes(msg.payload))
            resp.code = Code.CONTINUE if block.more else Code.CHANGED
            resp.opt.block1 = BlockOption.BlockwiseTuple(block.block_number, block.more, 0)
            if not block.more:
                self.values["/" + "/".join(msg.opt.uri_path)] = b"".join(self._parts)
                self._parts = []
        else:
            self.values["/" + "/".join(msg.opt.uri_path)] = bytes(msg.payload)
        assert self.transport is not None
        self.transport.sendto(resp.encode(), addr)


async def test_a_write_larger_than_the_device_block_size_goes_again_block_wise_at_its_size(server):
    loop = asyncio.get_running_loop()
    transport, dev = await loop.create_datagram_endpoint(SmallBufferDevice, local_addr=("127.0.0.1", 0))
    try:
        dev.register(server.coap_port)
        assert (await asyncio.wait_for(dev.registered, 5)).code == Code.CREATED
        await asyncio.sleep(0.3)
        dev.requests.clear()
        tz = "America/Argentina/Buenos_Aires"
        r = await server.devices.send("wk-small", WriteRequest(P("/3/0/15"), {P("/3/0/15"): tz}))
        assert r.code == "2.04" and dev.values["/3/0/15"] == tz.encode()
        whole = [m for m in dev.requests if m.opt.block1 is None]
        assert [bytes(m.payload) for m in whole] == [tz.encode()]  # refused once, then in blocks
        # The device's block size is kept for its address: the next large write goes in blocks at once.
        dev.requests.clear()
        await server.devices.send("wk-small", WriteRequest(P("/1/0/7"), {P("/1/0/7"): "U" * 40}))
        assert dev.values["/1/0/7"] == b"U" * 40
        assert all(m.opt.block1 is not None for m in dev.requests)
        # A payload that fits still goes whole.
        dev.requests.clear()
        await server.devices.send("wk-small", WriteRequest(P("/3/0/14"), {P("/3/0/14"): "+02:00"}))
        assert [m.opt.block1 for m in dev.requests] == [None] and dev.values["/3/0/14"] == b"+02:00"
    finally:
        transport.close()


async def test_a_resource_instance_path_is_refused_for_a_1_0_device_before_anything_is_sent(server):
    # LwM2M 1.0 paths stop at the resource; Wakaama's 1.0 client answered 4.00 (a 502 here).
    c = await start(LwM2MTestClient("wk-10", VALUES, lwm2m="1.0"), server)
    try:
        for request in (ReadRequest(P("/3/0/7/1")), ObserveRequest(P("/3/0/7/1")),
                        WriteRequest(P("/3/0/7/1"), {P("/3/0/7/1"): 4000})):
            with pytest.raises(InvalidRequest, match=r"resource instance \(/3/0/7/1\) needs LwM2M 1.1.*use /3/0/7"):
                await server.devices.send("wk-10", request)
        assert c.received == []
        r = await server.devices.send("wk-10", ReadRequest(P("/3/0/7")))  # the resource itself works
        assert r.values == {P("/3/0/7/0"): 3800, P("/3/0/7/1"): 5000}
    finally:
        await c.stop()
