"""``/api/v1/devices``: registrations and device management (read, write, execute, create,
delete, discover, write-attributes, observe, composite operations, latest observed values).

Every route hands one request dataclass to ``server.devices.send``; protocol errors become HTTP
codes in ``api/errors.py`` (404 unknown endpoint, 409 offline, 504 no answer, 502 device error
with its CoAP code, 202 queued). ``?timeout=`` (seconds) waits that long for a sleeping
queue-mode device before answering 202.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model import Path
from ..protocol.errors import DeviceNotFound
from ..protocol.requests import (
    response_to_json,
    CancelObserveCompositeRequest,
    CancelObserveRequest,
    CreateRequest,
    DeleteRequest,
    DeviceRequest,
    DiscoverRequest,
    ExecuteRequest,
    ObserveCompositeRequest,
    ObserveRequest,
    ReadCompositeRequest,
    ReadRequest,
    WriteAttributesRequest,
    WriteCompositeRequest,
    WriteRequest,
)
from .deps import DbInt, ServerDep, require_scope
from .errors import BadRequest
from .values import parse_path, values_from_json, values_to_json

__all__ = ["router", "device_json"]

router = APIRouter(prefix="/devices", tags=["devices"], dependencies=[Depends(require_scope())])

Timeout = Annotated[float | None, Query(ge=0, le=24 * 3600,
                                        description="seconds to wait: for a sleeping (queue-mode) "
                                                    "device, before answering 202; for an awake "
                                                    "one, for its answer (default: the server's "
                                                    "request timeout)")]


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def device_json(reg: Any) -> dict[str, Any]:
    """The JSON view of a ``Registration``."""
    return {
        "endpoint": reg.endpoint,
        "registration_id": reg.registration_id,
        "lwm2m_version": reg.lwm2m_version,
        "binding": reg.binding,
        "lifetime": reg.lifetime,
        "queue_mode": reg.queue_mode,
        # "psk": registered over DTLS with a pre-shared key; "none": over plain CoAP.
        "security": getattr(reg, "security", "none"),
        "online": reg.online,
        "last_seen": _iso(reg.last_seen),
        "registered_at": _iso(reg.registered_at),
        "expires_at": _iso(getattr(reg, "expires_at", None)),
        "address": f"{reg.address[0]}:{reg.address[1]}" if reg.address else None,
        "sms": reg.sms,
        "objects": [str(p) for p in reg.objects],
        "object_versions": {str(k): v for k, v in getattr(reg, "object_versions", {}).items()},
        # The server process that receives its datagrams (a cluster node id; null: one process).
        "server_process": getattr(reg, "owner", None),
    }


def _registration(server: Any, endpoint: str) -> Any:
    reg = server.registrations.get(endpoint)
    if reg is None:
        raise DeviceNotFound(f"no device registered with endpoint {endpoint!r}")
    return reg


async def _send(server: Any, endpoint: str, request: DeviceRequest, timeout: float | None,
                **extra: Any) -> dict[str, Any]:
    """Send ``request`` to ``endpoint`` and return the JSON answer (``extra`` merged in first;
    a Create answers ``{"path": <created instance>}``)."""
    resp = await server.devices.send(endpoint, request, timeout=timeout)
    return {**extra, **response_to_json(resp)}


# --- bodies -------------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WriteBody(_Body):
    values: dict[str, Any] = Field(description='path -> value, e.g. {"/1/0/1": 300}')
    replace: bool | None = Field(None, description="replace (PUT) or partial update (POST); "
                                                   "default: replace for a resource, partial "
                                                   "update for an instance")


class ExecuteBody(_Body):
    args: str | None = Field(None, max_length=4096, description="execute arguments, e.g. 0='1,2'")


class CreateBody(_Body):
    values: dict[str, Any] = Field(description='resource path -> value, e.g. {"/1/1/1": 60}')
    instance_id: int | None = Field(None, ge=0, le=65534, description="none: the device chooses")


class AttributesBody(_Body):
    pmin: int | None = Field(None, ge=0)
    pmax: int | None = Field(None, ge=0)
    gt: float | None = None
    lt: float | None = None
    st: float | None = Field(None, ge=0)
    epmin: int | None = Field(None, ge=0)
    epmax: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> AttributesBody:
        if not self.model_fields_set:
            raise ValueError("give at least one of pmin, pmax, gt, lt, st, epmin, epmax "
                             "(null clears one)")
        if self.pmin is not None and self.pmax is not None and self.pmax < self.pmin:
            raise ValueError("pmax must not be less than pmin")
        if self.epmin is not None and self.epmax is not None and self.epmax < self.epmin:
            raise ValueError("epmax must not be less than epmin")
        if self.lt is not None and self.gt is not None and self.lt + 2 * (self.st or 0) >= self.gt:
            raise ValueError("lt + 2*st must be less than gt (LwM2M 1.1 §5.1.2)")
        return self


class PathsBody(_Body):
    paths: list[str] = Field(min_length=1, max_length=256)


class CompositeWriteBody(_Body):
    values: dict[str, Any]


def _paths(body: PathsBody) -> tuple[Path, ...]:
    paths = tuple(parse_path(p, min_level=1) for p in body.paths)
    if len(set(paths)) != len(paths):
        raise BadRequest("paths repeat")
    return paths


def _check_executable(server: Any, path: Path) -> None:
    rdef = server.registry.resource_for(path)
    if rdef is not None and not rdef.executable:
        raise BadRequest(f"{path}: resource '{rdef.name}' is not executable "
                         f"(operations {str(rdef.operations) or 'none'})")


# --- registrations ------------------------------------------------------------------------

_EXPORT_TYPE = "application/x-ndjson"


@router.get("", summary="List registered devices, by endpoint name",
            description="Pages by keyset: `?limit=100` gives the first page; when a page is full its "
                        "`Link` header (rel=\"next\") holds the next one (`?after=<last endpoint>`). "
                        "`offset` still works but costs its length. With `Accept: "
                        f"{_EXPORT_TYPE}` every matching device is streamed, one JSON object a line.")
def list_devices(request: Request, server: ServerDep, online: bool | None = None,
                 limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
                 offset: DbInt = 0,
                 after: Annotated[str | None, Query(max_length=1024,
                                                    description="endpoint to start after")] = None,
                 ) -> Any:
    regs = server.registrations
    if _EXPORT_TYPE in request.headers.get("accept", ""):
        return StreamingResponse(_export(regs, online, after), media_type=_EXPORT_TYPE)
    if limit is None and not offset:  # everything, as before keyset pages existed
        return device_list(server, online, after)
    page = regs.page(after, offset + (limit or len(regs)), online)[offset:]
    body = [device_json(r) for r in page]
    response = JSONResponse(body)
    if limit is not None and len(page) == limit:
        next_url = request.url.include_query_params(after=page[-1].endpoint).remove_query_params("offset")
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


def device_list(server: Any, online: bool | None = None, after: str | None = None) -> list[dict[str, Any]]:
    """Every device (online or offline only, after an endpoint), in endpoint order, as JSON."""
    regs = server.registrations
    return [device_json(r) for r in regs.page(after, len(regs), online)]


def _export(regs: Any, online: bool | None, after: str | None) -> Iterator[bytes]:
    """Every device, a page at a time, as JSON lines (no whole-fleet list in memory)."""
    while True:
        page = regs.page(after, 1000, online)
        if not page:
            return
        yield "".join(json.dumps(device_json(r)) + "\n" for r in page).encode()
        after = page[-1].endpoint


@router.get("/{endpoint}", summary="One device's registration")
def get_device(endpoint: str, server: ServerDep) -> dict[str, Any]:
    return device_json(_registration(server, endpoint))


@router.get("/{endpoint}/latest", summary="Latest observed or read value per path")
def latest(endpoint: str, server: ServerDep) -> dict[str, Any]:
    _registration(server, endpoint)
    got = server.devices.latest(endpoint)
    return {"endpoint": endpoint,
            "values": {str(p): {"value": values_to_json({p: v})[str(p)], "time": _iso(t)}
                       for p, (v, t) in sorted(got.items())}}


# --- single-path operations ---------------------------------------------------------------

@router.get("/{endpoint}/data/{path:path}", summary="Read")
async def read(endpoint: str, path: str, server: ServerDep, timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=1)
    return await _send(server, endpoint, ReadRequest(p), timeout, path=str(p))


@router.put("/{endpoint}/data/{path:path}", summary="Write (replace or partial update)")
async def write(endpoint: str, path: str, body: WriteBody, server: ServerDep,
                timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=2)
    values = values_from_json(body.values, server.registry, base=p, writable_only=True)
    replace = body.replace if body.replace is not None else p.level >= 3
    return await _send(server, endpoint, WriteRequest(p, values, replace=replace), timeout, path=str(p))


@router.delete("/{endpoint}/data/{path:path}", summary="Delete an object instance")
async def delete(endpoint: str, path: str, server: ServerDep, timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=2)
    return await _send(server, endpoint, DeleteRequest(p), timeout, path=str(p))


@router.post("/{endpoint}/execute/{path:path}", summary="Execute a resource")
async def execute(endpoint: str, path: str, server: ServerDep, body: ExecuteBody | None = None,
                  timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=3)
    if p.level != 3:
        raise BadRequest(f"execute names a resource (/o/i/r), got {p}")
    _check_executable(server, p)
    return await _send(server, endpoint, ExecuteRequest(p, body.args if body else None), timeout,
                       path=str(p))


@router.post("/{endpoint}/create/{path:path}", summary="Create an object instance")
async def create(endpoint: str, path: str, body: CreateBody, server: ServerDep,
                 timeout: Timeout = None) -> JSONResponse:
    p = parse_path(path, min_level=1)
    if p.level != 1:
        raise BadRequest(f"create names an object (/o), got {p}")
    values = values_from_json(body.values, server.registry, base=p)
    instances = {q.instance_id for q in values}
    if len(instances) > 1:
        raise BadRequest(f"create values name several instances: {sorted(instances)}")  # type: ignore[type-var]
    if body.instance_id is not None and instances != {body.instance_id}:
        raise BadRequest(f"create values must sit under /{p.object_id}/{body.instance_id}")
    result = await _send(server, endpoint, CreateRequest(p, values, body.instance_id), timeout,
                         path=str(p))
    return JSONResponse(result, status_code=201)


@router.get("/{endpoint}/discover/{path:path}", summary="Discover attributes and resources")
async def discover(endpoint: str, path: str, server: ServerDep, timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=1)
    return await _send(server, endpoint, DiscoverRequest(p), timeout, path=str(p))


@router.put("/{endpoint}/attributes/{path:path}", summary="Write-Attributes (null clears one)")
async def write_attributes(endpoint: str, path: str, body: AttributesBody, server: ServerDep,
                           timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=1)
    attrs = body.model_dump(include=body.model_fields_set)
    return await _send(server, endpoint, WriteAttributesRequest(p, attrs), timeout, path=str(p))


@router.post("/{endpoint}/observe/{path:path}", summary="Start observing; answers the current value")
async def observe(endpoint: str, path: str, server: ServerDep, timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=1)
    return await _send(server, endpoint, ObserveRequest(p), timeout, path=str(p), observing=True)


@router.delete("/{endpoint}/observe/{path:path}", summary="Cancel an observation")
async def cancel_observe(endpoint: str, path: str, server: ServerDep,
                         timeout: Timeout = None) -> dict[str, Any]:
    p = parse_path(path, min_level=1)
    return await _send(server, endpoint, CancelObserveRequest(p), timeout, path=str(p), observing=False)


# --- composite operations (LwM2M 1.1) ------------------------------------------------------

@router.post("/{endpoint}/composite/read", summary="Read-Composite")
async def read_composite(endpoint: str, body: PathsBody, server: ServerDep,
                         timeout: Timeout = None) -> dict[str, Any]:
    return await _send(server, endpoint, ReadCompositeRequest(_paths(body)), timeout)


@router.put("/{endpoint}/composite/write", summary="Write-Composite")
async def write_composite(endpoint: str, body: CompositeWriteBody, server: ServerDep,
                          timeout: Timeout = None) -> dict[str, Any]:
    values = values_from_json(body.values, server.registry, writable_only=True)
    return await _send(server, endpoint, WriteCompositeRequest(values), timeout)


@router.post("/{endpoint}/composite/observe", summary="Observe-Composite")
async def observe_composite(endpoint: str, body: PathsBody, server: ServerDep,
                            timeout: Timeout = None) -> dict[str, Any]:
    return await _send(server, endpoint, ObserveCompositeRequest(_paths(body)), timeout, observing=True)


@router.post("/{endpoint}/composite/observe/cancel", summary="Cancel an Observe-Composite")
async def cancel_observe_composite(endpoint: str, body: PathsBody, server: ServerDep,
                                   timeout: Timeout = None) -> dict[str, Any]:
    return await _send(server, endpoint, CancelObserveCompositeRequest(_paths(body)), timeout,
                       observing=False)
