"""Fixtures of the simulator tests: the peer server, an HTTP file server, device factories."""

from __future__ import annotations

import asyncio
import subprocess
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


def _imgtool(tmp: Path, name: str, version: str, *extra: str, size: int = 3000) -> bytes:
    raw = tmp / f"{name}.bin"
    raw.write_bytes(bytes(range(256)) * (size // 256))
    out = tmp / f"{name}.signed.bin"
    subprocess.run(["imgtool", "sign", "--header-size", "0x200", "--align", "4", "--slot-size",
                    "0x20000", "--version", version, "--pad-header", *extra, str(raw), str(out)],
                   check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """MCUboot images made by imgtool: good (2.0.0), non-bootable (2.1.0), corrupt."""
    tmp = tmp_path_factory.mktemp("fw")
    good = _imgtool(tmp, "good", "2.0.0")
    return {"good": good, "non_bootable": _imgtool(tmp, "nb", "2.1.0", "--non-bootable"),
            "corrupt": good[:700] + bytes([good[700] ^ 1]) + good[701:]}


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
