"""One frozen dataclass per device-management operation, and the responses they produce.

These are what callers (the REST API, the rollout engine) hand to ``LwM2MServer.devices.send``;
the CoAP adapter turns them into CoAP messages. ``operation_name`` gives the metric label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from ..model import Path, Value
from .jsonable import plain_values

__all__ = [
    "ReadRequest", "WriteRequest", "ExecuteRequest", "CreateRequest", "DeleteRequest",
    "DiscoverRequest", "WriteAttributesRequest", "ObserveRequest", "CancelObserveRequest",
    "ReadCompositeRequest", "WriteCompositeRequest", "ObserveCompositeRequest",
    "CancelObserveCompositeRequest", "DeviceRequest",
    "ReadResponse", "DiscoverResponse", "CreateResponse", "EmptyResponse", "DeviceResponse",
    "operation_name", "summarize", "response_to_json", "ATTRIBUTE_NAMES", "request_to_json", "request_from_json",
]

# Write-Attributes parameters of LwM2M 1.1 §5.1.2.
ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")


def _path(p: Path | str) -> Path:
    return Path.parse(p)


def _normalize(self: Any) -> None:
    """Shared ``__post_init__``: paths given as strings become Path values, mappings are copied."""
    fields = self.__dataclass_fields__
    if "path" in fields:
        object.__setattr__(self, "path", _path(self.path))
    if "paths" in fields:
        object.__setattr__(self, "paths", tuple(_path(p) for p in self.paths))
    if "values" in fields:
        object.__setattr__(self, "values", {_path(k): v for k, v in self.values.items()})
    if "attributes" in fields:
        object.__setattr__(self, "attributes", dict(self.attributes))


class _Normalized:
    """Base of the request dataclasses: one ``__post_init__`` for all of them."""

    __slots__ = ()

    def __post_init__(self) -> None:
        _normalize(self)


@dataclass(frozen=True, slots=True)
class ReadRequest(_Normalized):
    path: Path



@dataclass(frozen=True, slots=True)
class WriteRequest(_Normalized):
    """Write ``values`` (leaf paths under ``path``); ``replace`` True is PUT, False is partial
    update (POST)."""

    path: Path
    values: Mapping[Path, Value]
    replace: bool = True



@dataclass(frozen=True, slots=True)
class ExecuteRequest(_Normalized):
    path: Path
    args: str | None = None



@dataclass(frozen=True, slots=True)
class CreateRequest(_Normalized):
    """Create an instance of the object at ``path``; ``instance_id`` None lets the device choose."""

    path: Path
    values: Mapping[Path, Value] = field(default_factory=dict)
    instance_id: int | None = None



@dataclass(frozen=True, slots=True)
class DeleteRequest(_Normalized):
    path: Path



@dataclass(frozen=True, slots=True)
class DiscoverRequest(_Normalized):
    path: Path



@dataclass(frozen=True, slots=True)
class WriteAttributesRequest(_Normalized):
    """Set notification attributes (pmin, pmax, gt, lt, st, epmin, epmax); None clears one."""

    path: Path
    attributes: Mapping[str, float | int | None]



@dataclass(frozen=True, slots=True)
class ObserveRequest(_Normalized):
    path: Path



@dataclass(frozen=True, slots=True)
class CancelObserveRequest(_Normalized):
    path: Path



@dataclass(frozen=True, slots=True)
class ReadCompositeRequest(_Normalized):
    paths: tuple[Path, ...]



@dataclass(frozen=True, slots=True)
class WriteCompositeRequest(_Normalized):
    values: Mapping[Path, Value]



@dataclass(frozen=True, slots=True)
class ObserveCompositeRequest(_Normalized):
    paths: tuple[Path, ...]



@dataclass(frozen=True, slots=True)
class CancelObserveCompositeRequest(_Normalized):
    paths: tuple[Path, ...]



DeviceRequest = Union[
    ReadRequest, WriteRequest, ExecuteRequest, CreateRequest, DeleteRequest, DiscoverRequest,
    WriteAttributesRequest, ObserveRequest, CancelObserveRequest, ReadCompositeRequest,
    WriteCompositeRequest, ObserveCompositeRequest, CancelObserveCompositeRequest,
]


@dataclass(frozen=True, slots=True)
class ReadResponse:
    """Values per leaf path (Read, Read-Composite, and the first answer of an Observe)."""

    values: dict[Path, Value]


@dataclass(frozen=True, slots=True)
class DiscoverResponse:
    """The device's link-format answer: one entry per link, ``{"path": Path, "attributes": {...}}``."""

    links: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CreateResponse:
    """The path of the created instance (from the device's Location-Path)."""

    path: Path


