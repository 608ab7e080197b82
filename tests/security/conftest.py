"""Fixtures of the security tests: a running server (CoAP, coaps, HTTP, rollout) with a real
server secret, simulated devices over DTLS-PSK, and helpers to provision credentials."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server.api.fw import install_rollout
from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner
from lwm2m_server.sim.device import DeviceConfig, SimDevice
from lwm2m_server.store.tokens import create_token
from ota.keys import generate_private_key, public_key_of
from tests.support.waiting import eventually  # noqa: F401  (test modules import it from here)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


class SecureEnv:
    """A running server plus helpers: ``provision``, ``device``, ``api``, ``events``."""

    def __init__(self, runner: Runner, tmp: Path, key: Any, model: bytes) -> None:
        self.runner = runner
        self.tmp = tmp
        self.key = key
        self.model = model
        self.devices: list[SimDevice] = []
        _, self.token = create_token(runner.server.engine, "security-tests", ["admin"])
        self.api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runner.http_port}",
                                     headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
        self.events: list[Any] = []
        runner.server.events.add_sink(self.events.append)

    @property
    def server(self) -> Any:
        return self.runner.server

    @property
    def coap_uri(self) -> str:
        return f"coap://127.0.0.1:{self.server.coap_port}"

    @property
    def coaps_uri(self) -> str:
        return f"coaps://127.0.0.1:{self.server.coaps_port}"

    def provision(self, endpoint: str, identity: str, key: bytes = KEY, purpose: str = "dm") -> None:
        self.server.credentials.put(endpoint, identity, key, purpose)

    async def device(self, endpoint: str, *, wait: bool = True, **kw: Any) -> SimDevice:
        kw.setdefault("server", self.coaps_uri)
        kw.setdefault("initial_model", self.model)
        kw.setdefault("trusted_key", public_key_of(self.key))
        kw.setdefault("state_dir", str(self.tmp / "devices" / endpoint))
        kw.setdefault("lifetime", 60)
        kw.setdefault("register_retry", 0.3)
        dev = SimDevice(DeviceConfig(endpoint=endpoint, **kw))
        self.devices.append(dev)
        await dev.start()
        if wait:
            await asyncio.wait_for(dev.registered.wait(), 20)
        return dev

    def kinds(self, kind: str, endpoint: str | None = None) -> list[Any]:
        return [e for e in self.events if e.kind == kind and endpoint in (None, e.endpoint)]


async def start_secure(tmp: Path, key: Any, model: bytes, **settings: Any) -> SecureEnv:
    base: dict[str, Any] = {
        "coap_host": "127.0.0.1", "coap_port": 0, "http_host": "127.0.0.1", "http_port": 0,
        "db_url": f"sqlite:///{tmp / 'server.db'}", "artifacts_dir": tmp / "artifacts",
        "request_timeout": 3.0, "secret_key": secrets.token_urlsafe(32)}
    base.update(settings)
    runner = Runner(Settings(**base))
    await runner.start()
    runner.server._endpoint.dtls.handshake_timeout = 1.0  # a wrong key shows within a second
    await runner.rollout.stop()
    runner.rollout = await install_rollout(runner.app, runner.server, runner.settings,
                                           runner.http_port, poll=0.5, tick=0.05, backoff_base=0.2)
    return SecureEnv(runner, tmp, key, model)


async def stop_secure(env: SecureEnv) -> None:
    await env.api.aclose()
    for d in env.devices:
        if d.alive:
            await d.stop(deregister=False)
    await env.runner.stop()


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return generate_private_key("ed25519")


@pytest.fixture
async def senv(tmp_path: Path, signing_key: Any, example_model_wasm: bytes) -> AsyncIterator[SecureEnv]:
    e = await start_secure(tmp_path, signing_key, example_model_wasm)
    try:
        yield e
    finally:
        await stop_secure(e)
