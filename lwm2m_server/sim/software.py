"""Object 9 (Software Management) of the simulated device: SOTA model packages.

Update State: 0 INITIAL, 1 DOWNLOAD STARTED, 2 DOWNLOADED, 3 DELIVERED, 4 INSTALLED.
Update Result: 0 initial, 1 downloading, 2 installed, 3 downloaded and verified, 50 not enough
storage, 51 out of memory during download, 52 connection lost, 53 integrity check failure,
54 unsupported package type, 56 invalid URI, 58 installation failure (docs/sota-format.md).

Transitions (anything else is refused with 4.05):
  INITIAL --Write Package / Package URI--> DOWNLOAD STARTED (result 1)
  DOWNLOAD STARTED --failure--> INITIAL (50, 51, 52, 56)
  DOWNLOAD STARTED --complete--> DOWNLOADED --verified (signature, SHA-256, downgrade, Wasm
      exports, self-test)--> DELIVERED (3) | --check fails--> INITIAL (50, 53, 54, 58)
  DELIVERED --Install--> INSTALLED (2), into the inactive model slot | fails: DELIVERED (58)
  DELIVERED --Uninstall--> INITIAL (the delivered package is dropped)
  INSTALLED --Activate--> active model slot switched, Activation State true
  INSTALLED --Deactivate--> the previous model runs again, Activation State false
  INSTALLED --Uninstall "1" (for update)--> INITIAL (0), the model keeps running
  INSTALLED --Uninstall--> INITIAL (0), the previous model runs again if this one was active
A Package / Package URI write in DELIVERED or INSTALLED is taken as Uninstall "1" followed by
the write (the running model is untouched until the new one is activated).
A failed check never touches the running model; Status Reason (/9/0/16) says what failed.
"""

from __future__ import annotations

from ..model import MODEL_OBJECT_ID, Path
from .errors import METHOD_NOT_ALLOWED, ModelError, RequestError, StorageError
from .storage import SlotInfo
from .objects import parse_execute_args
from .runtime import check_model
from .updates import PackageObject

__all__ = ["SoftwareObject", "INITIAL", "DOWNLOAD_STARTED", "DOWNLOADED", "DELIVERED", "INSTALLED",
           "SOTA_RESULTS"]

INITIAL, DOWNLOAD_STARTED, DOWNLOADED, DELIVERED, INSTALLED = 0, 1, 2, 3, 4
R_INITIAL, R_DOWNLOADING, R_INSTALLED, R_DELIVERED = 0, 1, 2, 3
R_NO_STORAGE, R_NO_MEMORY, R_CONNECTION_LOST, R_INTEGRITY = 50, 51, 52, 53
R_UNSUPPORTED_TYPE, R_INVALID_URI, R_INSTALL_FAILED = 54, 56, 58

# ota.sota SotaError.reason -> Update Result (docs/sota-format.md)
SOTA_RESULTS = {"format": R_UNSUPPORTED_TYPE, "oversize": R_NO_STORAGE, "signature": R_INTEGRITY,
                "hash": R_INTEGRITY, "downgrade": R_INSTALL_FAILED, "wasm": R_INSTALL_FAILED,
                "selftest": R_INSTALL_FAILED}


