"""Read and Write in text, opaque, TLV, SenML JSON and SenML CBOR; refusals for the rest."""

from __future__ import annotations

import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.codecs import codec_for
from lwm2m_server.model import ObjectInstance, Path, ResourceType, SingleResource

from .peer import Peer

FORMATS = [11542, 110, 112]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_read_instance_decodes_to_the_device_values(peer: Peer, make_device, fmt):
    dev = await make_device(f"cf-r{fmt}")
    resp = await peer.request(f"cf-r{fmt}", Code.GET, "/3/0", accept=fmt)
    assert resp.code == Code.CONTENT and resp.opt.content_format == fmt
    node = codec_for(fmt).decode(resp.payload, Path.parse("/3/0"), dev.registry)
    assert isinstance(node, ObjectInstance)
    assert node.resources[0].value == "TinyML Sim"
    assert node.resources[11].instances == {0: 0}


async def test_read_without_accept_uses_the_preferred_format(peer: Peer, make_device):
    await make_device("cf-pref", preferred_format=11542)
    resp = await peer.request("cf-pref", Code.GET, "/3/0")
    assert resp.opt.content_format == 11542
    assert "ct=11542" in peer.devices["cf-pref"].links


@pytest.mark.parametrize("fmt", FORMATS)
async def test_partial_write_of_an_instance(peer: Peer, make_device, fmt):
    dev = await make_device(f"cf-w{fmt}")
    node = ObjectInstance.of(0, SingleResource(2, 5, ResourceType.INTEGER),
                             SingleResource(3, 60, ResourceType.INTEGER))
    payload = codec_for(fmt).encode(node, Path.parse("/1/0"), dev.registry)
    resp = await peer.request(f"cf-w{fmt}", Code.POST, "/1/0", payload, ct=fmt)
    assert resp.code == Code.CHANGED
    assert dev.objects[1].data[0][2] == 5 and dev.objects[1].data[0][3] == 60
    assert dev.objects[1].data[0][1] == 300


@pytest.mark.parametrize("fmt", FORMATS + [0])
async def test_write_single_resource(peer: Peer, make_device, fmt):
    dev = await make_device(f"cf-s{fmt}")
    node = SingleResource(9, 7, ResourceType.INTEGER)
    payload = codec_for(fmt).encode(node, Path.parse("/33100/0/9"), dev.registry)
    assert (await peer.request(f"cf-s{fmt}", Code.PUT, "/33100/0/9", payload, ct=fmt)).code == Code.CHANGED
    assert (await peer.request(f"cf-s{fmt}", Code.GET, "/33100/0/9")).payload == b"7"


async def test_write_with_a_read_only_resource_changes_nothing(peer: Peer, make_device):
    dev = await make_device("cf-atomic")
    node = ObjectInstance.of(0, SingleResource(2, 9, ResourceType.INTEGER),
                             SingleResource(0, 4, ResourceType.INTEGER))
    payload = codec_for(110).encode(node, Path.parse("/1/0"), dev.registry)
    resp = await peer.request("cf-atomic", Code.POST, "/1/0", payload, ct=110)
    assert resp.code == Code.METHOD_NOT_ALLOWED
    assert dev.objects[1].data[0][2] == 0


async def test_refuses_unknown_accept_text_for_an_instance_and_bad_payload(peer: Peer, make_device):
    await make_device("cf-bad")
    assert (await peer.request("cf-bad", Code.GET, "/3/0", accept=50)).code == Code.NOT_ACCEPTABLE
    assert (await peer.request("cf-bad", Code.GET, "/3/0", accept=0)).code == Code.NOT_ACCEPTABLE
    bad = await peer.request("cf-bad", Code.PUT, "/1/0", b"\xff\x00", ct=11542)
    assert bad.code == Code.BAD_REQUEST
    assert bad.payload


async def test_opaque_resource_reads_as_opaque(peer: Peer, make_device):
    await make_device("cf-op")
    resp = await peer.request("cf-op", Code.GET, "/33100/0/3/0")
    assert resp.code == Code.CONTENT and resp.opt.content_format == 0
