"""JSON <-> LwM2M value mapping for the REST API.

Out (``value_to_json``/``values_to_json``, the same functions events and queued results use):
opaque -> base64 string, objlnk -> ``"3:0"``, time -> integer seconds, everything else as the
JSON scalar it is. In: values are typed by the object definitions
(``ObjectRegistry.resource_type``); a value that does not fit, a path outside the route's path
or a resource no definition knows is refused with 400 (``BadRequest``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..model import ObjectRegistry, ObjLnk, Path, PathError, ResourceType, Value, ValueTypeError, check_value
from ..protocol.jsonable import plain as value_to_json
from ..protocol.jsonable import plain_values as values_to_json
from .errors import BadRequest

__all__ = ["value_to_json", "values_to_json", "value_from_json", "values_from_json", "parse_path",
           "JsonValue"]

JsonValue = str | int | float | bool | None


def parse_path(text: str, min_level: int = 0, what: str = "path") -> Path:
    """``text`` as a Path (leading slash optional), at least ``min_level`` ids deep; else 400."""
    try:
        p = Path.parse(text if text.startswith("/") else "/" + text)
    except PathError as e:
        raise BadRequest(str(e)) from None
    if len(p.ids) < min_level:
        levels = {1: "an object", 2: "an object instance", 3: "a resource", 4: "a resource instance"}
        raise BadRequest(f"{what} {p} must name {levels.get(min_level, 'something deeper')} or below")
    return p


def _fail(path: Path, rtype: ResourceType, raw: object, why: str = "") -> BadRequest:
    shown = repr(raw) if not isinstance(raw, str) or len(raw) < 60 else repr(raw[:57] + "...")
    return BadRequest(f"{path}: {shown} is not a valid {rtype.value} value" + (f" ({why})" if why else ""),
                      path=str(path))


def value_from_json(raw: Any, rtype: ResourceType, path: Path) -> Value:
    """The LwM2M value of type ``rtype`` that the JSON value ``raw`` stands for; else 400."""
    if rtype is ResourceType.OPAQUE:
        if not isinstance(raw, str):
            raise _fail(path, rtype, raw, "opaque values are base64 strings")
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _fail(path, rtype, raw, "not base64") from None
    if rtype is ResourceType.OBJLNK:
        if not isinstance(raw, str):
            raise _fail(path, rtype, raw, "object links are strings like '3:0'")
        try:
            return ObjLnk.parse(raw)
        except ValueTypeError as e:
            raise _fail(path, rtype, raw, str(e)) from None
    if rtype is ResourceType.TIME and isinstance(raw, bool | float):
        raise _fail(path, rtype, raw, "time is integer seconds since 1970")
    try:
        return check_value(raw, rtype)
    except ValueTypeError as e:
        raise _fail(path, rtype, raw, str(e) if "fit" in str(e) or "finite" in str(e) else "") from None


def values_from_json(raw: Any, registry: ObjectRegistry, base: Path | None = None,
                     writable_only: bool = False) -> dict[Path, Value]:
    """Typed ``{Path: Value}`` from a JSON object ``{"/1/0/1": 300, ...}``.

    Every key must be a resource or resource-instance path under ``base`` (when given), of an
    object and resource the registry defines (and writable, with ``writable_only``); a
    multiple resource is written through its instances (``/o/i/r/ri``).
    """
    if not isinstance(raw, Mapping):
        raise BadRequest("values must be a JSON object of path -> value")
    if not raw:
        raise BadRequest("values is empty: nothing to write")
    out: dict[Path, Value] = {}
    for key, item in raw.items():
        p = parse_path(str(key), min_level=3, what="value path")
        if base is not None and not p.starts_with(base):
            raise BadRequest(f"value path {p} is not under {base}", path=str(p))
        obj = registry.get(p.object_id)  # type: ignore[arg-type]
        if obj is None:
            raise BadRequest(f"{p}: object {p.object_id} has no definition on this server; "
                             "load one with --objects", path=str(p))
        rdef = obj.resources.get(p.resource_id)  # type: ignore[arg-type]
        if rdef is None:
            raise BadRequest(f"{p}: object {obj.id} ({obj.name}) has no resource {p.resource_id}",
                             path=str(p))
        if writable_only and not rdef.writable:
            raise BadRequest(f"{p}: resource '{rdef.name}' is not writable (operations "
                             f"{str(rdef.operations) or 'none'})", path=str(p))
        if rdef.multiple and p.is_resource:
            raise BadRequest(f"{p}: '{rdef.name}' is a multiple resource; write its instances "
                             f"as {p}/<instance>", path=str(p))
        if not rdef.multiple and p.is_resource_instance:
            raise BadRequest(f"{p}: '{rdef.name}' is a single resource; it has no instances",
                             path=str(p))
        out[p] = value_from_json(item, rdef.type, p)
    return out
