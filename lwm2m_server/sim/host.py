"""What a simulated device is (:class:`DeviceConfig`) and what it hands its parts
(:class:`DeviceHost`): the objects and the CoAP site talk to the device through this interface
only, so the simulator's imports run one way (device -> site, objects -> host).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Node, ObjectRegistry, Path, Value
from .model_host import ModelHost
from .observe import Attributes, Observation
from .storage import DeviceStorage, SlotInfo
from .transfer import Faults

__all__ = ["DeviceConfig", "DeviceHost"]


@dataclass
class DeviceConfig:
    """What one simulated device is: identity, server, limits, behaviour, faults."""

    endpoint: str
    server: str                        # coap://HOST:PORT or coaps://HOST:PORT
    state_dir: str
    # DTLS-PSK: the credentials of the server (of the bootstrap server when ``bootstrap`` is set).
    psk_identity: str | None = None
    psk_key: bytes | None = None
    bootstrap: str | None = None       # coap(s)://HOST:PORT: bootstrap first, then register
    bootstrap_wait: float = 30.0       # seconds to wait for Bootstrap-Finish before asking again
    lifetime: int = 300
    binding: str = "U"                 # U or UQ
    lwm2m_version: str = "1.1"
    preferred_format: int = 112        # ct of the root link: SenML CBOR
    update_interval: float | None = None   # default: lifetime * 0.75
    awake_seconds: float = 2.0         # UQ: how long the device listens after each Update
    slot_bytes: int = 65536            # one model partition
    flash_bytes: int = 1 << 20         # room for a firmware image
    ram_bytes: int = 256 * 1024        # a pushed package is assembled in RAM
    update_seconds: float = 0.05       # time a firmware Update takes
    firmware_version: str = "1.0.0"
    trusted_key: Any = None            # public key (ota.keys) that signs SOTA packages
    initial_model: bytes | None = None
    initial_model_info: SlotInfo = field(default_factory=lambda: SlotInfo("classifier", "1.0.0"))
    faults: Faults = field(default_factory=Faults)
    register_retry: float = 1.0
    new_port_on_reboot: bool = False   # come back from a new source port after a reboot

    def package_limit(self) -> int:
        """Largest SOTA package a slot can take (docs/sota-format.md: 12 + 16384 + slot)."""
        return 12 + 16384 + self.slot_bytes


class DeviceHost(Protocol):
    """The device as its objects (``objects.py``, ``firmware.py``, ``software.py``, ...) and its
    CoAP site (``coap_site.py``) see it."""

    config: DeviceConfig
    registry: ObjectRegistry
    endpoint: str
    serial: str
    firmware_version: str
    faults: Faults
    storage: DeviceStorage
    model: ModelHost
    context: Any                                  # the aiocoap context it talks from, once started
    observations: dict[Path, list[Observation]]   # the server's observations on this device
    bootstrap_site: Any                           # the bootstrap interface's site while bootstrapping

    @property
    def objects(self) -> Mapping[int, Any]:
        """Object id -> its SimObject."""
        ...

    # --- what its objects tell it ---------------------------------------------------
    def changed(self, path: Path) -> None: ...
    def note(self, message: str) -> None: ...
    def report_error(self, code: int) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def request_update(self) -> None: ...
    def request_reboot(self) -> None: ...
    def request_disable(self, seconds: int) -> None: ...
    def memory_free_kib(self) -> int: ...
    def local_address(self) -> str: ...
    def set_inference_period(self, seconds: float) -> None: ...
    async def reboot(self, delay: float = 0.0) -> None: ...
    async def die(self) -> None: ...

    # --- what its CoAP site asks of it ---------------------------------------------------
    def read(self, path: Path) -> Node: ...
    def read_values(self, path: Path) -> dict[Path, Value]: ...
    def write(self, path: Path, node: Node, replace: bool) -> None: ...
    def execute(self, path: Path, args: str) -> None: ...
    def create(self, path: Path, node: Node) -> list[int]: ...
    def delete(self, path: Path) -> None: ...
    def effective_attributes(self, path: Path) -> Attributes: ...
    def write_attributes(self, path: Path, query: list[str]) -> None: ...
    def discover(self, path: Path) -> str: ...
