"""CoAP /fw/<sha256> on the real server over UDP: Block2 downloads, resume at any block, errors."""

from __future__ import annotations

import hashlib
import os

import pytest
from aiocoap import GET, POST, Code, Context, Message
from aiocoap.optiontypes import BlockOption

from lwm2m_server.server import LwM2MServer
from tests.support.fw import serving_fw


@pytest.fixture
async def fw_server(tmp_path):  # type: ignore[no-untyped-def]
    data = os.urandom(5000) + b"end"
    async with serving_fw(tmp_path, data) as (server, resource, sha):
        client = await Context.create_client_context()
        try:
            yield server, client, data, sha, resource.tracker
        finally:
            await client.shutdown()


def _uri(server: LwM2MServer, sha: str) -> str:
    return f"coap://127.0.0.1:{server.coap_port}/fw/{sha}"


async def test_whole_artifact_downloads_in_1024_byte_blocks(fw_server) -> None:  # type: ignore[no-untyped-def]
    server, client, data, sha, tracker = fw_server
    resp = await client.request(Message(code=GET, uri=_uri(server, sha))).response
    assert resp.code == Code.CONTENT and bytes(resp.payload) == data
    first = await client.request(Message(code=GET, uri=_uri(server, sha)),
                                 handle_blockwise=False).response
    assert len(first.payload) == 1024 and first.opt.block2.more
    assert first.opt.size2 == len(data) and first.opt.etag == bytes.fromhex(sha[:16])
    assert tracker.bytes_sent == len(data) + 1024
    assert tracker.fraction(sha, ("127.0.0.1", 1)) is None  # another device fetched nothing


async def test_a_download_resumes_at_any_block_without_server_state(fw_server) -> None:  # type: ignore[no-untyped-def]
    server, client, data, sha, _ = fw_server
    req = Message(code=GET, uri=_uri(server, sha), block2=BlockOption.BlockwiseTuple(3, False, 6))
    resp = await client.request(req, handle_blockwise=False).response
    assert bytes(resp.payload) == data[3072:4096] and resp.opt.block2.block_number == 3
    last = Message(code=GET, uri=_uri(server, sha), block2=BlockOption.BlockwiseTuple(4, False, 6))
    resp = await client.request(last, handle_blockwise=False).response
    assert bytes(resp.payload) == data[4096:] and not resp.opt.block2.more


async def test_smaller_blocks_are_served_when_the_device_asks(fw_server) -> None:  # type: ignore[no-untyped-def]
    server, client, data, sha, _ = fw_server
    req = Message(code=GET, uri=_uri(server, sha), block2=BlockOption.BlockwiseTuple(7, False, 2))
    resp = await client.request(req, handle_blockwise=False).response
    assert bytes(resp.payload) == data[7 * 64:8 * 64] and resp.opt.block2.size_exponent == 2


async def test_unknown_malformed_or_out_of_range_requests_are_refused(fw_server) -> None:  # type: ignore[no-untyped-def]
    server, client, data, sha, _ = fw_server
    unknown = hashlib.sha256(b"nothing").hexdigest()
    resp = await client.request(Message(code=GET, uri=_uri(server, unknown))).response
    assert resp.code == Code.NOT_FOUND and b"no artifact" in resp.payload
    resp = await client.request(Message(code=GET, uri=_uri(server, "../etc/passwd"))).response
    assert resp.code == Code.NOT_FOUND
    resp = await client.request(Message(code=POST, uri=_uri(server, sha), payload=b"x")).response
    assert resp.code == Code.METHOD_NOT_ALLOWED
    past = Message(code=GET, uri=_uri(server, sha), block2=BlockOption.BlockwiseTuple(99, False, 6))
    resp = await client.request(past, handle_blockwise=False).response
    assert resp.code == Code.BAD_OPTION


async def test_registration_still_works_beside_fw(fw_server) -> None:  # type: ignore[no-untyped-def]
    server, client, *_ = fw_server
    req = Message(code=POST, uri=f"coap://127.0.0.1:{server.coap_port}/rd?ep=fw-test&lt=60&lwm2m=1.1",
                  payload=b"</3/0>,</5/0>", content_format=40)
    resp = await client.request(req).response
    assert resp.code == Code.CREATED
    assert server.registrations.get("fw-test") is not None