class SoftwareObject(PackageObject):
    """Object 9, instance 0: the device's model package."""

    object_id = 9
    PACKAGE_RID = 2
    URI_RID = 3
    TRANSFER_RESULTS = {"uri": R_INVALID_URI, "protocol": R_INVALID_URI,
                        "connection": R_CONNECTION_LOST, "size": R_NO_STORAGE}
    OUT_OF_RAM = R_NO_MEMORY

    def __init__(self, device) -> None:  # type: ignore[no-untyped-def]
        host = device.model
        info = host.slot_info(host.active_slot) if host.runner is not None else SlotInfo()
        installed = host.runner is not None
        super().__init__(device, {0: {
            0: info.name, 1: info.version, 7: INSTALLED if installed else INITIAL, 8: False,
            9: R_INITIAL, 12: installed, 16: "",
        }})
        self.pkg_slot: int | None = host.active_slot if installed else None
        self._delivered: tuple[bytes, SlotInfo] | None = None

    @property
    def state(self) -> int:
        return int(self.data[0][7])  # type: ignore[arg-type]

    def _set(self, state: int, result: int | None = None, reason: str | None = None) -> None:
        self.set_value(0, 7, state)
        if result is not None:
            self.set_value(0, 9, result)
        if reason is not None:
            self.set_value(0, 16, reason)

    def can_start(self, iid: int) -> bool:
        return self.state in (INITIAL, DELIVERED, INSTALLED)

    def max_pull_size(self) -> int:
        return self.device.config.package_limit()

    def download_started(self, iid: int) -> None:
        self._delivered = None
        self.pkg_slot = None
        self.set_value(0, 12, False)
        self._set(DOWNLOAD_STARTED, R_DOWNLOADING, "")

    def download_failed(self, iid: int, result: int, reason: str) -> None:
        self.device.note(f"model package refused: {reason}")
        self._set(INITIAL, result, reason)
        self._show_running()

    def _show_running(self) -> None:
        """PkgName/PkgVersion fall back to the model that keeps running."""
        host = self.device.model
        info = host.slot_info(host.active_slot) if host.runner is not None else SlotInfo()
        self.set_value(0, 0, info.name)
        self.set_value(0, 1, info.version)

    async def package_received(self, iid: int, data: bytes) -> None:
        if self.state != DOWNLOAD_STARTED:
            return
        self._set(DOWNLOADED)
        from ota.errors import OtaError
        from ota.sota import SotaSignatureError, verify_package

        host = self.device.model
        installed = host.slot_info(host.active_slot).version if host.runner is not None else None
        key = self.device.config.trusted_key
        try:
            if key is None:
                raise SotaSignatureError("the device has no trusted public key")
            pkg = verify_package(data, key, slot_size=self.device.config.slot_bytes,
                                 installed_version=installed or None)
            try:
                check_model(pkg.payload)
            except ModelError as e:
                self.download_failed(iid, R_INSTALL_FAILED, f"wasm: {e}")
                return
            st = pkg.manifest.selftest
            if st is not None:
                await host.selftest(pkg.payload, st.input, st.expected)
        except ModelError as e:
            self.download_failed(iid, R_INSTALL_FAILED, f"selftest: {e}")
            return
        except OtaError as e:
            reason = getattr(e, "reason", "format")
            self.download_failed(iid, SOTA_RESULTS.get(reason, R_UNSUPPORTED_TYPE), f"{reason}: {e}")
            return
        m = pkg.manifest
        self._delivered = (pkg.payload, SlotInfo(m.name, m.version, m.sha256.hex()))
        self.set_value(0, 0, m.name)
        self.set_value(0, 1, m.version)
        self._set(DELIVERED, R_DELIVERED, "")

    def execute(self, iid: int, rid: int, args: str) -> None:
        self.instance(iid)
        actions = {4: self._install, 6: self._uninstall, 10: self._activate, 11: self._deactivate}
        if rid not in actions:
            super().execute(iid, rid, args)
            return
        self.check_execute(rid)
        for_update = False
        if rid == 6:
            for_update = args.strip() == "1" or parse_execute_args(args).get(0) == "1"
        self.device.spawn(actions[rid](for_update))

    def check_execute(self, rid: int) -> None:
        """Refuse an Execute the state machine does not allow (before answering 2.04)."""
        allowed = {4: (DELIVERED,), 6: (DELIVERED, INSTALLED), 10: (INSTALLED,), 11: (INSTALLED,)}
        if rid in allowed and self.state not in allowed[rid]:
            raise RequestError(METHOD_NOT_ALLOWED,
                               f"/9/0/{rid} is not allowed in Update State {self.state}")
        if rid == 10 and self.pkg_slot == self.device.model.active_slot and self.data[0].get(12):
            raise RequestError(METHOD_NOT_ALLOWED, "the package is already active")
        if rid == 11 and not self.data[0].get(12):
            raise RequestError(METHOD_NOT_ALLOWED, "the package is not active")

    async def _install(self, for_update: bool) -> None:
        assert self._delivered is not None
        wasm, info = self._delivered
        host = self.device.model
        slot = host.inactive_slot if host.runner is not None else host.active_slot
        try:
            await host.install(slot, wasm, info)
        except StorageError as e:
            self._set(DELIVERED, R_INSTALL_FAILED, f"install: {e}")
            return
        self._delivered = None
        self.pkg_slot = slot
        self.set_value(0, 12, False)
        self._set(INSTALLED, R_INSTALLED, "")

    async def _run_slot(self, slot: int | None, active: bool, what: str) -> None:
        """Make ``slot`` the running model (None: no model) and set Activation State."""
        host = self.device.model
        try:
            if slot is None:
                host.runner = None
            else:
                await host.activate(slot)
        except (StorageError, ModelError) as e:
            self.set_value(0, 16, f"{what}: {e}")
            return
        self.set_value(0, 12, active)
        self.device.changed(Path.of(MODEL_OBJECT_ID, 0))

    async def _activate(self, for_update: bool) -> None:
        await self._run_slot(self.pkg_slot, True, "activate")

    async def _deactivate(self, for_update: bool) -> None:
        host = self.device.model
        other = 1 - host.active_slot
        await self._run_slot(other if host.storage.read_slot(other) is not None else None,
                             False, "deactivate")

    async def _uninstall(self, for_update: bool) -> None:
        if self.state == DELIVERED:
            self._delivered = None
            self._set(INITIAL)
            self._show_running()
            return
        if not for_update and self.data[0].get(12):
            await self._deactivate(False)
        self.pkg_slot = None
        self._set(INITIAL, R_INITIAL, "")
        self._show_running()
