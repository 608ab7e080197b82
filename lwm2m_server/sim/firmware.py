"""Object 5 (Firmware Update) of the simulated device: the state machine of LwM2M 1.1 §E.6.

States: 0 Idle, 1 Downloading, 2 Downloaded, 3 Updating. Update Result: 0 initial, 1 success,
2 not enough flash, 3 out of RAM, 4 connection lost, 5 integrity check failure, 6 unsupported
package type, 7 invalid URI, 8 update failed, 9 unsupported protocol, 10 cancelled.

Transitions (anything else is refused with 4.05):
  Idle --Write Package / Package URI--> Downloading --complete, image checks pass--> Downloaded
  Downloading --failure--> Idle (result 2..7, 9)
  Downloaded --Execute Update--> Updating --applied--> Idle (result 1; re-registers with the new
                                                              firmware version)
  Updating --the image cannot boot--> Downloaded (result 8)
  Downloading | Downloaded --empty Package / Package URI--> Idle (result 0)
  Downloading | Downloaded --Execute Cancel--> Idle (result 10)

The device accepts MCUboot images (header magic 0x96f3b83d and a SHA-256 TLV): anything else
is an unsupported package type, a SHA-256 mismatch an integrity failure, an image flagged
non-bootable fails at Update.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ota.mcuboot import McubootError, is_mcuboot_image, verify_image

from ..model import Path
from .errors import METHOD_NOT_ALLOWED, RequestError
from .updates import PackageObject

__all__ = ["FirmwareObject", "FirmwareImage", "ImageError", "parse_mcuboot_image",
           "IDLE", "DOWNLOADING", "DOWNLOADED", "UPDATING"]

IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
R_INITIAL, R_SUCCESS, R_NO_FLASH, R_NO_RAM, R_CONNECTION_LOST = 0, 1, 2, 3, 4
R_INTEGRITY, R_UNSUPPORTED_TYPE, R_INVALID_URI, R_UPDATE_FAILED, R_UNSUPPORTED_PROTOCOL = 5, 6, 7, 8, 9
R_CANCELLED = 10

IMAGE_F_NON_BOOTABLE = 0x10  # MCUboot header flag: the bootloader will not boot it


class ImageError(ValueError):
    """A firmware image the device refuses; ``result`` is the Object 5 Update Result."""

    def __init__(self, result: int, message: str) -> None:
        self.result = result
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    version: str
    flags: int
    sha256: bytes
    size: int


def parse_mcuboot_image(data: bytes) -> FirmwareImage:
    """Check an MCUboot image the way the bootloader does (ota.mcuboot: header, TLVs, SHA-256)."""
    if not is_mcuboot_image(data):
        raise ImageError(R_UNSUPPORTED_TYPE, "not an MCUboot image")
    try:
        img = verify_image(data)
    except McubootError as e:
        raise ImageError(R_INTEGRITY, str(e)) from None
    v = img.header.version
    return FirmwareImage(f"{v.major}.{v.minor}.{v.revision}", img.header.flags,
                         img.sha256 or b"", len(data))


class FirmwareObject(PackageObject):
    """Object 5, instance 0."""

    object_id = 5
    PACKAGE_RID = 0
    URI_RID = 1
    TRANSFER_RESULTS = {"uri": R_INVALID_URI, "protocol": R_UNSUPPORTED_PROTOCOL,
                        "connection": R_CONNECTION_LOST, "size": R_NO_FLASH}
    OUT_OF_RAM = R_NO_RAM

    def __init__(self, device) -> None:  # type: ignore[no-untyped-def]
        super().__init__(device, {0: {1: "", 3: IDLE, 5: R_INITIAL, 6: "", 7: "",
                                      8: {0: 0, 1: 2}, 9: 2}})
        self._image: tuple[bytes, FirmwareImage] | None = None

    @property
    def state(self) -> int:
        return int(self.data[0][3])  # type: ignore[arg-type]

    def _set(self, state: int, result: int | None = None) -> None:
        self.set_value(0, 3, state)
        if result is not None:
            self.set_value(0, 5, result)

    def can_start(self, iid: int) -> bool:
        return self.state == IDLE

    def max_pull_size(self) -> int:
        return self.device.config.flash_bytes

    def download_started(self, iid: int) -> None:
        self._image = None
        self._set(DOWNLOADING, R_INITIAL)

    def reset(self, iid: int) -> bool:
        if self.state == UPDATING:
            return False
        self._image = None
        self._set(IDLE, R_INITIAL)
        return True

    def download_failed(self, iid: int, result: int, reason: str) -> None:
        self.device.note(f"firmware download failed: {reason}")
        self._set(IDLE, result)

    async def package_received(self, iid: int, data: bytes) -> None:
        if self.state != DOWNLOADING:
            return
        if len(data) > self.device.config.flash_bytes:
            self.download_failed(iid, R_NO_FLASH, f"image of {len(data)} bytes does not fit flash")
            return
        try:
            image = parse_mcuboot_image(data)
        except ImageError as e:
            self.download_failed(iid, e.result, str(e))
            return
        self._image = (data, image)
        self.set_value(0, 6, "firmware")
        self.set_value(0, 7, image.version)
        self._set(DOWNLOADED)

    def execute(self, iid: int, rid: int, args: str) -> None:
        self.instance(iid)
        if rid == 2:
            if self.state != DOWNLOADED or self._image is None:
                raise RequestError(METHOD_NOT_ALLOWED, f"Update needs state Downloaded, not {self.state}")
            self._set(UPDATING)
            self._tasks[iid] = asyncio.get_running_loop().create_task(self._deliver_update())
        elif rid == 10:
            if self.state not in (DOWNLOADING, DOWNLOADED):
                raise RequestError(METHOD_NOT_ALLOWED, f"nothing to cancel in state {self.state}")
            self.cancel_transfer(iid)
            self._image = None
            self._set(IDLE, R_CANCELLED)
        else:
            super().execute(iid, rid, args)

    async def _deliver_update(self) -> None:
        try:
            await self._apply()
        finally:
            self._tasks.pop(0, None)

    async def _apply(self) -> None:
        assert self._image is not None
        data, image = self._image
        await asyncio.sleep(self.device.config.update_seconds)
        if image.flags & IMAGE_F_NON_BOOTABLE:
            self.device.note("firmware update failed: image is flagged non-bootable")
            self._set(DOWNLOADED, R_UPDATE_FAILED)
            return
        self.device.storage.update_state(firmware_version=image.version,
                                         firmware_sha256=image.sha256.hex())
        self.device.firmware_version = image.version
        self._image = None
        self._set(IDLE, R_SUCCESS)
        self.device.changed(Path.of(3, 0, 3))
        await self.device.reboot()
