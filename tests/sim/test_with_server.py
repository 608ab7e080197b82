"""Simulated devices against the real server (Runner: CoAP + REST API on loopback ports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner
from lwm2m_server.sim.fleet import Fleet, FleetConfig
from lwm2m_server.store.tokens import create_token

from .peer import eventually


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Runner, httpx.AsyncClient]]:
    settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,
                        db_url=f"sqlite:///{tmp_path / 'server.db'}",
                        artifacts_dir=tmp_path / "artifacts", request_timeout=5.0)
    runner = Runner(settings)
    await runner.start()
    _, token = create_token(runner.server.engine, "sim-tests", ["read", "write"])
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runner.http_port}", timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
    try:
        yield runner, http
    finally:
        await http.aclose()
        await runner.stop()


async def test_fleet_registers_and_answers_reads_writes_and_runs_through_the_server(
        server: tuple[Runner, httpx.AsyncClient], tmp_path: Path, example_model_wasm: bytes):
    runner, http = server
    fleet = Fleet(FleetConfig(server=f"coap://127.0.0.1:{runner.coap_port}", count=5,
                              state_dir=str(tmp_path / "st"), jitter=0.3,
                              initial_model=example_model_wasm))
    await fleet.start()
    try:
        await fleet.wait_registered(15)
        await eventually(lambda: len(runner.server.registrations) >= 5, timeout=10)
        devices = (await http.get("/api/v1/devices")).json()
        assert {d["endpoint"] for d in devices} == {f"sim-{i:04d}" for i in range(5)}
        r = await http.get("/api/v1/devices/sim-0003/data/3/0")
        assert r.status_code == 200, r.text
        values: dict[str, Any] = r.json()["values"]
        assert values["/3/0/0"] == "TinyML Sim" and values["/3/0/3"] == "1.0.0"
        r = await http.put("/api/v1/devices/sim-0003/data/33100/0/9", json={"values": {"/33100/0/9": 0}})
        assert r.status_code in (200, 204), r.text
        r = await http.post("/api/v1/devices/sim-0003/execute/33100/0/8")
        assert r.status_code in (200, 204), r.text
        r = await http.get("/api/v1/devices/sim-0003/data/33100/0")
        assert r.json()["values"]["/33100/0/4"] == 1
        assert r.json()["values"]["/33100/0/6"] == 1
    finally:
        await fleet.stop()
