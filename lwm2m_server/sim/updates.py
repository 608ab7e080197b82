"""What objects 5 (Firmware Update) and 9 (Software Management) share: receiving a package.

A package arrives by push (a Write of the Package resource, assembled from block1 in RAM) or
by pull (a Write of Package URI, downloaded block by block into flash, where an unfinished
download stays so that the next pull of the same URI resumes it). Both objects keep
their own state machine; this base class runs the transfer and hands the bytes or the failure
to ``package_received`` / ``download_failed``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from .errors import METHOD_NOT_ALLOWED, RequestError, TransferError
from .objects import ResourceData, SimObject
from .transfer import fetch_package

__all__ = ["PackageObject"]

log = logging.getLogger(__name__)

# Device object (/3/0/11) error codes
ERROR_OUT_OF_MEMORY = 5
ERROR_IP_CONNECTIVITY = 7


class PackageObject(SimObject):
    """Base of objects 5 and 9: Package / Package URI writes and the download task."""

    PACKAGE_RID: ClassVar[int]
    URI_RID: ClassVar[int]
    # TransferError.kind -> Update Result code
    TRANSFER_RESULTS: ClassVar[dict[str, int]]
    OUT_OF_RAM: ClassVar[int]

    def __init__(self, device, instances=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(device, instances)
        self._tasks: dict[int, asyncio.Task[None]] = {}

    # subclasses -------------------------------------------------------------
    def can_start(self, iid: int) -> bool:
        raise NotImplementedError

    def download_started(self, iid: int) -> None:
        raise NotImplementedError

    async def package_received(self, iid: int, data: bytes) -> None:
        raise NotImplementedError

    def download_failed(self, iid: int, result: int, reason: str) -> None:
        raise NotImplementedError

    def reset(self, iid: int) -> bool:
        """An empty Package / Package URI write; True when it reset the state machine."""
        return False

    def max_pull_size(self) -> int:
        raise NotImplementedError

    # shared -----------------------------------------------------------------
    def check_write(self, iid: int, rid: int, value: ResourceData) -> None:
        if rid in (self.PACKAGE_RID, self.URI_RID) and value not in (b"", b"\0", ""):
            if not self.can_start(iid):
                raise RequestError(METHOD_NOT_ALLOWED,
                                   f"/{self.object_id}/{iid}: no new package in the current state")

    def write_resource(self, iid: int, rid: int, value: ResourceData) -> None:
        if rid not in (self.PACKAGE_RID, self.URI_RID):
            super().write_resource(iid, rid, value)
            return
        if value in (b"", b"\0", ""):
            self.cancel_transfer(iid)
            self.reset(iid)
            if rid == self.URI_RID:
                self.data[iid][rid] = ""
            return
        if rid == self.URI_RID:
            self.data[iid][rid] = value
            self.download_started(iid)
            self._tasks[iid] = asyncio.get_running_loop().create_task(self._pull(iid, str(value)))
        else:
            self.device.storage.partial(self.object_id).drop()  # a pushed package replaces it
            self.download_started(iid)
            data = bytes(value)  # type: ignore[arg-type]
            if len(data) > self.device.config.ram_bytes:
                self.device.report_error(ERROR_OUT_OF_MEMORY)
                self.download_failed(iid, self.OUT_OF_RAM,
                                     f"package of {len(data)} bytes exceeds the "
                                     f"{self.device.config.ram_bytes}-byte download buffer")
                return
            self._tasks[iid] = asyncio.get_running_loop().create_task(self._deliver(iid, data))

    def cancel_transfer(self, iid: int) -> None:
        """Stop the running transfer and forget its partial download (Cancel, empty URI)."""
        t = self._tasks.pop(iid, None)
        if t is not None and not t.done():
            t.cancel()
        self.device.storage.partial(self.object_id).drop()

    async def wait_idle(self) -> None:
        """Wait for running transfers and checks (tests, shutdown)."""
        while self._tasks:
            tasks = [t for t in self._tasks.values() if not t.done()]
            if not tasks:
                break
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, iid: int, data: bytes) -> None:
        try:
            await self.package_received(iid, data)
        finally:
            if self._tasks.get(iid) is asyncio.current_task():
                del self._tasks[iid]

    async def _pull(self, iid: int, uri: str) -> None:
        retries = self.device.faults.download_retries
        try:
            while True:
                try:
                    data = await fetch_package(uri, self.device.context, self.max_pull_size(),
                                               self.device.faults,
                                               partial=self.device.storage.partial(self.object_id),
                                               raw=self.device.raw_gets)
                except TransferError as e:
                    log.info("%s: download of %s failed: %s", self.device.endpoint, uri, e)
                    if e.kind == "died":  # fault injection: the device loses power mid-download
                        await self.device.die()
                        return
                    if e.kind == "connection":
                        self.device.report_error(ERROR_IP_CONNECTIVITY)
                    self.download_failed(iid, self.TRANSFER_RESULTS[e.kind], e.message)
                    if e.kind != "connection" or retries <= 0:
                        return
                    # The loss is reported (result 4 / 52); then the device tries again on its
                    # own, from the bytes it kept, unless the server moved on meanwhile.
                    retries -= 1
                    await asyncio.sleep(self.device.faults.retry_after)
                    if (self._tasks.get(iid) is not asyncio.current_task()
                            or self.data[iid].get(self.URI_RID) != uri or not self.can_start(iid)):
                        return
                    self.download_started(iid)
                    continue
                await self.package_received(iid, data)
                return
        finally:
            if self._tasks.get(iid) is asyncio.current_task():
                del self._tasks[iid]
