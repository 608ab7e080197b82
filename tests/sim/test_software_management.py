"""Object 9 (Software Management) with SOTA packages: every state, result and verify failure."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.sim.transfer import Faults
from ota.keys import generate_private_key
from ota.sota import build_package
from tests.support.wasm import wat_to_wasm

from .peer import HttpFileServer, Peer, eventually

INITIAL, DOWNLOAD_STARTED, DOWNLOADED, DELIVERED, INSTALLED = 0, 1, 2, 3, 4
SLOT = 65536

NO_INPUT_SIZE_WAT = """(module (memory (export "memory") 1)
  (func (export "input_buffer") (result i32) i32.const 0)
  (func (export "infer") (result i32) i32.const 0))"""


def sw(dev: Any) -> tuple[int, int]:
    o = dev.objects[9]
    return o.state, o.data[0][9]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, signing_key: Any, retrained_model_wasm: bytes,
             example_model_wasm: bytes) -> dict[str, bytes]:
    def pkg(module: bytes = retrained_model_wasm, key: Any = signing_key, **kw: Any) -> bytes:
        kw.setdefault("name", "classifier")
        kw.setdefault("version", "2.0.0")
        kw.setdefault("slot_size", SLOT)
        return build_package(module, private_key=key, **kw)

    good = pkg(selftest={"input": [1.0, 0.5, 0.2, 0.1], "expected": 1})
    no_input_size = wat_to_wasm(NO_INPUT_SIZE_WAT, tmp_path_factory.mktemp("wat"))
    return {
        "good": good,
        "format": b"SOTX" + good[4:],
        "signature": pkg(key=generate_private_key("ed25519")),
        "hash": good[:-1] + bytes([good[-1] ^ 0x01]),
        "downgrade": pkg(version="1.0.0"),
        "wasm": pkg(module=no_input_size, exports=("memory", "infer")),
        "selftest": pkg(selftest={"input": [1.0, 0.5, 0.2, 0.1], "expected": 2}),
        "v3": pkg(module=example_model_wasm, version="3.0.0"),
    }


async def test_pull_verify_install_activate_switches_the_model_slot(peer: Peer, make_device, packages,
                                                                    retrained_model_wasm):
    dev = await make_device("sw-1")
    assert sw(dev) == (INSTALLED, 0)
    assert (await peer.request("sw-1", Code.GET, "/33100/0/0")).payload == b"0"
    uri = peer.serve_file("pkg", packages["good"])
    assert (await peer.request("sw-1", Code.PUT, "/9/0/3", uri.encode(), ct=0)).code == Code.CHANGED
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    assert (await peer.request("sw-1", Code.GET, "/9/0/1")).payload == b"2.0.0"
    assert (await peer.request("sw-1", Code.POST, "/9/0/4")).code == Code.CHANGED
    await eventually(lambda: sw(dev) == (INSTALLED, 2))
    assert (await peer.request("sw-1", Code.GET, "/9/0/12")).payload == b"0"
    assert dev.model.active_slot == 0
    assert (await peer.request("sw-1", Code.POST, "/9/0/10")).code == Code.CHANGED
    await eventually(lambda: dev.model.active_slot == 1)
    assert (await peer.request("sw-1", Code.GET, "/9/0/12")).payload == b"1"
    assert (await peer.request("sw-1", Code.GET, "/33100/0/0")).payload == b"1"
    assert (await peer.request("sw-1", Code.GET, "/33100/0/2/1")).payload == b"2.0.0"
    sha = hashlib.sha256(retrained_model_wasm).hexdigest()
    assert (await peer.request("sw-1", Code.GET, "/33100/0/3/1")).payload == sha.encode()
    assert dev.model.runner.sha256 == sha
    assert dev.storage.active()[1] == 1
    assert (await peer.request("sw-1", Code.POST, "/33100/0/8")).code == Code.CHANGED


async def test_push_package_and_http_pull_are_delivered(peer: Peer, make_device, packages,
                                                        http_files: HttpFileServer):
    dev = await make_device("sw-2")
    assert (await peer.request("sw-2", Code.PUT, "/9/0/2", packages["good"], ct=42)).code == Code.CHANGED
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    dev2 = await make_device("sw-3")
    uri = http_files.serve("pkg", packages["good"])
    await peer.request("sw-3", Code.PUT, "/9/0/3", uri.encode(), ct=0)
    await eventually(lambda: sw(dev2) == (DELIVERED, 3))


@pytest.mark.parametrize("kind,result", [
    ("format", 54), ("signature", 53), ("hash", 53), ("downgrade", 58), ("wasm", 58),
    ("selftest", 58)])
async def test_verify_failure_keeps_old_model_with_result(peer: Peer, make_device, packages, kind,
                                                          result, example_model_wasm):
    dev = await make_device(f"sw-{kind}")
    await peer.request(f"sw-{kind}", Code.PUT, "/9/0/2", packages[kind], ct=42)
    await eventually(lambda: sw(dev) == (INITIAL, result))
    reason = (await peer.request(f"sw-{kind}", Code.GET, "/9/0/16")).payload.decode()
    assert kind in reason
    assert dev.model.active_slot == 0
    assert dev.model.runner.sha256 == hashlib.sha256(example_model_wasm).hexdigest()
    assert (await peer.request(f"sw-{kind}", Code.POST, "/33100/0/8")).code == Code.CHANGED
    assert (await peer.request(f"sw-{kind}", Code.GET, "/9/0/1")).payload == b"1.0.0"


async def test_package_larger_than_slot_is_not_enough_storage(peer: Peer, make_device, packages):
    dev = await make_device("sw-big", slot_bytes=1024)
    await peer.request("sw-big", Code.PUT, "/9/0/2", packages["good"], ct=42)
    await eventually(lambda: sw(dev) == (INITIAL, 50))
    dev2 = await make_device("sw-big2", slot_bytes=256)
    await peer.request("sw-big2", Code.PUT, "/9/0/3", peer.serve_file("p", packages["good"]).encode(), ct=0)
    await eventually(lambda: sw(dev2) == (INITIAL, 50))


async def test_push_larger_than_ram_is_out_of_memory(peer: Peer, make_device, packages):
    dev = await make_device("sw-ram", ram_bytes=512)
    await peer.request("sw-ram", Code.PUT, "/9/0/2", packages["good"], ct=42)
    await eventually(lambda: sw(dev) == (INITIAL, 51))


async def test_connection_lost_and_invalid_uri(peer: Peer, make_device, packages):
    dev = await make_device("sw-lost", faults=Faults(block_timeout=0.3))
    await peer.request("sw-lost", Code.PUT, "/9/0/3",
                       peer.serve_file("l", packages["good"], answer_blocks=1).encode(), ct=0)
    await eventually(lambda: sw(dev) == (INITIAL, 52))
    await peer.request("sw-lost", Code.PUT, "/9/0/3", b"nonsense", ct=0)
    await eventually(lambda: sw(dev) == (INITIAL, 56))
    await peer.request("sw-lost", Code.PUT, "/9/0/3", f"{peer.uri}/fw/missing".encode(), ct=0)
    await eventually(lambda: sw(dev) == (INITIAL, 56))
    assert dev.model.active_slot == 0


async def test_install_that_cannot_write_the_slot_stays_delivered(peer: Peer, make_device, packages,
                                                                  tmp_path: Path):
    dev = await make_device("sw-io")
    await peer.request("sw-io", Code.PUT, "/9/0/2", packages["good"], ct=42)
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    (dev.storage.folder / "slot_b.wasm").mkdir()  # the flash sector is bad
    await peer.request("sw-io", Code.POST, "/9/0/4")
    await eventually(lambda: sw(dev) == (DELIVERED, 58))
    assert dev.model.active_slot == 0


async def test_deactivate_uninstall_and_refused_operations(peer: Peer, make_device, packages,
                                                           example_model_wasm):
    dev = await make_device("sw-sm")
    for rid in (4, 10):  # Install needs DELIVERED; Activate of the running package is refused
        assert (await peer.request("sw-sm", Code.POST, f"/9/0/{rid}")).code == Code.METHOD_NOT_ALLOWED
    await peer.request("sw-sm", Code.PUT, "/9/0/2", packages["good"], ct=42)
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    assert (await peer.request("sw-sm", Code.POST, "/9/0/10")).code == Code.METHOD_NOT_ALLOWED
    await peer.request("sw-sm", Code.POST, "/9/0/4")
    await eventually(lambda: sw(dev) == (INSTALLED, 2))
    assert (await peer.request("sw-sm", Code.POST, "/9/0/11")).code == Code.METHOD_NOT_ALLOWED
    await peer.request("sw-sm", Code.POST, "/9/0/10")
    await eventually(lambda: dev.model.active_slot == 1)
    await peer.request("sw-sm", Code.POST, "/9/0/11")
    await eventually(lambda: dev.model.active_slot == 0 and dev.objects[9].data[0][12] is False)
    await peer.request("sw-sm", Code.POST, "/9/0/10")
    await eventually(lambda: dev.model.active_slot == 1)
    # Uninstall (not for update) of the active package: the previous model runs again.
    await peer.request("sw-sm", Code.POST, "/9/0/6")
    await eventually(lambda: sw(dev) == (INITIAL, 0) and dev.model.active_slot == 0)
    assert dev.model.runner.sha256 == hashlib.sha256(example_model_wasm).hexdigest()
    assert (await peer.request("sw-sm", Code.POST, "/9/0/6")).code == Code.METHOD_NOT_ALLOWED


async def test_uninstall_for_update_keeps_model_and_next_version_follows(peer: Peer, make_device,
                                                                         packages):
    dev = await make_device("sw-up")
    await peer.request("sw-up", Code.POST, "/9/0/6", b"0='1'")
    await eventually(lambda: sw(dev) == (INITIAL, 0))
    assert dev.model.runner is not None and dev.model.active_slot == 0
    await peer.request("sw-up", Code.PUT, "/9/0/2", packages["good"], ct=42)
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    # Uninstall in DELIVERED drops the delivered package.
    await peer.request("sw-up", Code.POST, "/9/0/6")
    await eventually(lambda: sw(dev)[0] == INITIAL)
    assert (await peer.request("sw-up", Code.POST, "/9/0/4")).code == Code.METHOD_NOT_ALLOWED


async def test_write_while_downloading_is_refused(peer: Peer, make_device, packages):
    dev = await make_device("sw-busy", faults=Faults(block_timeout=5))
    await peer.request("sw-busy", Code.PUT, "/9/0/3",
                       peer.serve_file("b", packages["good"], answer_blocks=1).encode(), ct=0)
    await eventually(lambda: sw(dev) == (DOWNLOAD_STARTED, 1))
    again = await peer.request("sw-busy", Code.PUT, "/9/0/2", packages["good"], ct=42)
    assert again.code == Code.METHOD_NOT_ALLOWED


async def test_model_swap_has_no_gap_in_inference(peer: Peer, make_device, packages, retrained_model_wasm):
    dev = await make_device("sw-gap")
    dev.set_inference_period(0.005)
    await eventually(lambda: len(dev.inference_times) > 20)
    start = len(dev.inference_times)
    await peer.request("sw-gap", Code.PUT, "/9/0/3", peer.serve_file("g", packages["good"]).encode(), ct=0)
    await eventually(lambda: sw(dev) == (DELIVERED, 3))
    await peer.request("sw-gap", Code.POST, "/9/0/4")
    await eventually(lambda: sw(dev) == (INSTALLED, 2))
    await peer.request("sw-gap", Code.POST, "/9/0/10")
    await eventually(lambda: dev.model.active_slot == 1)
    n = len(dev.inference_times)
    await eventually(lambda: len(dev.inference_times) > n + 20)
    times = dev.inference_times[start:]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) > 25
    assert max(gaps) < 0.5, f"largest gap {max(gaps):.3f} s"
    assert dev.model.runner.sha256 == hashlib.sha256(retrained_model_wasm).hexdigest()
