"""Fleet mode: many simulated devices in one process, each with its own UDP socket.

Devices start with jitter (so a thousand do not register in the same millisecond), share the
compiled Wasm modules (runtime.py), and keep their state under ``state_dir/<endpoint>/`` so a
stopped fleet resumes with its slots and firmware versions. Fault flags apply fleet-wide
(drop rate, added latency) or to a random share of devices (die mid-download, corrupt download).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from .device import DeviceConfig, SimDevice
from .storage import SlotInfo
from .transfer import Faults

__all__ = ["FleetConfig", "Fleet"]


@dataclass
class FleetConfig:
    server: str
    count: int
    prefix: str = "sim-"
    state_dir: str = "./sim-state"
    lifetime: int = 300
    binding: str = "U"
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    die_mid_download: float = 0.0      # share of devices that die in their first download
    corrupt_download: float = 0.0      # share of devices whose first download is corrupted
    trusted_key: Any = None
    initial_model: bytes | None = None
    initial_model_info: SlotInfo = field(default_factory=lambda: SlotInfo("classifier", "1.0.0"))
    jitter: float = 1.0                # seconds over which device starts are spread
    seed: int | None = None
    device_overrides: dict[str, Any] = field(default_factory=dict)
    # DTLS-PSK per endpoint: {endpoint: (identity, key)}; of the bootstrap server with ``bootstrap``.
    credentials: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    bootstrap: str | None = None       # coap(s)://HOST:PORT: devices bootstrap there first

    def device_config(self, index: int, rng: random.Random) -> DeviceConfig:
        endpoint = f"{self.prefix}{index:04d}"
        faults = Faults(drop_rate=self.drop_rate, latency_ms=self.latency_ms,
                        die_mid_download=rng.random() < self.die_mid_download,
                        corrupt_download=rng.random() < self.corrupt_download)
        identity, key = self.credentials.get(endpoint, (None, None))
        return DeviceConfig(endpoint=endpoint, server=self.server,
                            psk_identity=identity, psk_key=key, bootstrap=self.bootstrap,
                            state_dir=str(FsPath(self.state_dir) / endpoint),
                            lifetime=self.lifetime, binding=self.binding,
                            trusted_key=self.trusted_key, initial_model=self.initial_model,
                            initial_model_info=self.initial_model_info, faults=faults,
                            **self.device_overrides)


class Fleet:
    """``await fleet.start()`` starts every device (jittered); ``await fleet.stop()``."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.devices = [SimDevice(config.device_config(i, rng)) for i in range(config.count)]
        self._rng = rng
        self.started_at = 0.0

    async def start(self) -> None:
        """Open every device's socket now; each registers after its share of the jitter.

        Returns when the last device has begun. Opening all sockets first keeps the long-lived
        part of the devices together in memory, apart from what a Register leaves behind.
        """
        self.started_at = time.monotonic()
        jitter = self.config.jitter
        delays = [self._rng.random() * jitter for _ in self.devices]
        for dev, delay in zip(self.devices, delays):
            await dev.start(delay=delay)
        rest = self.started_at + max(delays, default=0.0) - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)

    def registered(self) -> int:
        return sum(1 for d in self.devices if d.registered.is_set())

    async def wait_registered(self, timeout: float) -> float:
        """Seconds from start until every device registered (TimeoutError past ``timeout``)."""
        await asyncio.wait_for(asyncio.gather(*(d.registered.wait() for d in self.devices)), timeout)
        return time.monotonic() - self.started_at

    async def stop(self, deregister: bool = True) -> None:
        await asyncio.gather(*(d.stop(deregister=deregister) for d in self.devices if d.alive),
                             return_exceptions=True)
