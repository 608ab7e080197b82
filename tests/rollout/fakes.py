"""An in-process fake device port for unit tests of the rollout engine's pure logic.

Each FakeDevice follows the Object 5 and Object 9 state machines closely enough to drive the
engine (download, failure results, Execute Update, Install, Activate). End-to-end tests use the
real server and the simulator instead.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass, field

from lwm2m_server.model import Path
from lwm2m_server.protocol.errors import DeviceError, DeviceOffline
from lwm2m_server.rollout.port import EndpointWaiter


@dataclass
class FakeDevice:
    endpoint: str
    fw_version: str = "1.0.0"
    fw_state: int = 0
    fw_result: int = 0
    protocols: tuple[int, ...] = (0,)
    delivery: int = 2
    sw_state: int = 0
    sw_result: int = 0
    active_slot: int = 0
    slot_versions: list[str] = field(default_factory=lambda: ["1.0.0", ""])
    slot_shas: list[str] = field(default_factory=lambda: ["00" * 32, ""])
    runtime: str = "wasmtime 29"  # /33100/0/10; the Zephyr firmware says "WAMR ..."
    offline: bool = False
    download_result: int | None = None  # Object 5/9 failure result for downloads
    install_result: int | None = None  # Object 9 failure result for Install
    delay: float = 0.01
    update_delay: float | None = None  # Execute Update takes this long (default: delay)
    fw_pkg_version: str = ""
    fills_pkg_version: bool = True  # False: /5/0/7 PkgVersion stays empty, as on many devices
    sdk_version: str | None = None  # reported in /3/0/3 instead of the image's version
    # Finishes a running update right after answering a version read: the read shows the old
    # version, the next read of /5/0 shows Idle with Update Result 1.
    flip_on_version_read: bool = False
    read_gate: asyncio.Event | None = None  # reads wait for it (a device slow to answer)
    stall: bool = False  # downloads never finish
    fw_updates: int = 0
    cancelled: int = 0
    sw_installs: int = 0
    writes: list[tuple[str, object]] = field(default_factory=list)
    _pending: object = None
    _updating_to: str = ""


class FakeFleet:
    """``DevicePort`` over FakeDevices; ``packages`` maps sha256 -> (version, payload sha256)."""

    def __init__(self, packages: dict[str, tuple[str, str | None]]) -> None:
        self.devices: dict[str, FakeDevice] = {}
        self.packages = packages
        self.waiter = EndpointWaiter()
        self.reads = 0
        self.reads_of: Counter[Path] = Counter()
        self.waiting_reads = 0
        self.observing: set[tuple[str, Path]] = set()  # the rollout's live observations
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, endpoint: str, **kw: object) -> FakeDevice:
        d = FakeDevice(endpoint, **kw)  # type: ignore[arg-type]
        self.devices[endpoint] = d
        return d

    def _dev(self, endpoint: str) -> FakeDevice:
        d = self.devices[endpoint]
        if d.offline:
            raise DeviceOffline(f"{endpoint} is offline")
        return d

    def _later(self, d: FakeDevice, fn, delay: float | None = None) -> None:  # type: ignore[no-untyped-def]
        async def go() -> None:
            await asyncio.sleep(d.delay if delay is None else delay)
            fn()
            self.waiter.poke(d.endpoint)
        t = asyncio.get_running_loop().create_task(go())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _finish_update(self, d: FakeDevice) -> None:
        if d.fw_state != 3:
            return  # finished already (a flip on a version read)
        d.fw_updates += 1
        d.fw_version, d.fw_state, d.fw_result = d._updating_to, 0, 1
        self.waiter.poke(d.endpoint)

    # --- DevicePort ------------------------------------------------------
    async def read(self, endpoint: str, path: Path) -> dict[Path, object]:
        d = self._dev(endpoint)
        self.reads += 1
        self.reads_of[path] += 1
        if d.read_gate is not None:
            self.waiting_reads += 1
            await d.read_gate.wait()
        if path == Path.of(3, 0, 3):
            answer = {path: d.sdk_version or d.fw_version}
            if d.flip_on_version_read and d.fw_state == 3:
                self._finish_update(d)
            return answer
        if path == Path.of(5, 0):
            out: dict[Path, object] = {Path.of(5, 0, 3): d.fw_state, Path.of(5, 0, 5): d.fw_result,
                                       Path.of(5, 0, 9): d.delivery,
                                       Path.of(5, 0, 7): d.fw_pkg_version}
            for i, p in enumerate(d.protocols):
                out[Path.of(5, 0, 8, i)] = p
            return out
        if path == Path.of(9, 0):
            return {Path.of(9, 0, 7): d.sw_state, Path.of(9, 0, 9): d.sw_result}
        if path == Path.of(33100, 0):
            out = {Path.of(33100, 0, 0): d.active_slot, Path.of(33100, 0, 10): d.runtime}
            for i in (0, 1):
                out[Path.of(33100, 0, 2, i)] = d.slot_versions[i]
                out[Path.of(33100, 0, 3, i)] = d.slot_shas[i]
            return out
        raise DeviceError(f"no {path}", "4.04")

    def _start_download(self, d: FakeDevice, sha: str, obj: int) -> None:
        d._pending = sha
        if obj == 5:
            d.fw_state, d.fw_result = 1, 0
        else:
            d.sw_state, d.sw_result = 1, 1
        if d.stall:
            return

        def done() -> None:
            if d.download_result is not None:
                if obj == 5:
                    d.fw_state, d.fw_result = 0, d.download_result
                else:
                    d.sw_state, d.sw_result = 0, d.download_result
            elif obj == 5:
                d.fw_state = 2
                if d.fills_pkg_version:
                    d.fw_pkg_version = self.packages[sha][0]
            else:
                d.sw_state, d.sw_result = 3, 3
        self._later(d, done)

    async def write(self, endpoint: str, path: Path, value: object) -> None:
        d = self._dev(endpoint)
        d.writes.append((str(path), value if isinstance(value, str) else len(value)))  # type: ignore[arg-type]
        if path == Path.of(5, 0, 1) and value == "":
            d.fw_state, d.fw_result, d.fw_pkg_version, d._pending = 0, 0, "", None
            return
        if path == Path.of(5, 0, 1) and d.fw_state != 0:
            raise DeviceError("no new package in the current state", "4.05")
        if path in (Path.of(5, 0, 1), Path.of(9, 0, 3)):
            sha = str(value).rsplit("/", 1)[-1]
            self._start_download(d, sha, path.object_id)  # type: ignore[arg-type]
        elif path in (Path.of(5, 0, 0), Path.of(9, 0, 2)):
            self._start_download(d, hashlib.sha256(value).hexdigest(), path.object_id)  # type: ignore[arg-type]
        else:
            raise DeviceError(f"cannot write {path}", "4.05")

    async def execute(self, endpoint: str, path: Path, args: str | None = None) -> None:
        d = self._dev(endpoint)
        version, payload_sha = self.packages.get(d._pending, ("", None))  # type: ignore[arg-type]
        if path == Path.of(5, 0, 2):
            if d.fw_state != 2:
                raise DeviceError("not downloaded", "4.05")
            d.fw_state = 3
            d._updating_to = version
            self._later(d, lambda: self._finish_update(d), d.update_delay)
        elif path == Path.of(9, 0, 4):
            if d.sw_state != 3:
                raise DeviceError("not delivered", "4.05")
            d.sw_installs += 1
            if d.install_result is not None:
                d.sw_state, d.sw_result = 0, d.install_result
            else:
                d.sw_state, d.sw_result = 4, 2
        elif path == Path.of(5, 0, 10):
            if d.fw_state not in (1, 2):
                raise DeviceError("nothing to cancel", "4.05")
            d.fw_state, d.fw_result, d.fw_pkg_version, d._pending = 0, 10, "", None
            d.cancelled += 1
        elif path == Path.of(9, 0, 10):
            if d.sw_state != 4:
                raise DeviceError("not installed", "4.05")
            other = 1 - d.active_slot
            d.slot_versions[other] = version
            d.slot_shas[other] = payload_sha or ""
            d.active_slot = other
        else:
            raise DeviceError(f"cannot execute {path}", "4.05")
        self.waiter.poke(endpoint)

    async def observe(self, endpoint: str, path: Path) -> bool:
        self._dev(endpoint)
        self.observing.add((endpoint, path))
        return True

    async def cancel_observe(self, endpoint: str, path: Path) -> None:
        self._dev(endpoint)
        self.observing.discard((endpoint, path))

    def mark(self, endpoint: str) -> int:
        return self.waiter.mark(endpoint)

    async def wait(self, endpoint: str, timeout: float, since: int | None = None) -> bool:
        return await self.waiter.wait(endpoint, timeout, since)

    def forget(self, endpoint: str) -> None:
        self.waiter.forget(endpoint)

    def address(self, endpoint: str) -> tuple[str, int] | None:
        return ("127.0.0.1", 1000 + list(self.devices).index(endpoint))
