"""Checks a request against the registration and the object definitions before anything is
sent or queued: nothing invalid waits for a sleeping device."""

from __future__ import annotations

from collections.abc import Mapping

from ..model import NodeError, ObjectRegistry, Path, PathError, Value, ValueTypeError, build
from .errors import InvalidRequest
from .registration import Registration
from .requests import (ATTRIBUTE_NAMES, CancelObserveCompositeRequest, CreateRequest, DeleteRequest,
                       DeviceRequest, DiscoverRequest, ExecuteRequest, ObserveCompositeRequest,
                       ObserveRequest, ReadCompositeRequest, ReadRequest, WriteAttributesRequest,
                       WriteCompositeRequest, WriteRequest, operation_name)

__all__ = ["validate"]

_COMPOSITE = (ReadCompositeRequest, WriteCompositeRequest, ObserveCompositeRequest,
              CancelObserveCompositeRequest)


def validate(registry: ObjectRegistry, reg: Registration, request: DeviceRequest) -> None:
    """Raise InvalidRequest (4.00 / HTTP 400) when ``request`` cannot be sent to ``reg``."""
    if isinstance(request, _COMPOSITE):
        if reg.lwm2m_version == "1.0":
            raise InvalidRequest(f"{operation_name(request)} needs LwM2M 1.1; {reg.endpoint!r} "
                                 "registered with 1.0")
        paths = list(getattr(request, "paths", ())) or list(getattr(request, "values", {}))
        if not paths:
            raise InvalidRequest("a composite operation needs at least one path")
        if isinstance(request, WriteCompositeRequest):
            check_writable(registry, request.values)
            check_types(registry, request.values)
        return
    path: Path = request.path  # type: ignore[union-attr]
    if path.level == 4 and reg.lwm2m_version == "1.0":
        # LwM2M 1.0 paths stop at the resource (Wakaama's 1.0 client answers 4.00).
        raise InvalidRequest(f"{operation_name(request)} of a resource instance ({path}) needs LwM2M "
                             f"1.1; {reg.endpoint!r} registered with 1.0: use {path.parent()}")
    if isinstance(request, ExecuteRequest) and not path.is_resource:
        raise InvalidRequest(f"execute needs a resource path, got {path}")
    if isinstance(request, CreateRequest) and not path.is_object:
        raise InvalidRequest(f"create needs an object path, got {path}")
    if isinstance(request, DeleteRequest) and path.level not in (1, 2):
        raise InvalidRequest(f"delete needs an object or object instance path, got {path}")
    if isinstance(request, WriteRequest):
        if path.level < 2:
            raise InvalidRequest(f"write needs an instance, resource or resource-instance path, got {path}")
        if not request.values:
            raise InvalidRequest("write needs at least one value")
        outside = [str(p) for p in request.values if not p.starts_with(path)]
        if outside:
            raise InvalidRequest(f"{', '.join(outside)} not under {path}")
        check_writable(registry, request.values)
        check_types(registry, request.values)
    if isinstance(request, CreateRequest):
        check_writable(registry, request.values, create=True)
        check_types(registry, request.values)
    if isinstance(request, WriteAttributesRequest):
        bad = [k for k in request.attributes if k not in ATTRIBUTE_NAMES]
        if bad:
            raise InvalidRequest(f"unknown attributes {bad}; allowed: {', '.join(ATTRIBUTE_NAMES)}")
        if path.is_root:
            raise InvalidRequest("write-attributes needs an object, instance or resource path")
    if isinstance(request, (ReadRequest, ObserveRequest, DiscoverRequest)) and path.is_root:
        raise InvalidRequest(f"{operation_name(request)} needs an object path or deeper")


def check_types(registry: ObjectRegistry, values: Mapping[Path, Value]) -> None:
    """Every value fits its resource's type (and multiple resources are addressed by instance)."""
    for inst in {Path(p.ids[:2]) for p in values}:
        try:
            build({p: v for p, v in values.items() if p.starts_with(inst)}, inst, registry)
        except (NodeError, ValueTypeError, PathError) as e:
            raise InvalidRequest(f"values do not fit the object definition: {e}") from None


def check_writable(registry: ObjectRegistry, values: Mapping[Path, Value], create: bool = False) -> None:
    """Every path is a defined resource the server may write (or set in a Create)."""
    for p in values:
        odef = registry.get(p.object_id) if p.object_id is not None else None
        if odef is None:
            raise InvalidRequest(f"object {p.object_id} is not defined on this server; cannot write {p}")
        if p.level < 3:
            raise InvalidRequest(f"{p} is not a resource path")
        rdef = odef.resources.get(p.resource_id)  # type: ignore[arg-type]
        if rdef is None:
            raise InvalidRequest(f"object {p.object_id} has no resource {p.resource_id}")
        if not rdef.writable and not create:
            raise InvalidRequest(f"{p} ({rdef.name}) is not writable")
