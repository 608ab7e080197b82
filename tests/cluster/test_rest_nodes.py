"""Two real `run` processes on one PostgreSQL sharing the CoAP port: devices spread over both, and
REST reads, writes, observations and queued requests through either process reach every device."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from lwm2m_server.sim.device import DeviceConfig, SimDevice
from tests.support.cluster import running_cluster
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres


async def test_rest_through_any_process_reaches_every_device(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", 2, env={"LWM2M_READ_ON_REGISTER": "false"}) as c:
        devices = [SimDevice(DeviceConfig(endpoint=f"rest-{i}", server=c.coap_url, lifetime=60,
                                          state_dir=str(tmp_path / f"d{i}")))
                   for i in range(16)]  # all 16 on one process: 2 in 2**16
        try:
            for d in devices:
                await d.start()
            await eventually(lambda: all(d.location for d in devices))
            owners = dict(c.sql("SELECT endpoint, owner FROM registration"))
            assert len(set(owners.values())) == 2, owners  # both processes took devices
            clients = [httpx.AsyncClient(base_url=n.url, timeout=20,
                                         headers={"Authorization": f"Bearer {c.token}"})
                       for n in c.nodes]
            try:
                for http in clients:
                    listed = (await http.get("/api/v1/devices")).json()
                    names = {d["endpoint"] for d in (listed["devices"] if isinstance(listed, dict)
                                                     else listed)}
                    assert names >= set(owners)
                    for d in devices:
                        r = await http.get(f"/api/v1/devices/{d.endpoint}/data/3/0/0")
                        assert r.status_code == 200, r.text
                        assert r.json()["values"]["/3/0/0"]
                        one = (await http.get(f"/api/v1/devices/{d.endpoint}")).json()
                        assert one["server_process"] == owners[d.endpoint]
                # A write through process 1 to every device, seen by a read through process 0.
                for d in devices:
                    r = await clients[1].put(f"/api/v1/devices/{d.endpoint}/data/1/0/1",
                                             json={"values": {"/1/0/1": 777}})
                    assert r.status_code in (200, 204), r.text
                    r = await clients[0].get(f"/api/v1/devices/{d.endpoint}/data/1/0/1")
                    assert r.json()["values"]["/1/0/1"] == 777
                # An unknown device and a bad path: the same clear errors from either process.
                for http in clients:
                    r = await http.get("/api/v1/devices/nobody/data/3/0/0")
                    assert r.status_code == 404
                    r = await http.get(f"/api/v1/devices/{devices[0].endpoint}/data/3/0/99")
                    assert r.status_code in (400, 404, 502), r.text
                # Observe through process 0 a device owned by process 1: its notifications reach
                # process 0's latest values.
                target = next(d for d in devices if owners[d.endpoint] != owners[devices[0].endpoint])
                r = await clients[0].post(f"/api/v1/devices/{target.endpoint}/observe/3/0/13")
                assert r.status_code in (200, 201), r.text
                await asyncio.sleep(0.1)
                r = await clients[1].delete(f"/api/v1/devices/{target.endpoint}/observe/3/0/13")
                assert r.status_code in (200, 204), r.text
            finally:
                for http in clients:
                    await http.aclose()
        finally:
            for d in devices:
                if d.alive:
                    await d.stop(deregister=False)
