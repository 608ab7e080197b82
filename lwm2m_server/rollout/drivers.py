"""Drivers that take one device through one update: Object 5 (firmware) and Object 9 (SOTA).

Every pass starts by reading the device's state, and every action is decided from it, so a
driver resumed after a crash or a retry never applies an update twice: a device that already
runs the new version is a success, a device that already downloaded the package is told to
apply it, a device that is updating is waited for. The engine persists each step (``advance``)
before the device is asked to do it.

A device may finish between two reads, so a driver reads the update state and result first and
the version second (the version read then sees at least what the state said), and treats a
view that contradicts itself (success reported, old version running) as "not yet": it reads
again until the target's timeout, whose reason then names the contradiction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..metrics import ROLLOUT_BYTES
from ..model import Path, Value
from ..protocol.errors import DeviceError, DeviceNotFound, DeviceOffline, DeviceTimeout
from .port import DevicePort
from .state import TargetState, is_transient_result, result_reason

__all__ = [
    "ArtifactInfo", "TargetFailed", "TargetRun", "choose_method", "run_firmware", "run_sota",
    "driver_for", "versions_equal", "sota_payload_sha256", "sota_package_alg",
    "sota_alg_refusal", "cancel_transfer", "is_downgrade",
]

log = logging.getLogger(__name__)

# Object 5 (Firmware Update)
FW_PACKAGE, FW_URI, FW_UPDATE = Path.of(5, 0, 0), Path.of(5, 0, 1), Path.of(5, 0, 2)
FW_STATE, FW_RESULT = Path.of(5, 0, 3), Path.of(5, 0, 5)
FW_PROTOCOLS, FW_DELIVERY = Path.of(5, 0, 8), Path.of(5, 0, 9)
FW_PKG_VERSION, FW_CANCEL = Path.of(5, 0, 7), Path.of(5, 0, 10)
FW_OBJECT = Path.of(5, 0)
DEVICE_FW_VERSION = Path.of(3, 0, 3)
# Object 9 (Software Management), instance 0
SW_OBJECT = Path.of(9, 0)
SW_PACKAGE, SW_URI, SW_INSTALL = Path.of(9, 0, 2), Path.of(9, 0, 3), Path.of(9, 0, 4)
SW_STATE, SW_RESULT, SW_ACTIVATE = Path.of(9, 0, 7), Path.of(9, 0, 9), Path.of(9, 0, 10)
SW_STATUS_REASON = Path.of(9, 0, 16)
SW_PKG_VERSION, SW_ACTIVATION = Path.of(9, 0, 1), Path.of(9, 0, 12)
# The TinyML model object
MODEL_OBJECT = Path.of(33100, 0)
MODEL_ACTIVE_SLOT, MODEL_SLOT_VERSION, MODEL_SLOT_SHA = 0, 2, 3
MODEL_RUNTIME = Path.of(33100, 0, 10)
# This project's Zephyr firmware reports its WAMR runtime here, and verifies ES256 only.
FIRMWARE_RUNTIME_PREFIX = "WAMR"

FW_IDLE, FW_DOWNLOADING, FW_DOWNLOADED, FW_UPDATING = 0, 1, 2, 3
SW_INITIAL, SW_DOWNLOAD_STARTED, SW_DOWNLOADED, SW_DELIVERED, SW_INSTALLED = 0, 1, 2, 3, 4

# Waiting for a device: reads after this many quiet polls even while observing it, and pauses
# this long after a notification for the rest of its burst (see _await_move).
QUIET_POLLS = 5
SETTLE = 0.05

# Steps written to the target row before the device is asked to do them.
STEP_SEND = "send"          # package URI / package write about to be sent
STEP_SENT = "sent"          # the device accepted it
STEP_APPLY = "apply"        # Execute Update (5) / Install (9) about to be sent
STEP_ACTIVATE = "activate"  # Activate (9) about to be sent


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What a driver needs to know about the artifact it delivers."""

    id: int
    kind: str  # firmware | sota
    sha256: str
    size: int
    version: str
    name: str = ""
    # SOTA: SHA-256 of the Wasm payload, which the model object reports once it is active.
    payload_sha256: str | None = None
    # SOTA: the COSE alg the package is signed with (-7 ES256, -8 EdDSA; None: unknown).
    sota_alg: int | None = None


