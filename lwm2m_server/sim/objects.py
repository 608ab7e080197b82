"""Object implementations of the simulated device: a small base class and objects 0, 1, 3, 4.

Each object keeps its resource values per instance (``data[iid][rid]``: a value, or a dict
``{riid: value}`` for a multiple resource), typed by the object definitions of the registry.
The values an instance starts with live in a template that every device with the same start
values shares (values.py); a device stores only what changed.
Objects with behaviour (firmware update, software management, the model) subclass
:class:`SimObject` and override ``refresh`` (values computed at read time), ``write_resource``
(checks and side effects of a Write) and ``execute``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from ..model import (
    LwM2mObject,
    MultipleResource,
    Node,
    ObjectDef,
    ObjectInstance,
    Path,
    ResourceDef,
    ResourceInstance,
    SingleResource,
    Value,
    ValueTypeError,
    check_value,
)
from .errors import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    UNAUTHORIZED,
    RequestError,
)
from .host import DeviceHost as Device
from .values import InstanceValues

__all__ = ["parse_execute_args", "SimObject", "SecurityObject", "ServerObject", "DeviceObject", "ConnectivityObject",
           "ResourceData"]

ResourceData = Value | dict[int, Value]


def parse_execute_args(text: str) -> dict[int, str | None]:
    """Execute arguments (LwM2M 1.1 §5.4.5): ``0='a,b',1,2='x'`` -> ``{0: 'a,b', 1: None, 2: 'x'}``.

    RequestError (4.00) for text that does not follow the grammar.
    """
    out: dict[int, str | None] = {}
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j].isdigit():
            j += 1
        if j == i or j - i > 1:
            raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}: argument ids are 0..9")
        key = int(text[i:j])
        val: str | None = None
        if j < n and text[j] == "=":
            if j + 1 >= n or text[j + 1] != "'":
                raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}: values are quoted")
            end = text.find("'", j + 2)
            if end < 0:
                raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}: unclosed quote")
            val = text[j + 2:end]
            j = end + 1
        if key in out:
            raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}: argument {key} twice")
        out[key] = val
        if j < n:
            if text[j] != ",":
                raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}")
            j += 1
            if j == n:
                raise RequestError(BAD_REQUEST, f"bad Execute arguments {text!r}: trailing comma")
        i = j
    return out


class SimObject:
    """One LwM2M object on the device: instances, their resource values, and the operations."""

    object_id: int = -1
    creatable: bool = False

    def __init__(self, device: Device, instances: Mapping[int, Mapping[int, Any]] | None = None) -> None:
        self.device = device
        definition = device.registry.get(self.object_id)
        if definition is None:
            raise ValueError(f"no definition for object {self.object_id}")
        self.definition: ObjectDef = definition
        self.data: dict[int, MutableMapping[int, ResourceData]] = {}
        for iid, values in (instances or {}).items():
            self.data[iid] = InstanceValues.of({rid: self._typed(rid, v) for rid, v in values.items()})

    # --- helpers ------------------------------------------------------------
    def _typed(self, rid: int, value: Any) -> ResourceData:
        d = self.resource_def(rid)
        if isinstance(value, dict):
            return {int(k): check_value(v, d.type) for k, v in value.items()}
        return check_value(value, d.type)

    def resource_def(self, rid: int) -> ResourceDef:
        d = self.definition.resources.get(rid)
        if d is None:
            raise RequestError(NOT_FOUND, f"object {self.object_id} has no resource {rid}")
        return d

    def instance(self, iid: int) -> MutableMapping[int, ResourceData]:
        inst = self.data.get(iid)
        if inst is None:
            raise RequestError(NOT_FOUND, f"no instance /{self.object_id}/{iid}")
        return inst

    def set_value(self, iid: int, rid: int, value: ResourceData) -> None:
        """Set a value from inside the device and tell observers when it changed."""
        inst = self.data.setdefault(iid, {})
        value = self._typed(rid, value)
        if inst.get(rid) != value:
            inst[rid] = value
            self.device.changed(Path.of(self.object_id, iid, rid))

    # --- hooks ----------------------------------------------------------------
    def refresh(self, iid: int) -> None:
        """Bring computed values of instance ``iid`` up to date before a read."""

    def write_resource(self, iid: int, rid: int, value: ResourceData) -> None:
        """Apply a Write of one resource (already type-checked); override for side effects."""
        self.set_value(iid, rid, value)

    def check_write(self, iid: int, rid: int, value: ResourceData) -> None:
        """Refuse a value before anything of the request is applied (RequestError)."""

    def execute(self, iid: int, rid: int, args: str) -> None:
        raise RequestError(METHOD_NOT_ALLOWED, f"/{self.object_id}/{iid}/{rid} does nothing on Execute")

    # --- operations (used by the device) -------------------------------------
    def readable_values(self, iid: int) -> dict[Path, Value]:
        """Every readable leaf of instance ``iid`` as ``{path: value}``."""
        self.instance(iid)
        self.refresh(iid)
        out: dict[Path, Value] = {}
        for rid, v in sorted(self.data[iid].items()):
            d = self.definition.resources.get(rid)
            if d is not None and not d.readable:
                continue
            if isinstance(v, dict):
                for ri, rv in sorted(v.items()):
                    out[Path.of(self.object_id, iid, rid, ri)] = rv
            else:
                out[Path.of(self.object_id, iid, rid)] = v
        return out

    def write(self, iid: int, values: Mapping[int, ResourceData], replace: bool,
              create: bool = False) -> None:
        """Write several resources of one instance: all are checked before any is applied."""
        inst = self.data.get(iid) if not create else {}
        if inst is None:
            raise RequestError(NOT_FOUND, f"no instance /{self.object_id}/{iid}")
        typed: dict[int, ResourceData] = {}
        for rid, v in values.items():
            d = self.resource_def(rid)
            if not d.writable and not create:
                raise RequestError(METHOD_NOT_ALLOWED, f"/{self.object_id}/{iid}/{rid} is not writable")
            if isinstance(v, dict) and not d.multiple:
                raise RequestError(BAD_REQUEST, f"/{self.object_id}/{iid}/{rid} is a single resource")
            if d.multiple and not isinstance(v, dict):
                raise RequestError(BAD_REQUEST, f"/{self.object_id}/{iid}/{rid} is a multiple resource")
            try:
                tv = self._typed(rid, v)
            except ValueTypeError as e:
                raise RequestError(BAD_REQUEST, f"/{self.object_id}/{iid}/{rid}: {e}") from None
            if isinstance(tv, dict) and not replace and isinstance(inst.get(rid), dict):
                tv = {**inst[rid], **tv}  # type: ignore[dict-item]
            self.check_write(iid, rid, tv)
            typed[rid] = tv
        if create:
            self.data[iid] = {}
        for rid, tv in typed.items():
            self.write_resource(iid, rid, tv)

    def create(self, iid: int | None, values: Mapping[int, ResourceData]) -> int:
        if not self.creatable:
            raise RequestError(METHOD_NOT_ALLOWED, f"object {self.object_id} does not allow Create")
        if iid is None:
            iid = next(i for i in range(65535) if i not in self.data)
        if iid in self.data:
            raise RequestError(BAD_REQUEST, f"/{self.object_id}/{iid} already exists")
        self.write(iid, values, replace=True, create=True)
        self.device.changed(Path.of(self.object_id))
        return iid

    def delete(self, iid: int) -> None:
        if not self.creatable:
            raise RequestError(METHOD_NOT_ALLOWED, f"object {self.object_id} does not allow Delete")
        self.instance(iid)
        del self.data[iid]
        self.device.changed(Path.of(self.object_id))


class SecurityObject(SimObject):
    """Object 0: holds the server URI; a management server may not touch it (LwM2M §E.1)."""

    object_id = 0

    def readable_values(self, iid: int) -> dict[Path, Value]:
        raise RequestError(UNAUTHORIZED, "the Security object is not accessible to a management server")

    def write(self, iid: int, values: Mapping[int, ResourceData], replace: bool,
              create: bool = False) -> None:
        raise RequestError(UNAUTHORIZED, "the Security object is not accessible to a management server")


class ServerObject(SimObject):
    """Object 1: lifetime, binding, default periods; Registration Update Trigger."""

    object_id = 1

    def check_write(self, iid: int, rid: int, value: ResourceData) -> None:
        if rid == 1 and isinstance(value, int) and value <= 0:
            raise RequestError(BAD_REQUEST, "lifetime must be positive")
        if rid == 7 and value not in ("U", "UQ"):
            raise RequestError(BAD_REQUEST, f"binding {value!r} is not supported (U or UQ)")
        if rid in (2, 3) and isinstance(value, int) and value < 0:
            raise RequestError(BAD_REQUEST, "periods are not negative")

    def write_resource(self, iid: int, rid: int, value: ResourceData) -> None:
        super().write_resource(iid, rid, value)
        if rid in (1, 7):
            self.device.request_update()

    def execute(self, iid: int, rid: int, args: str) -> None:
        self.instance(iid)
        if rid == 8:
            self.device.request_update()
        elif rid == 4:
            self.device.request_disable(int(self.data[iid].get(5, 86400) or 86400))  # type: ignore[arg-type]
        else:
            super().execute(iid, rid, args)


class DeviceObject(SimObject):
    """Object 3: identity, firmware version, battery, memory, error codes; Reboot."""

    object_id = 3

    def __init__(self, device: Device, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._offset = 0.0
        # What differs between devices (serial, version, time) is set apart from the template.
        super().__init__(device, {0: {
            0: "TinyML Sim", 1: "sim-mcu-1", 2: "", 3: "",
            6: {0: 1}, 9: 100, 10: 180, 11: {0: 0}, 13: 0, 14: "+00:00",
            15: "UTC", 16: "UQ", 17: "TinyML node", 18: "1.0", 19: "sim-0.1", 20: 0, 21: 256,
        }})
        inst = self.data[0]
        inst[2] = self._typed(2, device.serial)
        inst[3] = self._typed(3, device.firmware_version)
        inst[13] = int(clock())

    def refresh(self, iid: int) -> None:
        inst = self.data[iid]
        inst[3] = self.device.firmware_version
        inst[10] = self.device.memory_free_kib()
        inst[13] = int(self._clock() + self._offset)

    def write_resource(self, iid: int, rid: int, value: ResourceData) -> None:
        if rid == 13 and isinstance(value, int):
            self._offset = value - self._clock()
        super().write_resource(iid, rid, value)

    def execute(self, iid: int, rid: int, args: str) -> None:
        self.instance(iid)
        if rid == 4:
            self.device.request_reboot()
        elif rid == 12:
            self.set_value(iid, 11, {0: 0})
        else:
            super().execute(iid, rid, args)

    def add_error(self, code: int) -> None:
        """Report an error code in /3/0/11 (0 'no error' is dropped once a real one is set)."""
        current = self.data[0].get(11)
        errors = {k: v for k, v in (current if isinstance(current, dict) else {}).items() if v != 0}
        if code not in errors.values():
            errors[max(errors, default=-1) + 1] = code
        self.set_value(0, 11, errors)


class ConnectivityObject(SimObject):
    """Object 4: a simulated Wi-Fi bearer with the device's local address."""

    object_id = 4

    def __init__(self, device: Device) -> None:
        super().__init__(device, {0: {0: 21, 1: {0: 21}, 2: -60, 3: 90, 4: {0: "127.0.0.1"},
                                      5: {0: "127.0.0.1"}, 6: 5}})

    def refresh(self, iid: int) -> None:
        addr = self.device.local_address()
        if addr:
            self.data[iid][4] = {0: addr}


