"""The client side of LwM2M 1.1 bootstrap for a simulated device (TS Core §6.1).

While a device bootstraps, every request it receives goes to :class:`BootstrapSite`, which
serves the bootstrap interface on its Security (/0) and Server (/1) objects: Bootstrap-Delete,
Bootstrap-Discover, Bootstrap-Write and Bootstrap-Finish. The Bootstrap-Server account (the
Security instance with resource 1 true) survives every Delete, as the specification requires.
Other objects keep their instances (a simplification: the simulated objects have fixed ones).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code

from ..codecs import CodecError, codec_for
from ..model import LwM2mObject, Path, PathError
from .host import DeviceHost
from .objects import group_values, instance_values

__all__ = ["BootstrapSite", "accounts"]

_LINK_FORMAT = 40


def accounts(device: DeviceHost, bootstrap: bool) -> list[tuple[int, dict[int, Any]]]:
    """(instance id, resources) of the Security instances that are (not) bootstrap accounts."""
    return [(iid, res) for iid, res in sorted(device.objects[0].data.items())
            if bool(res.get(1, False)) == bootstrap]


def _answer(code: Code, text: str = "") -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=text.encode())


class BootstrapSite:
    """Serves the bootstrap interface; ``finished`` is set by a Bootstrap-Finish it accepts."""

    def __init__(self, device: DeviceHost) -> None:
        self.device = device
        self.finished = asyncio.Event()

    def render(self, request: aiocoap.Message) -> aiocoap.Message:
        segs = [s for s in request.opt.uri_path if s]
        if request.code == Code.POST and segs == ["bs"]:
            return self._finish()
        try:
            path = Path.parse("/" + "/".join(segs))
        except PathError as e:
            return _answer(Code.BAD_REQUEST, str(e))
        if request.code == Code.DELETE:
            return self._delete(path)
        if request.code == Code.GET and request.opt.accept == _LINK_FORMAT:
            return self._discover(path)
        if request.code == Code.PUT:
            return self._write(request, path)
        return _answer(Code.METHOD_NOT_ALLOWED, "not a bootstrap operation")

    def _delete(self, path: Path) -> aiocoap.Message:
        objects = self.device.objects
        targets: list[tuple[int, int | None]]
        if path.is_root:
            targets = [(0, None), (1, None)]
        elif path.object_id in (0, 1) and path.resource_id is None:
            targets = [(path.object_id, path.instance_id)]
        else:
            return _answer(Code.BAD_REQUEST, "Bootstrap-Delete takes /, an object or an instance")
        for oid, iid in targets:
            data = objects[oid].data
            for i in ([iid] if iid is not None else list(data)):
                if oid == 0 and data.get(i, {}).get(1):
                    if iid is not None:
                        return _answer(Code.BAD_REQUEST, "the Bootstrap-Server account stays")
                    continue
                data.pop(i, None)
        self.device.note(f"bootstrap delete {path}")
        return aiocoap.Message(code=Code.DELETED)

    def _discover(self, path: Path) -> aiocoap.Message:
        if not (path.is_root or (path.object_id is not None and path.instance_id is None)):
            return _answer(Code.BAD_REQUEST, "Bootstrap-Discover takes / or an object")
        links = ['</>;lwm2m="1.1"'] if path.is_root else []
        for oid, obj in sorted(self.device.objects.items()):
            if path.object_id not in (None, oid):
                continue
            if not obj.data:
                links.append(f"</{oid}>")
            for iid, res in sorted(obj.data.items()):
                ssid = res.get(10) if oid == 0 and not res.get(1) else res.get(0) if oid == 1 else None
                links.append(f"</{oid}/{iid}>" + (f";ssid={int(ssid)}" if isinstance(ssid, int) else ""))
        return aiocoap.Message(code=Code.CONTENT, payload=",".join(links).encode(),
                               content_format=_LINK_FORMAT)

    def _write(self, request: aiocoap.Message, path: Path) -> aiocoap.Message:

        if path.object_id not in (0, 1) or path.resource_id is not None:
            return _answer(Code.BAD_REQUEST, "this device takes Bootstrap-Write of /0 and /1 instances")
        cf = request.opt.content_format
        if cf is None:
            return _answer(Code.BAD_REQUEST, "a payload needs a Content-Format")
        try:
            node = codec_for(int(cf)).decode(request.payload, path, self.device.registry)
        except (CodecError, KeyError) as e:
            return _answer(Code.BAD_REQUEST, f"payload does not decode: {e}")
        obj = self.device.objects[path.object_id]
        try:
            groups = ({iid: instance_values(inst) for iid, inst in node.instances.items()}
                      if isinstance(node, LwM2mObject) else group_values(node, path))
            for iid, values in groups.items():
                obj.data[iid] = {rid: obj._typed(rid, v) for rid, v in values.items()}
        except Exception as e:  # noqa: BLE001 - any bad value is the server's 4.00
            return _answer(Code.BAD_REQUEST, f"bad instance: {e}")
        return aiocoap.Message(code=Code.CHANGED)

    def _finish(self) -> aiocoap.Message:
        servers = {res.get(0) for res in self.device.objects[1].data.values()}
        usable = [res for _, res in accounts(self.device, bootstrap=False)
                  if res.get(0) and res.get(10) in servers]
        if not usable:
            # 4.06 Not Acceptable: the configuration is not usable.
            return _answer(Code.NOT_ACCEPTABLE, "no LwM2M server account with a matching Server instance")
        self.finished.set()
        return aiocoap.Message(code=Code.CHANGED)
