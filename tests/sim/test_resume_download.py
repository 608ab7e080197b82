"""Package downloads that resume where they stopped (objects 5 and 9, CoAP Block2 and HTTP Range).

A small /fw peer counts the block numbers the device asks for, can fall silent (a connection
loss), change its package (another ETag), or answer 4.12 / 4.04, so each test can see which
blocks travelled twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiocoap
import aiocoap.resource as resource
import pytest
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from lwm2m_server.sim.storage import DeviceStorage, PartialInfo
from lwm2m_server.sim.transfer import Faults
from ota.mcuboot import sign_image
from ota.sota import build_package

from .peer import HttpFileServer, Peer, eventually

FW_IDLE, FW_DOWNLOADED = 0, 2
SW_INITIAL, SW_DELIVERED = 0, 3
BLOCK = 1024


def image(version: str, size: int = 6000) -> bytes:
    body = bytes((i * 13 + len(version)) % 251 for i in range(size))
    return sign_image(body, None, version=version)


class CountingFile(resource.Resource):
    """A Block2 download with an ETag that logs every block number asked for.

    ``silent_from``: blocks from this number on get no answer (the link is gone) until it is
    set back to None. ``refuse_next``: a CoAP code to answer the next request with instead of data.
    """

    def __init__(self, data: bytes, silent_from: int | None = None) -> None:
        super().__init__()
        self.data = data
        self.silent_from = silent_from
        self.refuse_next: Code | None = None
        self.asked: list[int] = []

    def replace(self, data: bytes) -> None:
        self.data = data

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return False

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        num, szx = 0, 6
        if request.opt.block2 is not None:
            num, szx = request.opt.block2.block_number, min(6, request.opt.block2.size_exponent)
        if self.silent_from is not None and num >= self.silent_from:
            while self.silent_from is not None:  # no answer; a retransmission is not logged twice
                await asyncio.sleep(0.05)
            return aiocoap.Message(code=Code.SERVICE_UNAVAILABLE)
        self.asked.append(num)
        if self.refuse_next is not None:
            code, self.refuse_next = self.refuse_next, None
            return aiocoap.Message(code=code, payload=b"refused")
        size = 1 << (szx + 4)
        if num * size >= len(self.data):
            return aiocoap.Message(code=Code.BAD_OPTION, payload=b"past the end")
        msg = aiocoap.Message(payload=self.data[num * size:(num + 1) * size])
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, (num + 1) * size < len(self.data), szx)
        msg.opt.etag = hashlib.sha256(self.data).digest()[:8]
        if num == 0:
            msg.opt.size2 = len(self.data)
        return msg


def serve(peer: Peer, name: str, data: bytes, **kw: Any) -> tuple[str, CountingFile]:
    f = CountingFile(data, **kw)
    peer.site.add_resource(["fw", name], f)
    return f"{peer.uri}/fw/{name}", f


def fw(dev: Any) -> tuple[int, int]:
    o = dev.objects[5]
    return o.state, o.data[0][5]


def blocks(data: bytes) -> int:
    return -(-len(data) // BLOCK)


async def write_uri(peer: Peer, ep: str, path: str, uri: str) -> None:
    assert (await peer.request(ep, Code.PUT, path, uri.encode(), ct=0)).code == Code.CHANGED


async def test_after_a_connection_loss_the_next_pull_asks_for_the_next_block_only(
        peer: Peer, make_device: Any) -> None:
    img = image("2.0.0")
    dev = await make_device("rs-lost", faults=Faults(block_timeout=0.3))
    uri, f = serve(peer, "lost", img, silent_from=3)
    await write_uri(peer, "rs-lost", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))  # connection lost, reported first
    assert dev.storage.partial(5).held() == 3 * BLOCK
    assert f.asked == [0, 1, 2]
    f.silent_from = None
    await write_uri(peer, "rs-lost", "/5/0/1", uri)  # the server retries
    await eventually(lambda: fw(dev) == (FW_DOWNLOADED, 0))
    assert f.asked == list(range(blocks(img)))  # blocks 0-2 travelled once
    assert dev.objects[5].data[0][7] == "2.0.0"
    assert dev.storage.partial(5).held() == 0  # dropped on success


async def test_a_device_that_died_mid_download_resumes_after_power_comes_back(
        peer: Peer, make_device: Any) -> None:
    img = image("2.0.1", size=9000)
    dev = await make_device("rs-die", faults=Faults(die_mid_download=True, die_after=0.5))
    uri, f = serve(peer, "die", img)
    await write_uri(peer, "rs-die", "/5/0/1", uri)
    await eventually(lambda: not dev.alive)
    cut = len(f.asked)
    assert 1 < cut < blocks(img) and f.asked == list(range(cut))
    assert dev.storage.partial(5).held() == cut * BLOCK
    again = await make_device("rs-die")  # same flash (state folder), registers again
    await write_uri(peer, "rs-die", "/5/0/1", uri)
    await eventually(lambda: fw(again) == (FW_DOWNLOADED, 0))
    assert f.asked == list(range(blocks(img)))
    assert again.objects[5].data[0][7] == "2.0.1"


async def test_a_changed_etag_drops_the_stale_bytes_and_starts_from_block_0(
        peer: Peer, make_device: Any) -> None:
    old, new = image("2.0.2"), image("2.0.3", size=7000)
    dev = await make_device("rs-etag", faults=Faults(block_timeout=0.3))
    uri, f = serve(peer, "etag", old, silent_from=2)
    await write_uri(peer, "rs-etag", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))
    f.replace(new)
    f.silent_from = None
    await write_uri(peer, "rs-etag", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_DOWNLOADED, 0))
    assert f.asked == [0, 1, 2] + list(range(blocks(new)))
    assert dev.objects[5].data[0][7] == "2.0.3"


@pytest.mark.parametrize("code,state", [(Code.PRECONDITION_FAILED, (FW_DOWNLOADED, 0)),
                                        (Code.NOT_FOUND, (FW_IDLE, 7))])
async def test_412_restarts_from_block_0_and_404_drops_the_partial_with_invalid_uri(
        peer: Peer, make_device: Any, code: Code, state: tuple[int, int]) -> None:
    img = image("2.0.4")
    dev = await make_device("rs-code", faults=Faults(block_timeout=0.3))
    uri, f = serve(peer, "code", img, silent_from=2)
    await write_uri(peer, "rs-code", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))
    f.silent_from = None
    f.refuse_next = code  # only the resumed block is refused
    await write_uri(peer, "rs-code", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == state)
    assert dev.storage.partial(5).held() == 0
    if code == Code.PRECONDITION_FAILED:
        assert f.asked == [0, 1, 2] + list(range(blocks(img)))
    else:
        assert f.asked == [0, 1, 2]


async def test_a_new_uri_never_resumes_another_packages_bytes(peer: Peer, make_device: Any) -> None:
    a, b = image("2.0.5"), image("2.0.6")
    dev = await make_device("rs-new", faults=Faults(block_timeout=0.3))
    uri_a, fa = serve(peer, "a", a, silent_from=2)
    uri_b, fb = serve(peer, "b", b)
    await write_uri(peer, "rs-new", "/5/0/1", uri_a)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))
    await write_uri(peer, "rs-new", "/5/0/1", uri_b)
    await eventually(lambda: fw(dev) == (FW_DOWNLOADED, 0))
    assert fb.asked == list(range(blocks(b))) and dev.objects[5].data[0][7] == "2.0.6"
    fa.silent_from = None


async def test_checksum_failure_and_cancel_leave_no_partial_to_resume(
        peer: Peer, make_device: Any) -> None:
    img = image("2.0.7")
    bad = img[:700] + bytes([img[700] ^ 1]) + img[701:]
    dev = await make_device("rs-bad", faults=Faults(block_timeout=0.3))
    uri, f = serve(peer, "bad", bad)
    await write_uri(peer, "rs-bad", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 5))
    assert dev.storage.partial(5).held() == 0
    await write_uri(peer, "rs-bad", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 5))
    assert f.asked == list(range(blocks(bad))) * 2  # from block 0 again
    uri2, f2 = serve(peer, "cancel", img, silent_from=2)
    await write_uri(peer, "rs-bad", "/5/0/1", uri2)
    await eventually(lambda: f2.asked == [0, 1])
    assert (await peer.request("rs-bad", Code.POST, "/5/0/10")).code == Code.CHANGED
    assert fw(dev) == (FW_IDLE, 10) and dev.storage.partial(5).held() == 0
    f2.silent_from = None


async def test_object_9_reports_52_then_resumes_the_sota_package(
        peer: Peer, make_device: Any, signing_key: Any, retrained_model_wasm: bytes) -> None:
    pkg = build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                        private_key=signing_key, slot_size=65536)
    assert blocks(pkg) >= 2
    dev = await make_device("rs-sota", faults=Faults(block_timeout=0.3))
    uri, f = serve(peer, "pkg", pkg, silent_from=1)
    await write_uri(peer, "rs-sota", "/9/0/3", uri)
    await eventually(lambda: (dev.objects[9].state, dev.objects[9].data[0][9]) == (SW_INITIAL, 52))
    assert dev.storage.partial(9).held() == BLOCK and dev.storage.partial(5).held() == 0
    f.silent_from = None
    await write_uri(peer, "rs-sota", "/9/0/3", uri)
    await eventually(lambda: (dev.objects[9].state, dev.objects[9].data[0][9]) == (SW_DELIVERED, 3))
    assert f.asked == list(range(blocks(pkg)))
    assert dev.storage.partial(9).held() == 0


async def test_a_download_without_etag_or_sha_in_its_uri_is_not_kept(
        peer: Peer, make_device: Any) -> None:
    dev = await make_device("rs-anon", faults=Faults(block_timeout=0.3))
    uri = peer.serve_file("anon", image("2.0.8"), answer_blocks=2)  # no ETag
    await write_uri(peer, "rs-anon", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))
    assert dev.storage.partial(5).held() == 0


def test_partial_download_is_kept_per_uri_and_unreadable_records_are_dropped(tmp_path: Any) -> None:
    st = DeviceStorage(tmp_path / "dev")
    p = st.partial(5)
    assert p.load("coap://h/fw/x") is None and p.held() == 0
    p.begin(PartialInfo("coap://h/fw/x", "abcd", 5000))
    p.append(b"1" * 1024)
    p.append(b"2" * 1024)
    info, data = p.load("coap://h/fw/x")  # type: ignore[misc]
    assert info == PartialInfo("coap://h/fw/x", "abcd", 5000) and data == b"1" * 1024 + b"2" * 1024
    assert p.load("coap://h/fw/y") is None
    assert st.partial(9).load("coap://h/fw/x") is None  # each object its own
    (tmp_path / "dev" / "partial_5.json").write_text("{not json")
    assert p.load("coap://h/fw/x") is None and p.held() == 0


class RangeServer(HttpFileServer):
    """One file over HTTP/1.1 with Range and ETag; ``cut_after`` bytes of the first answer only,
    then the connection closes (a lost link). Logs the Range header of every request."""

    def __init__(self, data: bytes, cut_after: int) -> None:
        super().__init__()
        self.data = data
        self.cut_after: int | None = cut_after
        self.ranges: list[str | None] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            rng = None
            while (line := await reader.readline()) not in (b"\r\n", b""):
                k, _, v = line.decode().partition(":")
                if k.lower() == "range":
                    rng = v.strip()
            self.ranges.append(rng)
            start = int(rng[len("bytes="):].rstrip("-")) if rng else 0
            body = self.data[start:]
            status = "206 Partial Content" if rng else "200 OK"
            head = (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nETag: \"v1\"\r\n"
                    f"Connection: close\r\n")
            if rng:
                head += f"Content-Range: bytes {start}-{len(self.data) - 1}/{len(self.data)}\r\n"
            writer.write((head + "\r\n").encode())
            if self.cut_after is not None:
                writer.write(body[:self.cut_after])
                self.cut_after = None
            else:
                writer.write(body)
            await writer.drain()
        finally:
            writer.close()


async def test_http_pull_resumes_with_a_range_request(peer: Peer, make_device: Any) -> None:
    img = image("2.1.1")
    srv = RangeServer(img, cut_after=3000)
    await srv.start()
    uri = f"http://127.0.0.1:{srv.port}/fw.bin"
    try:
        dev = await make_device("rs-http")
        await write_uri(peer, "rs-http", "/5/0/1", uri)
        await eventually(lambda: fw(dev) == (FW_IDLE, 4))
        held = dev.storage.partial(5).held()
        assert 0 < held <= 3000
        await write_uri(peer, "rs-http", "/5/0/1", uri)
        await eventually(lambda: fw(dev) == (FW_DOWNLOADED, 0))
        assert srv.ranges == [None, f"bytes={held}-"]
        assert dev.objects[5].data[0][7] == "2.1.1"
    finally:
        await srv.stop()


async def test_a_device_that_retries_itself_reports_the_loss_first_then_resumes(
        peer: Peer, make_device: Any) -> None:
    img = image("2.1.2")
    dev = await make_device("rs-self", faults=Faults(block_timeout=0.3, download_retries=1,
                                                     retry_after=0.2))
    obj = dev.objects[5]
    seen: list[tuple[int, int]] = []
    set_value = obj.set_value

    def logged(iid: int, rid: int, value: Any) -> None:
        set_value(iid, rid, value)
        if rid in (3, 5):
            seen.append(fw(dev))
    obj.set_value = logged
    uri, f = serve(peer, "self", img, silent_from=2)
    await write_uri(peer, "rs-self", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4))
    f.silent_from = None  # the link is back before the device retries
    await eventually(lambda: fw(dev) == (FW_DOWNLOADED, 0))  # no new URI write from the server
    assert f.asked == list(range(blocks(img)))
    assert (FW_IDLE, 4) in seen and seen.index((FW_IDLE, 4)) < seen.index((FW_DOWNLOADED, 0))
    assert seen[seen.index((FW_IDLE, 4)) + 1][0] == 1  # Downloading again, after the report


async def test_a_device_out_of_retries_stays_at_connection_lost(peer: Peer, make_device: Any) -> None:
    dev = await make_device("rs-self2", faults=Faults(block_timeout=0.2, download_retries=1,
                                                      retry_after=0.1))
    uri, f = serve(peer, "self2", image("2.1.3"), silent_from=1)
    await write_uri(peer, "rs-self2", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 4) and not dev.busy(), timeout=5)
    assert f.asked == [0] and dev.storage.partial(5).held() == BLOCK
    f.silent_from = None


async def test_a_flash_that_cannot_keep_the_download_fails_with_not_enough_flash(
        peer: Peer, make_device: Any) -> None:
    dev = await make_device("rs-flash")
    (dev.storage.folder / "partial_5.bin").mkdir()  # the file cannot be written nor removed
    uri, f = serve(peer, "flash", image("2.1.4"))
    await write_uri(peer, "rs-flash", "/5/0/1", uri)
    await eventually(lambda: fw(dev) == (FW_IDLE, 2))
    assert not dev.busy()
