"""Which content format the server asks a device for, and in which order it falls back."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from lwm2m_server.model import Path
from lwm2m_server.protocol.devices import formats_for
from lwm2m_server.protocol.registration import Registration
from lwm2m_server.protocol.requests import ReadRequest, WriteRequest
from tests.support.lwm2m_client import SENML_CBOR, TEXT, TLV

NOW = datetime.now(timezone.utc)
REG = Registration("d", "id", "1.1", "U", 60, None, False, ("127.0.0.1", 1), (Path.parse("/3/0"),), {},
                   "/", None, NOW, NOW)


def test_senml_cbor_first_for_1_1_and_tlv_first_for_1_0():
    assert formats_for(REG)[0] == 112
    assert formats_for(replace(REG, lwm2m_version="1.0"))[0] == 11542


def test_root_link_ct_comes_first_and_the_remembered_format_before_it():
    reg = replace(REG, preferred_format=110)
    assert formats_for(reg)[:2] == [110, 112]
    assert formats_for(reg, remembered=11542)[:3] == [11542, 110, 112]


def test_lwm2m_json_is_read_but_never_written():
    reg = replace(REG, lwm2m_version="1.0", preferred_format=11543)
    assert formats_for(reg)[0] == 11543
    assert 11543 not in formats_for(reg, write=True)


def test_a_ct_the_server_cannot_use_is_skipped_and_composite_keeps_multi_path_formats():
    reg = replace(REG, preferred_format=60)
    assert 60 not in formats_for(reg)
    assert formats_for(reg, multi=True) == [112, 110, 11544]


async def test_device_preferring_plain_cbor_is_read_in_senml_cbor(server, clients):
    c = await clients("cbor-dev", root_ct=60)
    await c.register(server.coap_port)
    await server.devices.send("cbor-dev", ReadRequest("/3/0"))
    assert c.received[-1]["accept"] == SENML_CBOR


async def test_1_0_device_gets_writes_in_tlv_or_text(server, clients):
    c = await clients("old-dev", lwm2m="1.0", formats=(TLV, TEXT))
    await c.register(server.coap_port)
    await server.devices.send("old-dev", WriteRequest("/1/0", {"/1/0/1": 77}, replace=False))
    assert c.received[-1]["content_format"] == TLV and c.values[(1, 0, 1)] == 77