@dataclass(frozen=True, slots=True)
class EmptyResponse:
    """Success without data (write, execute, delete, write-attributes, cancel); ``code`` e.g. "2.04"."""

    code: str = "2.04"


DeviceResponse = Union[ReadResponse, DiscoverResponse, CreateResponse, EmptyResponse]

_NAMES = {
    ReadRequest: "read", WriteRequest: "write", ExecuteRequest: "execute", CreateRequest: "create",
    DeleteRequest: "delete", DiscoverRequest: "discover", WriteAttributesRequest: "write_attributes",
    ObserveRequest: "observe", CancelObserveRequest: "cancel_observe",
    ReadCompositeRequest: "read_composite", WriteCompositeRequest: "write_composite",
    ObserveCompositeRequest: "observe_composite",
    CancelObserveCompositeRequest: "cancel_observe_composite",
}


def operation_name(request: DeviceRequest) -> str:
    """The operation's name ("read", "write", ...), as metrics and events label it."""
    return _NAMES[type(request)]


def summarize(request: DeviceRequest) -> dict[str, Any]:
    """A JSON-able description of ``request`` (for events and queued-request listings)."""
    out: dict[str, Any] = {"operation": operation_name(request)}
    for name in ("path", "paths", "values", "replace", "args", "instance_id", "attributes"):
        if not hasattr(request, name):
            continue
        v = getattr(request, name)
        if name == "path":
            out["path"] = str(v)
        elif name == "paths":
            out["paths"] = [str(p) for p in v]
        elif name == "values":
            out["paths_written"] = sorted(str(p) for p in v)
        else:
            out[name] = v
    return out


_BY_NAME = {cls.__name__: cls for cls in _NAMES}


def request_to_json(request: DeviceRequest) -> dict[str, Any]:
    """A JSON-able form of ``request`` that :func:`request_from_json` restores exactly."""
    from .jsonable import tagged_values

    out: dict[str, Any] = {"type": type(request).__name__}
    for name in request.__dataclass_fields__:  # type: ignore[union-attr]
        v = getattr(request, name)
        if name == "path":
            v = str(v)
        elif name == "paths":
            v = [str(p) for p in v]
        elif name == "values":
            v = tagged_values(v)
        elif name == "attributes":
            v = dict(v)
        out[name] = v
    return out


def request_from_json(data: dict[str, Any]) -> DeviceRequest:
    """The request :func:`request_to_json` described; ValueError for an unknown type."""
    from .jsonable import untagged_values

    cls = _BY_NAME.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown request type {data.get('type')!r}")
    kwargs = {k: v for k, v in data.items() if k != "type"}
    if "values" in kwargs:
        kwargs["values"] = untagged_values(kwargs["values"])
    return cls(**kwargs)  # type: ignore[no-any-return]


def response_to_json(response: DeviceResponse) -> dict[str, Any]:
    """The JSON-able form of a response (queued-request results, events)."""
    if isinstance(response, ReadResponse):
        return {"values": plain_values(response.values)}
    if isinstance(response, CreateResponse):
        return {"path": str(response.path)}
    if isinstance(response, DiscoverResponse):
        return {"links": [{"path": str(link["path"]), "attributes": link["attributes"]}
                          for link in response.links]}
    return {"code": response.code}
