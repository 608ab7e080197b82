"""A simulated device that finishes a firmware update right after answering a version read.

The race of independently written clients: the server reads /3/0/3 (old version), the device
completes its update at once, the server's next read of /5/0 shows Idle with Update Result 1.
PkgVersion (/5/0/7) stays empty, as on many devices, so only a consistent reading of state and
version tells the truth.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lwm2m_server.model import Path, Value
from lwm2m_server.sim.device import SimDevice
from lwm2m_server.sim.firmware import FirmwareObject

UPDATING = 3
VERSION = Path.of(3, 0, 3)


class _FlipFirmware(FirmwareObject):
    def __init__(self, device: Any) -> None:
        super().__init__(device)
        self.version_read = asyncio.Event()

    async def package_received(self, iid: int, data: bytes) -> None:
        await super().package_received(iid, data)
        self.set_value(0, 7, "")  # no PkgVersion

    async def _apply(self) -> None:
        self.version_read.clear()
        await self.version_read.wait()  # the update ends right after the next version read
        await super()._apply()


class FlipDevice(SimDevice):
    """SimDevice whose firmware update completes right after it answers a read of /3/0/3."""

    version_reads_while_updating = 0

    def _build_objects(self) -> None:
        super()._build_objects()
        self.objects[5] = _FlipFirmware(self)

    def read_values(self, path: Path) -> dict[Path, Value]:
        values = super().read_values(path)
        fw = self.objects[5]
        if VERSION in values and isinstance(fw, _FlipFirmware) and fw.state == UPDATING:
            self.version_reads_while_updating += 1
            fw.version_read.set()
        return values