class TargetFailed(Exception):
    """One attempt at a target failed: ``reason`` for people, ``result`` the device's Update
    Result when it gave one, ``transient`` whether a retry may help."""

    def __init__(self, reason: str, result: int | None = None, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result
        self.transient = transient


class TargetRun(Protocol):
    """The engine's handle on one target attempt."""

    endpoint: str
    artifact: ArtifactInfo
    port: DevicePort
    poll: float
    delivery: str  # auto | pull | push
    verify: str  # version | result (firmware): what proves an update succeeded
    allow_downgrade: bool
    note: str | None  # why the target is not done yet; the timeout reason quotes it
    observed: list[Path]  # observations this attempt owns; the engine cancels them at its end

    @property
    def state(self) -> TargetState: ...

    @property
    def step(self) -> str | None: ...

    @property
    def method(self) -> str | None: ...

    async def advance(self, state: TargetState, **fields: Any) -> None:
        """Persist the new state (and step, method, progress, result, applied ...) and publish it."""
        ...

    def package_url(self, method: str) -> str | None: ...

    async def package_bytes(self) -> bytes: ...

    def transfer_progress(self) -> float | None:
        """Fraction of the package the device fetched from our /fw so far, when known."""
        ...


def versions_equal(a: Any, b: Any) -> bool:
    """Semantic equality for MAJOR.MINOR.PATCH versions (``1.01.0`` never matches by accident),
    plain string equality for anything else."""
    if a is None or b is None:
        return False
    from ota.version import VersionError, compare

    try:
        return compare(str(a).strip(), str(b).strip()) == 0
    except VersionError:
        return str(a).strip() == str(b).strip()


def is_downgrade(running: Any, new: str) -> bool:
    """True when ``new`` is an older MAJOR.MINOR.PATCH version than ``running``. Versions that
    are not semantic versions cannot be ordered: never a downgrade then."""
    if running is None or not str(running).strip():
        return False
    from ota.version import VersionError, compare

    try:
        return compare(str(new).strip(), str(running).strip()) < 0
    except VersionError:
        return False


def _refuse_downgrade(run: TargetRun, running: Any, what: str) -> None:
    if not run.allow_downgrade and is_downgrade(running, run.artifact.version):
        raise TargetFailed(f"downgrade refused: the device runs {what} {running}, the "
                           f"deployment brings {run.artifact.version} (create the deployment "
                           f"with allow_downgrade to force it)")


def sota_payload_sha256(package: bytes) -> str:
    """SHA-256 (hex) of the payload of a SOTA package (docs/sota-format.md layout)."""
    if len(package) < 12 or package[:4] != b"SOTA":
        raise ValueError("not a SOTA package")
    m = int.from_bytes(package[8:12], "little")
    return hashlib.sha256(package[12 + m:]).hexdigest()


def sota_package_alg(package: bytes) -> int | None:
    """The COSE alg a SOTA package is signed with, or None when it cannot be read."""
    from ota.sota import SotaError, package_alg

    try:
        return package_alg(package)
    except SotaError:
        return None


def sota_alg_refusal(alg: int | None, runtime: object) -> str | None:
    """Why a device with this model runtime (/33100/0/10) cannot take a package signed with
    ``alg``, or None: the Zephyr firmware (runtime "WAMR ...") verifies ES256 only."""
    from ota.sota import ALG_NAMES, DEVICE_ALGS

    if alg is None or alg in DEVICE_ALGS or not str(runtime or "").startswith(
            FIRMWARE_RUNTIME_PREFIX):
        return None
    return (f"the device verifies ES256 (P-256) packages only; this package is signed with "
            f"{ALG_NAMES.get(alg, f'alg {alg}')}: sign it with a P-256 key")


def choose_method(protocols: set[int] | None, delivery: int | None, preference: str,
                  *, coap_url: bool = True, http_url: bool = True) -> str:
    """``pull-coap``, ``pull-http`` or ``push`` for a device's Protocol Support (/5/0/8: 0 CoAP,
    2 HTTP 1.1, ...) and Delivery Method (/5/0/9: 0 pull, 1 push, 2 both).

    ``preference`` (auto | pull | push) is the deployment's wish; the device's abilities win.
    Raises TargetFailed when nothing fits.
    """
    can_pull = delivery in (None, 0, 2)
    can_push = delivery in (None, 1, 2)
    protos = protocols if protocols else {0}
    pulls = []
    if 0 in protos and coap_url:
        pulls.append("pull-coap")
    if 2 in protos and http_url:
        pulls.append("pull-http")
    if preference == "push" and can_push:
        return "push"
    if can_pull and pulls:
        return pulls[0]
    if can_push and preference != "pull":
        return "push"
    raise TargetFailed(
        f"no delivery method fits: device supports protocols {sorted(protos)} with delivery "
        f"method {delivery}, deployment wants {preference}", transient=False)


def _int(values: dict[Path, Value], path: Path) -> int | None:
    v = values.get(path)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    return None


def _multi(values: dict[Path, Value], path: Path) -> dict[int, Value]:
    return {p.resource_instance_id: v for p, v in values.items()  # type: ignore[misc]
            if p.is_resource_instance and p.parent() == path}


async def _read_quiet(run: TargetRun, path: Path) -> dict[Path, Value] | None:
    """Read that tolerates a device that is away (rebooting into a new image): None then."""
    try:
        return await run.port.read(run.endpoint, path)
    except (DeviceOffline, DeviceTimeout, DeviceNotFound):
        return None
    except DeviceError as e:
        if e.coap_code is None:  # unreachable (ICMP), not an answer
            return None
        raise


async def _observe_quiet(run: TargetRun, *paths: Path) -> None:
    for p in paths:
        try:
            if await run.port.observe(run.endpoint, p) and p not in run.observed:
                run.observed.append(p)
        except (DeviceError, DeviceTimeout) as e:  # we poll as well; observing is a speed-up
            log.debug("%s: observe %s failed: %s", run.endpoint, p, e)


async def _send_package(run: TargetRun, uri_path: Path, package_path: Path, method: str) -> None:
    await run.advance(TargetState.TRANSFERRING, step=STEP_SEND, method=method, progress=0.0)
    if method == "push":
        data = await run.package_bytes()
        await run.port.write(run.endpoint, package_path, data)
        ROLLOUT_BYTES.inc("push", amount=len(data))
    else:
        url = run.package_url(method)
        if url is None:
            raise TargetFailed(f"no URL for delivery method {method}")
        await run.port.write(run.endpoint, uri_path, url)
    await run.advance(TargetState.TRANSFERRING, step=STEP_SENT)


async def _await_move(run: TargetRun, since: int) -> None:
    """Wait until the device moved after the mark ``since`` (taken before the last read),
    reporting download progress meanwhile.

    While the rollout observes the device its notifications say when it moved, so a poll that
    ends quietly reads nothing (a read per device per poll was most of a rollout's requests);
    after ``QUIET_POLLS`` quiet polls in a row it reads anyway, in case a notification was
    lost. Without observations every poll ends in a read. A notification is followed by a short
    pause for the rest of its burst (a state and a result that change together: one read).
    """
    quiet = 0
    while True:
        if await run.port.wait(run.endpoint, run.poll, since):
            await asyncio.sleep(min(SETTLE, run.poll))
            return
        p = run.transfer_progress()
        if p is not None and run.state == TargetState.TRANSFERRING:
            await run.advance(TargetState.TRANSFERRING, progress=round(min(p, 1.0) * 0.6, 3))
        quiet += 1
        if not run.observed or quiet >= QUIET_POLLS:
            return


async def _firmware_view(run: TargetRun) -> tuple[dict[Path, Value], Any] | None:
    """/5/0 and then /3/0/3, or None when the device is away. In this order a device that
    finishes between the two reads shows its new version with its old state (seen again on the
    next pass), never a final state with its old version."""
    fw = await _read_quiet(run, FW_OBJECT)
    if fw is None:
        return None
    dev = await _read_quiet(run, DEVICE_FW_VERSION)
    if dev is None:
        return None
    return fw, dev.get(DEVICE_FW_VERSION)


def _firmware_proven(run: TargetRun, fw: dict[Path, Value], version: Any) -> bool:
    """Whether the device shows the deployment's firmware, by the deployment's ``verify`` rule.

    version: /3/0/3 is the new version, or the device is idle with Update Result 1 and the new
    version in /5/0/7 PkgVersion (devices that fill it). result: Execute Update was sent and the
    device is idle with Update Result 1; before that (a first look), PkgVersion decides too.
    """
    want = run.artifact.version
    state, result = _int(fw, FW_STATE), _int(fw, FW_RESULT)
    pkg_done = state == FW_IDLE and result == 1 and versions_equal(fw.get(FW_PKG_VERSION), want)
    if run.verify == "result":
        return pkg_done or (run.step == STEP_APPLY and state == FW_IDLE and result == 1)
    return versions_equal(version, want) or pkg_done


async def run_firmware(run: TargetRun) -> str:
    """Take the device through an Object 5 update; returns "updated" or "already".

    Success by the deployment's ``verify`` rule (``_firmware_proven``). A package already on
    the device counts as ours when its PkgVersion (/5/0/7) is the new version. A first look at
    a device running a newer version than the deployment's fails the target (a downgrade),
    unless the deployment allows downgrades.
    """
    kind, want = "firmware", run.artifact.version
    observed = executed = False
    idle_after_send = 0
    while True:
        mark = run.port.mark(run.endpoint)
        view = await _firmware_view(run)
        if view is None:
            if run.state != TargetState.UPDATING:
                raise DeviceOffline(f"{run.endpoint} does not answer")
            await run.port.wait(run.endpoint, run.poll, mark)  # rebooting into the new image
            continue
        fw, version = view
        state, result = _int(fw, FW_STATE), _int(fw, FW_RESULT)
        first_look = run.state == TargetState.PENDING and run.step is None
        if _firmware_proven(run, fw, version):
            if first_look:
                await run.advance(TargetState.SUCCEEDED, result=result, progress=1.0,
                                  reason=f"already running version {want}")
                return "already"
            if result not in (None, 0, 1):
                raise TargetFailed(f"device runs {want} but reports {result_reason(kind, result)}",
                                   result)
            await run.advance(TargetState.SUCCEEDED, result=result if result is not None else 1,
                              progress=1.0, reason=None)
            return "updated"
        if first_look and run.verify == "version":
            _refuse_downgrade(run, version, "firmware")
        if not observed:
            await _observe_quiet(run, FW_STATE, FW_RESULT)
            observed = True
        sent = run.step in (STEP_SENT, STEP_APPLY)
        if state == FW_UPDATING:
            if run.state != TargetState.UPDATING:
                await run.advance(TargetState.UPDATING, progress=0.8)
            await _await_move(run, mark)
            continue
        if run.step == STEP_APPLY and state in (FW_IDLE, FW_DOWNLOADED) and result not in (None, 0):
            # Execute Update was sent and the device is back without the new version.
            if result == 1:
                # Success with the old version: a view that contradicts itself (a device that
                # reports its result before its version, or an SDK version in /3/0/3). Not yet:
                # read again; the target's timeout ends it and its reason quotes this.
                run.note = (f"device reports success (Update Result 1) but runs version "
                            f"{version!r}, not {want}")
                await run.port.wait(run.endpoint, run.poll, mark)  # /3/0/3 is not observed
                continue
            raise TargetFailed(result_reason(kind, result), result,
                               transient=is_transient_result(kind, result))
        run.note = None
        if state == FW_DOWNLOADING:  # ours from an earlier attempt, or a stale one: let it end
            if run.state == TargetState.PENDING:
                await run.advance(TargetState.TRANSFERRING)
            await _await_move(run, mark)
            continue
        if state == FW_DOWNLOADED:
            if sent or versions_equal(fw.get(FW_PKG_VERSION), want):
                if run.state not in (TargetState.TRANSFERRED, TargetState.UPDATING):
                    await run.advance(TargetState.TRANSFERRED, progress=0.6, result=result)
                if not executed:  # once per pass; a resumed pass re-reads the state first
                    await run.advance(TargetState.UPDATING, step=STEP_APPLY, progress=0.7,
                                      applied_inc=1)
                    await run.port.execute(run.endpoint, FW_UPDATE)
                    executed = True
                await _await_move(run, mark)
                continue
            # Another package waits on the device: an empty URI resets it to Idle (§E.6).
            await run.port.write(run.endpoint, FW_URI, "")
            continue
        # Idle: our transfer failed, has not started yet, or none was sent.
        if run.step == STEP_SENT and result not in (None, 0, 1):
            raise TargetFailed(result_reason(kind, result), result,
                               transient=is_transient_result(kind, result))
        if run.step == STEP_SENT and idle_after_send < 3:
            idle_after_send += 1  # the device may not have started yet
            await _await_move(run, mark)
            continue
        protocols = {int(v) for v in _multi(fw, FW_PROTOCOLS).values() if isinstance(v, int)}
        method = choose_method(protocols or None, _int(fw, FW_DELIVERY), run.delivery,
                               coap_url=run.package_url("pull-coap") is not None,
                               http_url=run.package_url("pull-http") is not None)
        idle_after_send = 0
        await _send_package(run, FW_URI, FW_PACKAGE, method)


async def run_sota(run: TargetRun) -> str:
    """Take the device through an Object 9 install and activate of a SOTA package.

    Success: the model object reports the new version and payload SHA-256 in its active slot.
    A package already delivered or installed counts as ours when its PkgVersion (/9/0/1) is
    the new version.
    """
    kind, want = "sota", run.artifact.version
    want_sha = (run.artifact.payload_sha256 or "").lower()
    observed = False
    sent: set[Path] = set()
    idle_after_send = 0
    model: dict[Path, Value] | None = None
    while True:
        mark = run.port.mark(run.endpoint)
        # State and result first, the model object second (see the module docstring). The
        # model object changes only on Activate: read at the first look, and again only once
        # Activate was sent (in this attempt or, by the step, an earlier one).
        sw = await _read_quiet(run, SW_OBJECT)
        if sw is not None and (model is None or SW_ACTIVATE in sent
                               or run.step == STEP_ACTIVATE):
            model = await _read_quiet(run, MODEL_OBJECT)
        if model is None or sw is None:
            raise DeviceOffline(f"{run.endpoint} does not answer")
        slot = _int(model, Path.of(33100, 0, MODEL_ACTIVE_SLOT))
        versions = _multi(model, Path.of(33100, 0, MODEL_SLOT_VERSION))
        shas = _multi(model, Path.of(33100, 0, MODEL_SLOT_SHA))
        result = _int(sw, SW_RESULT)
        if slot is not None and versions_equal(versions.get(slot), want) and (
                not want_sha or str(shas.get(slot, "")).lower() == want_sha):
            if run.state == TargetState.PENDING and run.step is None:
                await run.advance(TargetState.SUCCEEDED, progress=1.0, result=result,
                                  reason=f"already running model {want}")
                return "already"
            await run.advance(TargetState.SUCCEEDED, progress=1.0, result=result, reason=None)
            return "updated"
        refusal = sota_alg_refusal(run.artifact.sota_alg, model.get(MODEL_RUNTIME))
        if refusal is not None:
            raise TargetFailed(refusal)  # before sending: the device would refuse it anyway
        if run.state == TargetState.PENDING and run.step is None and slot is not None:
            _refuse_downgrade(run, versions.get(slot), "model")
        state = _int(sw, SW_STATE)
        if not observed:  # the active slot changes on Activate, where /9/0/7 stays Installed
            await _observe_quiet(run, SW_STATE, SW_RESULT, Path.of(33100, 0, MODEL_ACTIVE_SLOT))
            observed = True
        ours = run.step in (STEP_SENT, STEP_APPLY, STEP_ACTIVATE)
        # The package on the device is the new one (devices that leave PkgVersion empty: ours).
        pkg_ok = versions_equal(sw.get(SW_PKG_VERSION), want) or (
            ours and not sw.get(SW_PKG_VERSION))
        if ours and result is not None and result >= 50:
            detail = sw.get(SW_STATUS_REASON)
            reason = result_reason(kind, result) + (f" ({detail!s})" if detail else "")
            raise TargetFailed(reason, result, transient=is_transient_result(kind, result))
        if state == SW_INSTALLED and pkg_ok:
            if SW_ACTIVATE not in sent:  # once per pass; a resumed pass re-reads the state first
                await run.advance(TargetState.UPDATING, step=STEP_ACTIVATE, progress=0.9,
                                  result=result)
                await run.port.execute(run.endpoint, SW_ACTIVATE)
                sent.add(SW_ACTIVATE)
            elif sw.get(SW_ACTIVATION) is False and str(sw.get(SW_STATUS_REASON) or "").startswith(
                    "activate"):
                raise TargetFailed(f"activation failed: {sw.get(SW_STATUS_REASON)!s}", result)
            await _await_move(run, mark)
            continue
        if state == SW_DELIVERED and pkg_ok:
            if run.state not in (TargetState.TRANSFERRED, TargetState.UPDATING):
                await run.advance(TargetState.TRANSFERRED, progress=0.6, result=result)
            if SW_INSTALL not in sent:
                await run.advance(TargetState.UPDATING, step=STEP_APPLY, progress=0.7,
                                  applied_inc=1)
                await run.port.execute(run.endpoint, SW_INSTALL)
                sent.add(SW_INSTALL)
            await _await_move(run, mark)
            continue
        if state in (SW_DOWNLOAD_STARTED, SW_DOWNLOADED):  # ours from an earlier attempt, or stale
            if run.state == TargetState.PENDING:
                await run.advance(TargetState.TRANSFERRING)
            await _await_move(run, mark)
            continue
        if run.step == STEP_SENT and state == SW_INITIAL and idle_after_send < 3:
            idle_after_send += 1
            await _await_move(run, mark)
            continue
        if run.state == TargetState.UPDATING and ours:
            raise TargetFailed(f"device left the update after {run.step}: "
                               f"{result_reason(kind, result)}", result, transient=True)
        method = choose_method(None, None, run.delivery,
                               coap_url=run.package_url("pull-coap") is not None,
                               http_url=False)
        idle_after_send = 0
        await _send_package(run, SW_URI, SW_PACKAGE, method)


async def cancel_transfer(run: TargetRun) -> None:
    """Best effort after a cancel: stop the device's firmware download and drop the package
    (Execute Cancel /5/0/10, else an empty Package URI). Object 9 keeps what it received until
    the next package replaces it; nothing is installed without Install."""
    if run.artifact.kind != "firmware":
        return
    try:
        await run.port.execute(run.endpoint, FW_CANCEL)
    except (DeviceError, DeviceTimeout, DeviceOffline, DeviceNotFound):
        try:
            await run.port.write(run.endpoint, FW_URI, "")
        except (DeviceError, DeviceTimeout, DeviceOffline, DeviceNotFound) as e:
            log.info("%s: could not stop the cancelled download: %s", run.endpoint, e)


Driver = Callable[[TargetRun], Awaitable[str]]


def driver_for(kind: str) -> Driver:
    """The driver for an artifact kind: firmware -> Object 5, sota -> Object 9."""
    if kind == "firmware":
        return run_firmware
    if kind == "sota":
        return run_sota
    raise ValueError(f"artifact kind {kind!r} cannot be deployed (firmware or sota)")
