"""Fixtures of the simulator tests: the peer server, an HTTP file server, device factories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.sim.device import DeviceConfig, SimDevice
from ota.keys import generate_private_key, public_key_of

from .peer import HttpFileServer, Peer


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = await Peer.start()
    yield p
    await p.stop()


@pytest.fixture
async def http_files() -> AsyncIterator[HttpFileServer]:
    s = await HttpFileServer().start()
    yield s
    await s.stop()


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return generate_private_key("ed25519")


@pytest.fixture
async def make_device(peer: Peer, tmp_path: Path, example_model_wasm: bytes,
                      signing_key: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await make_device(endpoint, **config)``: a started, registered device."""
    devices: list[SimDevice] = []

    async def make(endpoint: str = "dev-1", *, register: bool = True, **kw: Any) -> SimDevice:
        kw.setdefault("initial_model", example_model_wasm)
        kw.setdefault("trusted_key", public_key_of(signing_key))
        kw.setdefault("state_dir", str(tmp_path / endpoint))
        dev = SimDevice(DeviceConfig(endpoint=endpoint, server=peer.uri, **kw))
        devices.append(dev)
        await dev.start()
        if register:
            await peer.wait_for(lambda: endpoint in peer.devices)
            await asyncio.wait_for(dev.registered.wait(), 10)
        return dev

    yield make
    for d in devices:
        if d.alive:
            await d.stop(deregister=False)
