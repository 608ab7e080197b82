"""Queue mode, a 50-device fleet with jittered start, and state that survives a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.sim.errors import StorageError
from lwm2m_server.sim.fleet import Fleet, FleetConfig
from lwm2m_server.sim.model_host import ModelHost
from lwm2m_server.sim.storage import DeviceStorage, SlotInfo
from lwm2m_server.sim.transfer import Faults
from ota.keys import public_key_of
from ota.sota import build_package

from .peer import Peer, eventually


async def test_queue_mode_sleeps_wakes_updates_and_serves_queued_requests(peer: Peer, make_device):
    dev = await make_device("q-1", binding="UQ", update_interval=2.0, awake_seconds=0.4)
    assert peer.devices["q-1"].query["b"] == "U" and "Q" in peer.devices["q-1"].query
    await eventually(lambda: not dev.awake, timeout=3)
    with pytest.raises(asyncio.TimeoutError):
        # non-confirmable, so no retransmission holds up the requests that follow
        await peer.request("q-1", Code.GET, "/3/0/3", timeout=0.5, mtype=aiocoap.NON)
    # What a server does in queue mode: wait for the next Update, then send what was queued.
    await peer.next_update("q-1", timeout=5)
    resp = await peer.request("q-1", Code.GET, "/3/0/3", timeout=2)
    assert resp.code == Code.CONTENT
    await eventually(lambda: not dev.awake, timeout=3)


async def test_lwm2m_1_0_device_spells_queue_mode_as_binding_uq(peer: Peer, make_device):
    await make_device("q-10", binding="UQ", lwm2m_version="1.0")
    assert peer.devices["q-10"].query["b"] == "UQ" and "Q" not in peer.devices["q-10"].query


async def test_fleet_of_50_registers_with_jittered_start_on_own_sockets(peer: Peer, tmp_path: Path,
                                                                      example_model_wasm: bytes):
    fleet = Fleet(FleetConfig(server=peer.uri, count=50, state_dir=str(tmp_path), jitter=1.0,
                              initial_model=example_model_wasm, seed=7))
    try:
        await fleet.start()
        took = await fleet.wait_registered(20)
        assert took < 20
        await peer.wait_for(lambda: len(peer.devices) == 50)
        ports = {d.port for d in fleet.devices}
        assert len(ports) == 50
        times = sorted(r.at for r in peer.devices.values())
        assert times[-1] - times[0] > 0.3  # jitter spread the registrations
        resp = await peer.request("sim-0049", Code.GET, "/33100/0/2/0")
        assert resp.payload == b"1.0.0"
    finally:
        await fleet.stop()
    await peer.wait_for(lambda: not peer.devices)


async def test_stopped_fleet_resumes_with_slots_and_firmware_versions(
        peer: Peer, tmp_path: Path, example_model_wasm: bytes, retrained_model_wasm: bytes,
        signing_key: Any, images: dict[str, bytes]):
    cfg = FleetConfig(server=peer.uri, count=2, state_dir=str(tmp_path), jitter=0.1,
                      initial_model=example_model_wasm, trusted_key=public_key_of(signing_key))
    fleet = Fleet(cfg)
    await fleet.start()
    await fleet.wait_registered(10)
    await peer.wait_for(lambda: len(peer.devices) == 2)
    a, b = fleet.devices
    await peer.request(a.endpoint, Code.PUT, "/5/0/0", images["good"], ct=42)
    await eventually(lambda: a.objects[5].state == 2)
    await peer.request(a.endpoint, Code.POST, "/5/0/2")
    await eventually(lambda: a.firmware_version == "2.0.0")
    pkg = build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                        private_key=signing_key, slot_size=65536)
    await peer.request(b.endpoint, Code.PUT, "/9/0/2", pkg, ct=42)
    await eventually(lambda: b.objects[9].state == 3)
    await peer.request(b.endpoint, Code.POST, "/9/0/4")
    await eventually(lambda: b.objects[9].state == 4)
    await peer.request(b.endpoint, Code.POST, "/9/0/10")
    await eventually(lambda: b.model.active_slot == 1)
    await fleet.stop()

    again = Fleet(cfg)
    await again.start()
    try:
        await again.wait_registered(10)
        await peer.wait_for(lambda: len(peer.devices) == 2)
        assert (await peer.request(a.endpoint, Code.GET, "/3/0/3")).payload == b"2.0.0"
        assert (await peer.request(b.endpoint, Code.GET, "/33100/0/0")).payload == b"1"
        assert (await peer.request(b.endpoint, Code.GET, "/9/0/1")).payload == b"2.0.0"
        assert (await peer.request(a.endpoint, Code.GET, "/3/0/2")).payload.decode() == a.serial
        assert (await peer.request(b.endpoint, Code.POST, "/33100/0/8")).code == Code.CHANGED
    finally:
        await again.stop()


def test_active_record_is_written_atomically_with_seq_and_crc(tmp_path: Path, example_model_wasm: bytes):
    st = DeviceStorage(tmp_path)
    assert st.active() == (0, 0)
    st.write_slot(1, example_model_wasm, SlotInfo("m", "1.0.0", "x"))
    assert st.set_active(1) == 1
    assert st.set_active(0) == 2
    rec = json.loads((tmp_path / "active.json").read_text())
    assert rec["seq"] == 2 and rec["slot"] == 0
    assert not list(tmp_path.glob(".*.tmp"))
    rec["slot"] = 1  # a record whose CRC no longer matches
    (tmp_path / "active.json").write_text(json.dumps(rec))
    with pytest.raises(StorageError):
        st.active()
    host = ModelHost(st)
    host.load()
    assert host.active_slot == 1  # slot A is empty, so the host falls back to B
    assert "CRC" in host.last_error


async def test_added_latency_delays_every_answer(peer: Peer, make_device):
    await make_device("lat-1", faults=Faults(latency_ms=200))
    t0 = asyncio.get_running_loop().time()
    assert (await peer.request("lat-1", Code.GET, "/3/0/3")).code == Code.CONTENT
    assert asyncio.get_running_loop().time() - t0 >= 0.19


async def test_drop_rate_loses_a_share_of_requests(peer: Peer, make_device):
    dev = await make_device("drop-1")
    dev.faults.drop_rate = 0.5

    async def one() -> bool:
        try:
            await peer.request("drop-1", Code.GET, "/3/0/3", timeout=0.5, mtype=aiocoap.NON)
            return True
        except asyncio.TimeoutError:
            return False

    answered = sum(await asyncio.gather(*(one() for _ in range(40))))
    assert 5 <= answered <= 35


async def test_queue_mode_device_stays_awake_until_its_download_is_done(peer: Peer, make_device,
                                                                        images: dict[str, bytes]):
    dev = await make_device("q-dl", binding="UQ", update_interval=5.0, awake_seconds=0.3)
    uri = peer.serve_file("slow-q", images["good"], delay=0.25)  # 4 blocks: about 1 s
    await peer.request("q-dl", Code.PUT, "/5/0/1", uri.encode(), ct=0)
    await asyncio.sleep(0.6)
    assert dev.awake and dev.objects[5].state == 1  # still downloading, still listening
    await eventually(lambda: dev.objects[5].state == 2, timeout=5)
    await eventually(lambda: not dev.awake, timeout=3)
