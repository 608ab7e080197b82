"""Object 5 (Firmware Update): every state and Update Result of LwM2M 1.1 §E.6, pull and push."""

from __future__ import annotations

import aiocoap.error
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.sim.firmware import parse_mcuboot_image, ImageError
from lwm2m_server.sim.transfer import Faults

from .peer import HttpFileServer, Peer, eventually

IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3


def fw(dev):  # type: ignore[no-untyped-def]
    o = dev.objects[5]
    return o.state, o.data[0][5]


async def test_image_check_accepts_imgtool_images_and_names_failures(images):
    img = parse_mcuboot_image(images["good"])
    assert img.version == "2.0.0"
    with pytest.raises(ImageError) as e:
        parse_mcuboot_image(images["corrupt"])
    assert e.value.result == 5
    with pytest.raises(ImageError) as e:
        parse_mcuboot_image(b"\x7fELF" + b"\0" * 100)
    assert e.value.result == 6


async def test_pull_over_coap_block2_then_update_reregisters_with_new_version(peer: Peer, make_device, images):
    dev = await make_device("fw-1")
    uri = peer.serve_file("good.bin", images["good"])
    assert (await peer.request("fw-1", Code.GET, "/5/0/3")).payload == b"0"
    assert (await peer.request("fw-1", Code.PUT, "/5/0/1", uri.encode(), ct=0)).code == Code.CHANGED
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))
    assert (await peer.request("fw-1", Code.GET, "/5/0/7")).payload == b"2.0.0"
    assert (await peer.request("fw-1", Code.POST, "/5/0/2")).code == Code.CHANGED
    await eventually(lambda: fw(dev) == (IDLE, 1))
    await peer.wait_for(lambda: peer.devices["fw-1"].registered == 2)
    assert (await peer.request("fw-1", Code.GET, "/3/0/3")).payload == b"2.0.0"
    assert (await peer.request("fw-1", Code.GET, "/5/0/5")).payload == b"1"
    assert dev.storage.state()["firmware_version"] == "2.0.0"


async def test_pull_over_http(peer: Peer, make_device, images, http_files: HttpFileServer):
    dev = await make_device("fw-2")
    uri = http_files.serve("good.bin", images["good"])
    await peer.request("fw-2", Code.PUT, "/5/0/1", uri.encode(), ct=0)
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))


async def test_push_package_by_block1_write(peer: Peer, make_device, images):
    dev = await make_device("fw-3")
    resp = await peer.request("fw-3", Code.PUT, "/5/0/0", images["good"], ct=42)
    assert resp.code == Code.CHANGED
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))


@pytest.mark.parametrize("kind,result", [("corrupt", 5), ("garbage", 6)])
async def test_bad_image_returns_to_idle_with_result(peer: Peer, make_device, images, kind, result):
    dev = await make_device(f"fw-bad-{kind}")
    data = images["corrupt"] if kind == "corrupt" else b"not firmware" * 100
    await peer.request(f"fw-bad-{kind}", Code.PUT, "/5/0/1", peer.serve_file(kind, data).encode(), ct=0)
    await eventually(lambda: fw(dev) == (IDLE, result))
    assert dev.firmware_version == "1.0.0"


async def test_image_larger_than_flash_is_not_enough_flash(peer: Peer, make_device, images):
    dev = await make_device("fw-flash", flash_bytes=2048)
    await peer.request("fw-flash", Code.PUT, "/5/0/1", peer.serve_file("big", images["good"]).encode(), ct=0)
    await eventually(lambda: fw(dev) == (IDLE, 2))


async def test_push_larger_than_ram_is_out_of_ram(peer: Peer, make_device, images):
    dev = await make_device("fw-ram", ram_bytes=2048)
    await peer.request("fw-ram", Code.PUT, "/5/0/0", images["good"], ct=42)
    await eventually(lambda: fw(dev) == (IDLE, 3))
    assert (await peer.request("fw-ram", Code.GET, "/3/0/11/0")).payload == b"5"


async def test_server_that_stops_answering_is_connection_lost(peer: Peer, make_device, images):
    dev = await make_device("fw-lost", faults=Faults(block_timeout=0.3))
    uri = peer.serve_file("lost", images["good"], answer_blocks=1)
    await peer.request("fw-lost", Code.PUT, "/5/0/1", uri.encode(), ct=0)
    await eventually(lambda: fw(dev) == (IDLE, 4))
    assert 7 in dev.objects[3].data[0][11].values()


