"""Fixtures of the end-to-end OTA tests: the real server process pieces (CoAP + HTTP + rollout
engine on loopback ports, SQLite or PostgreSQL), simulated devices, artifacts built in the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server.api.fw import install_rollout
from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner
from lwm2m_server.sim.device import DeviceConfig, SimDevice
from lwm2m_server.store.artifacts import ingest_artifact
from lwm2m_server.store.tokens import create_token
from ota.keys import generate_private_key, public_key_of
from ota.mcuboot import sign_image
from ota.sota import build_package
from tests.support.waiting import eventually  # noqa: F401  (test modules import it from here)

SLOT = 65536


def firmware_image(version: str, size: int = 20_000) -> bytes:
    """An MCUboot image (hash TLV, as imgtool writes it) of ``size`` body bytes."""
    body = bytes((i * 7 + 3) % 251 for i in range(size))
    return sign_image(body, None, version=version)


class Env:
    """A running server (Runner: CoAP, HTTP, rollout) plus helpers for devices and the API."""

    def __init__(self, runner: Runner, tmp: Path, key: Any, model: bytes) -> None:
        self.runner = runner
        self.tmp = tmp
        self.key = key
        self.model = model
        self.devices: dict[str, SimDevice] = {}
        _, self.token = create_token(runner.server.engine, "ota-tests", ["admin"])
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runner.http_port}",
                                      headers={"Authorization": f"Bearer {self.token}"},
                                      timeout=30)

    @property
    def server(self) -> Any:
        return self.runner.server

    @property
    def coap_uri(self) -> str:
        return f"coap://127.0.0.1:{self.runner.coap_port}"

    async def device(self, endpoint: str, device_class: type[SimDevice] = SimDevice,
                     **kw: Any) -> SimDevice:
        kw.setdefault("initial_model", self.model)
        kw.setdefault("trusted_key", public_key_of(self.key))
        kw.setdefault("state_dir", str(self.tmp / "devices" / endpoint))
        kw.setdefault("lifetime", 60)
        dev = device_class(DeviceConfig(endpoint=endpoint, server=self.coap_uri, **kw))
        self.devices[endpoint] = dev
        await dev.start()
        await eventually(lambda: self.server.registrations.get(endpoint) is not None)
        return dev

    def add_artifact(self, data: bytes, kind: str, version: str, name: str = "art") -> int:
        res = ingest_artifact(self.server.engine, self.runner.rollout.artifacts, data, kind=kind,
                              name=name, version=version,
                              sota_public_key=public_key_of(self.key) if kind == "sota" else None)
        return int(res.artifact.id)

    def sota(self, wasm: bytes, version: str) -> bytes:
        return build_package(wasm, name="classifier", version=version, private_key=self.key,
                             slot_size=SLOT)

    async def deploy(self, **body: Any) -> int:
        r = await self.http.post("/api/v1/deployments", json=body)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def view(self, dep_id: int) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/deployments/{dep_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def wait_done(self, dep_id: int,
                        states: tuple[str, ...] = ("completed", "completed_with_failures"),
                        timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            v = await self.view(dep_id)
            if v["state"] in states:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"deployment not {states} in time: {v}")
            await asyncio.sleep(0.1)


async def start_env(tmp: Path, db_url: str, key: Any, model: bytes, *,
                    server_options: dict[str, Any] | None = None, **rollout: Any) -> Env:
    settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,
                        db_url=db_url, artifacts_dir=tmp / "artifacts", request_timeout=3.0,
                        webhook_allow_private=True)  # the test receivers listen on loopback
    runner = Runner(settings, **(server_options or {}))
    await runner.start()
    if rollout:  # faster polling and backoff than production, same wiring
        await runner.rollout.stop()
        runner.rollout = await install_rollout(runner.app, runner.server, settings,
                                               runner.http_port, **rollout)
    return Env(runner, tmp, key, model)


async def stop_env(env: Env) -> None:
    await env.http.aclose()
    for d in env.devices.values():
        if d.alive:
            await d.stop(deregister=False)
    await env.runner.stop()


FAST = dict(poll=0.5, tick=0.05, backoff_base=0.2)


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return generate_private_key("ed25519")


@pytest.fixture
async def env(tmp_path: Path, signing_key: Any, example_model_wasm: bytes) -> AsyncIterator[Env]:
    e = await start_env(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", signing_key,
                        example_model_wasm, **FAST)
    try:
        yield e
    finally:
        await stop_env(e)
