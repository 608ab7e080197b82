"""What keeps a fleet small: copy-on-write values, the task-free idle device, the delayed start."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.sim.values import InstanceValues

from .peer import Peer, eventually


def test_equal_start_values_share_one_template_and_changes_stay_apart():
    a = InstanceValues.of({0: "x", 1: {0: 1}, 2: 5})
    b = InstanceValues.of({0: "x", 1: {0: 1}, 2: 5})
    assert a._template is b._template and a.own == {} and b.own == {}
    a[2] = 6
    a[1] = {0: 1, 1: 2}
    assert dict(a) == {0: "x", 1: {0: 1, 1: 2}, 2: 6}
    assert dict(b) == {0: "x", 1: {0: 1}, 2: 5}  # b does not see a's changes
    assert InstanceValues.of({0: "x", 1: {0: 1}, 2: 5})[1] == {0: 1}  # nor does the template
    a[2] = 5  # back to the template's value: nothing of its own for that resource any more
    assert a.own == {1: {0: 1, 1: 2}}


def test_types_count_when_matching_a_template_and_deletes_hide_template_values():
    a = InstanceValues.of({0: 1, 1: "keep"})
    a[0] = True  # equal to 1 but a boolean: held apart
    assert a[0] is True and a.own == {0: True}
    assert InstanceValues.of({0: True, 1: "keep"})._template is not a._template
    del a[1]
    assert 1 not in a and list(a) == [0] and len(a) == 1
    with pytest.raises(KeyError):
        a[1]
    a[7] = b"new"
    assert dict(a) == {0: True, 7: b"new"}
    del a[7]
    with pytest.raises(KeyError):
        del a[7]


async def test_two_devices_start_on_shared_values_and_a_write_changes_only_one(peer: Peer, make_device):
    a = await make_device("cow-1")
    b = await make_device("cow-2")
    for oid in (1, 3, 4, 5, 9, 33100):
        assert a.objects[oid].data[0]._template is b.objects[oid].data[0]._template, oid
    assert (await peer.request("cow-1", Code.PUT, "/1/0/1", b"77", ct=0)).code == Code.CHANGED
    assert (await peer.request("cow-1", Code.PUT, "/3/0/15", b"Europe/Berlin", ct=0)).code == Code.CHANGED
    assert (await peer.request("cow-1", Code.POST, "/33100/0/8")).code == Code.CHANGED

    async def read(ep: str, path: str) -> bytes:
        resp = await peer.request(ep, Code.GET, path, accept=0)
        assert resp.code == Code.CONTENT
        return resp.payload

    assert (await read("cow-1", "/1/0/1"), await read("cow-2", "/1/0/1")) == (b"77", b"300")
    assert (await read("cow-1", "/3/0/15"), await read("cow-2", "/3/0/15")) == (b"Europe/Berlin", b"UTC")
    assert (await read("cow-1", "/33100/0/4"), await read("cow-2", "/33100/0/4")) == (b"1", b"0")
    assert (await read("cow-1", "/3/0/2")) != (await read("cow-2", "/3/0/2"))  # serials differ


async def test_an_idle_device_has_no_task_and_still_updates_on_time(peer: Peer, make_device):
    dev = await make_device("idle-1", update_interval=0.3)
    await eventually(lambda: dev._main is None and dev._tasks is None, timeout=3)
    await eventually(lambda: peer.devices["idle-1"].updates >= 3, timeout=5)
    # A Lifetime write still asks for an Update at once, with the new lt.
    assert (await peer.request("idle-1", Code.PUT, "/1/0/1", b"99", ct=0)).code == Code.CHANGED
    await eventually(lambda: any(q.get("lt") == "99" for q in peer.devices["idle-1"].update_queries))
    await dev.stop(deregister=False)
    assert dev._timer is None and not dev.alive


async def test_a_delayed_start_binds_the_socket_at_once_and_registers_after_the_delay(
        peer: Peer, tmp_path, example_model_wasm: bytes):
    from lwm2m_server.sim.device import DeviceConfig, SimDevice

    dev = SimDevice(DeviceConfig(endpoint="late-1", server=peer.uri, state_dir=str(tmp_path),
                                 initial_model=example_model_wasm))
    try:
        await dev.start(delay=0.6)
        assert dev.port != 0 and dev.alive  # the socket is open
        await asyncio.sleep(0.3)
        assert "late-1" not in peer.devices and not dev.registered.is_set()
        await asyncio.wait_for(dev.registered.wait(), 5)
        assert "late-1" in peer.devices
        assert dev.registered_after is not None and dev.registered_after < 0.5  # counted from the delay
    finally:
        await dev.stop()


async def test_a_device_stopped_before_its_delay_never_registers(peer: Peer, tmp_path,
                                                                example_model_wasm: bytes):
    from lwm2m_server.sim.device import DeviceConfig, SimDevice

    dev = SimDevice(DeviceConfig(endpoint="late-2", server=peer.uri, state_dir=str(tmp_path),
                                 initial_model=example_model_wasm))
    await dev.start(delay=0.3)
    await dev.stop()
    await asyncio.sleep(0.6)
    assert "late-2" not in peer.devices and not dev.registered.is_set()