# --- nodes written by a server -> the objects' resource data ----------------------------
def instance_values(inst: ObjectInstance) -> dict[int, ResourceData]:
    """``{resource id: value or {riid: value}}`` of one instance node."""
    return {r.id: dict(r.instances) if isinstance(r, MultipleResource) else r.value
            for r in inst.resources.values()}


def group_values(node: Node, path: Path) -> dict[int, dict[int, ResourceData]]:
    """Node written at ``path`` -> ``{instance id: {resource id: value or {riid: value}}}``."""
    if isinstance(node, ObjectInstance) and node.id is None:
        node = ObjectInstance(path.instance_id, node.resources)
    if isinstance(node, LwM2mObject):
        raise RequestError(METHOD_NOT_ALLOWED, "Write addresses an instance or a resource")
    if isinstance(node, ObjectInstance):
        return {node.id: instance_values(node)}  # type: ignore[dict-item]
    if isinstance(node, MultipleResource):
        return {path.instance_id: {node.id: dict(node.instances)}}  # type: ignore[dict-item]
    if isinstance(node, ResourceInstance):
        return {path.instance_id: {path.resource_id: {node.id: node.value}}}  # type: ignore[dict-item]
    if isinstance(node, SingleResource):
        return {path.instance_id: {node.id: node.value}}  # type: ignore[dict-item]
    raise RequestError(BAD_REQUEST, "unexpected payload")