@pytest.mark.parametrize("uri,result", [
    ("no uri at all", 7), ("coap://127.0.0.1:1:2/x", 7), ("https://127.0.0.1/fw.bin", 9),
    ("ftp://127.0.0.1/fw.bin", 9)])
async def test_bad_uri_gives_invalid_uri_or_unsupported_protocol(peer: Peer, make_device, uri, result):
    dev = await make_device("fw-uri")
    assert (await peer.request("fw-uri", Code.PUT, "/5/0/1", uri.encode(), ct=0)).code == Code.CHANGED
    await eventually(lambda: fw(dev) == (IDLE, result))


async def test_missing_file_is_invalid_uri(peer: Peer, make_device):
    dev = await make_device("fw-404")
    await peer.request("fw-404", Code.PUT, "/5/0/1", f"{peer.uri}/fw/none".encode(), ct=0)
    await eventually(lambda: fw(dev) == (IDLE, 7))


async def test_non_bootable_image_fails_update_back_to_downloaded(peer: Peer, make_device, images):
    dev = await make_device("fw-nb")
    await peer.request("fw-nb", Code.PUT, "/5/0/0", images["non_bootable"], ct=42)
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))
    await peer.request("fw-nb", Code.POST, "/5/0/2")
    await eventually(lambda: fw(dev) == (DOWNLOADED, 8))
    assert dev.firmware_version == "1.0.0"


async def test_state_machine_refuses_out_of_order_operations_and_cancels(peer: Peer, make_device, images):
    dev = await make_device("fw-sm")
    assert (await peer.request("fw-sm", Code.POST, "/5/0/2")).code == Code.METHOD_NOT_ALLOWED
    assert (await peer.request("fw-sm", Code.POST, "/5/0/10")).code == Code.METHOD_NOT_ALLOWED
    await peer.request("fw-sm", Code.PUT, "/5/0/0", images["good"], ct=42)
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))
    again = await peer.request("fw-sm", Code.PUT, "/5/0/1", b"coap://127.0.0.1/x", ct=0)
    assert again.code == Code.METHOD_NOT_ALLOWED
    assert fw(dev) == (DOWNLOADED, 0)
    assert (await peer.request("fw-sm", Code.POST, "/5/0/10")).code == Code.CHANGED
    assert fw(dev) == (IDLE, 10)
    await peer.request("fw-sm", Code.PUT, "/5/0/0", images["good"], ct=42)
    await eventually(lambda: fw(dev) == (DOWNLOADED, 0))
    assert (await peer.request("fw-sm", Code.PUT, "/5/0/1", b"", ct=0)).code == Code.CHANGED
    assert fw(dev) == (IDLE, 0)


async def test_cancel_during_download(peer: Peer, make_device, images):
    dev = await make_device("fw-cd", faults=Faults(block_timeout=5))
    uri = peer.serve_file("slow", images["good"], answer_blocks=1)
    await peer.request("fw-cd", Code.PUT, "/5/0/1", uri.encode(), ct=0)
    await eventually(lambda: fw(dev)[0] == DOWNLOADING)
    assert (await peer.request("fw-cd", Code.POST, "/5/0/10")).code == Code.CHANGED
    assert fw(dev) == (IDLE, 10)


async def test_corrupt_download_fault_gives_integrity_failure(peer: Peer, make_device, images):
    dev = await make_device("fw-cf", faults=Faults(corrupt_download=True))
    await peer.request("fw-cf", Code.PUT, "/5/0/1", peer.serve_file("g", images["good"]).encode(), ct=0)
    await eventually(lambda: fw(dev)[0] == IDLE and fw(dev)[1] in (5, 6))


async def test_device_that_dies_mid_download_stops_answering(peer: Peer, make_device, images):
    dev = await make_device("fw-die", faults=Faults(die_mid_download=True))
    await peer.request("fw-die", Code.PUT, "/5/0/1", peer.serve_file("d", images["good"]).encode(), ct=0)
    await eventually(lambda: not dev.alive)
    with pytest.raises((TimeoutError, aiocoap.error.NetworkError)):
        await peer.request("fw-die", Code.GET, "/3/0/3", timeout=1.0)
