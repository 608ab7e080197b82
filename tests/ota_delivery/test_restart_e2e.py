"""kill -9 of `lwm2m-server run` in the middle of a deployment, then a restart: every target
finishes and no device is updated twice (SQLite here; PostgreSQL in test_postgres_e2e.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server.sim.device import DeviceConfig, SimDevice
from lwm2m_server.store.artifacts import ingest_artifact
from lwm2m_server.store.db import init_db, make_engine
from lwm2m_server.store.tokens import create_token
from ota.store import ArtifactStore
from tests.support.proc import free_port

from .conftest import eventually, firmware_image

pytestmark = pytest.mark.slow


class ServerProcess:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.coap_port = free_port()
        self.http_port = free_port("tcp")
        self.db_url = db_url
        self.env = {**os.environ, "LWM2M_ARTIFACTS_DIR": str(tmp / "artifacts"),
                    "LWM2M_LOG_LEVEL": "warning"}
        self.log = open(tmp / "server.log", "ab")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1",
             "--coap-port", str(self.coap_port), "--http-host", "127.0.0.1",
             "--http-port", str(self.http_port), "--db", self.db_url],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as c:
            while True:
                assert self.proc.poll() is None, "server exited at start"
                try:
                    if (await c.get(f"http://127.0.0.1:{self.http_port}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                await asyncio.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def count_updates(dev: SimDevice) -> list[int]:
    """Wrap the device's firmware apply step to count how often it really updates."""
    counter = [0]
    fw: Any = dev.objects[5]
    original = fw._apply

    async def counted() -> None:
        counter[0] += 1
        await original()
    fw._apply = counted
    return counter


async def run_kill9_scenario(tmp: Path, db_url: str, model: bytes) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    _, token = create_token(engine, "kill9", ["admin"])
    image = firmware_image("3.0.0", size=30_000)
    art = ingest_artifact(engine, ArtifactStore(tmp / "artifacts"), image, kind="firmware",
                          name="fw", version="3.0.0").artifact
    server = ServerProcess(tmp, db_url)
    devices: list[SimDevice] = []
    try:
        await server.start()
        counters = []
        for i in range(6):
            dev = SimDevice(DeviceConfig(endpoint=f"k9-{i}", lifetime=120,
                                         server=f"coap://127.0.0.1:{server.coap_port}",
                                         state_dir=str(tmp / f"dev{i}"), initial_model=model,
                                         update_seconds=0.8))
            devices.append(dev)
            await dev.start()
            counters.append(count_updates(dev))
        await eventually(lambda: all(d.location for d in devices))
        base = f"http://127.0.0.1:{server.http_port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=20) as c:
            r = await c.post(f"{base}/deployments", json={
                "artifact_id": art.id, "endpoints": [d.endpoint for d in devices],
                "max_concurrent": 2, "timeout": 60, "retries": 2})
            assert r.status_code == 201, r.text
            dep = r.json()["id"]

            async def states() -> list[str]:
                return [t["state"] for t in (await c.get(f"{base}/deployments/{dep}")).json()["targets"]]

            deadline = time.monotonic() + 30
            while True:  # kill while one device is mid-update and others wait
                s = await states()
                if "updating" in s and "pending" in s:
                    break
                assert time.monotonic() < deadline, s
                await asyncio.sleep(0.05)
            server.kill9()
            await asyncio.sleep(1.5)  # the device being updated finishes and reboots meanwhile
            await server.start()
            deadline = time.monotonic() + 60
            while True:
                r = await c.get(f"{base}/deployments/{dep}")
                view = r.json()
                if view["state"] == "completed":
                    break
                assert time.monotonic() < deadline, view
                await asyncio.sleep(0.2)
        assert [t["state"] for t in view["targets"]] == ["succeeded"] * 6, view["targets"]
        assert [c[0] for c in counters] == [1] * 6  # none updated twice, none forgotten
        assert all(d.firmware_version == "3.0.0" for d in devices)
    finally:
        for d in devices:
            if d.alive:
                await d.stop(deregister=False)
        server.stop()
        engine.dispose()


async def test_kill9_mid_deployment_then_restart_finishes_every_target_once_on_sqlite(
        tmp_path: Path, example_model_wasm: bytes) -> None:
    await run_kill9_scenario(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", example_model_wasm)
