"""Device management: operations sent to registered devices, content-format choice and fallback,
observations, queue mode, latest values and the Send operation (LwM2M 1.1 §6.3-6.4, §7).

``DeviceManager.send(endpoint, request)`` is the one entry point the REST API and the rollout
engine use. Never imports aiocoap: requests go out through a :class:`~.transport.Transport`.

Observations are persisted (:class:`~.observation.StoredObservation`) and re-established: at
start-up for devices still registered (not in queue mode), on a device's next Update when one is
not active, and after every new Register (the client dropped them, LwM2M 1.1 §6.2.1). They go
on Cancel and on De-register. After a Register the server also reads /3/0 (and /33100/0) once in
the background (``read_on_register``), so firmware version and model show up in latest values.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ..codecs import CodecError, ContentFormat, codec_for
from ..events import EventBus, new_event
from ..metrics import NOTIFICATIONS, QUEUED_REQUESTS, REQUEST_SECONDS, REQUESTS, SEND
from ..model import (NodeError, ObjectInstance, ObjectRegistry, Path, PathError, Value,
                     ValueTypeError, build, flatten)
from ..model.types import ResourceType
from .errors import (DeviceError, DeviceNotFound, DeviceOffline, DeviceTimeout, InvalidRequest,
                     LwM2MError, Queued, RequestNotFound)
from .jsonable import plain_values
from .observation import OBSERVATION_ORIGINS, StoredObservation
from .queue import QueuedRequest
from .registration import Registration, RegistrationManager
from .requests import (ATTRIBUTE_NAMES, CancelObserveCompositeRequest, CancelObserveRequest,
                       CreateRequest, CreateResponse, DeleteRequest, DeviceRequest, DeviceResponse,
                       DiscoverRequest, DiscoverResponse, EmptyResponse, ExecuteRequest,
                       ObserveCompositeRequest, ObserveRequest, ReadCompositeRequest, ReadRequest,
                       ReadResponse, WriteAttributesRequest, WriteCompositeRequest, WriteRequest,
                       operation_name, summarize)
from .transport import (IncomingResponse, ObservationHandle, OutgoingRequest, Transport,
                        TransportError, TransportTimeout)

__all__ = ["DeviceManager", "response_to_json", "formats_for"]

log = logging.getLogger(__name__)

_MULTI_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_CBOR)
_FALLBACK_CODES = ("4.06", "4.15")
_MAX_FINISHED = 100_000
# Who is sending (see DeviceManager.send's ``origin``): recorded with the observations it starts.
_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("lwm2m_request_origin", default="api")
# Read after each Register when read_on_register is on: device info, and the model object if any.
_SUMMARY_PATHS = (Path.of(3, 0), Path.of(33100, 0))


def _now() -> datetime:
    return datetime.now(timezone.utc)


# Formats that carry LwM2M nodes; LwM2M JSON only decodes (1.0 devices answer in it).
_NODE_FORMATS = {int(f) for f in (ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.SENML_JSON,
                                  ContentFormat.SENML_CBOR, ContentFormat.LWM2M_JSON,
                                  ContentFormat.OLD_JSON, ContentFormat.LWM2M_CBOR)}
_DECODE_ONLY = {int(ContentFormat.LWM2M_JSON), int(ContentFormat.OLD_JSON)}


def formats_for(reg: Registration, multi: bool = False, remembered: int | None = None,
                write: bool = False) -> list[int]:
    """The content formats to try for ``reg``, best first (DESIGN.md "Formats"): the one that
    worked last, the root link's ``ct``, then SenML CBOR for 1.1+ and TLV for 1.0, then the
    others it may speak. ``multi`` keeps formats that carry several paths (composite
    operations); ``write`` drops formats the server only decodes. A ``ct`` the server cannot use
    (e.g. plain CBOR) is skipped."""
    if reg.lwm2m_version == "1.0":
        order = [ContentFormat.TLV, ContentFormat.LWM2M_JSON, ContentFormat.SENML_JSON,
                 ContentFormat.SENML_CBOR]
    else:
        order = [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV,
                 ContentFormat.LWM2M_CBOR]
    out: list[int] = []
    for f in [remembered, reg.preferred_format, *order]:
        if f is None:
            continue
        f = int(f)
        if f in out or f not in _NODE_FORMATS or (multi and f not in _MULTI_FORMATS) \
                or (write and f in _DECODE_ONLY):
            continue
        out.append(f)
    return out


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


def _decode_node(data: bytes, fmt: int, path: Path, registry: ObjectRegistry) -> dict[Path, Value]:
    codec = codec_for(fmt)
    if fmt in _MULTI_FORMATS and path.level < 3 or fmt in _MULTI_FORMATS and not data:
        values = codec.decode_values(data, registry)  # type: ignore[attr-defined]
        return {p: v for p, v in values.items() if p.starts_with(path)}
    return flatten(codec.decode(data, path, registry), path)


class _Observation:
    __slots__ = ("endpoint", "key", "paths", "handle", "fmt")

    def __init__(self, endpoint: str, key: tuple[Path, ...], handle: ObservationHandle, fmt: int | None) -> None:
        self.endpoint = endpoint
        self.key = key
        self.handle = handle
        self.fmt = fmt


class DeviceManager:
    """Sends device-management requests, keeps observations, queues requests for sleeping
    devices and keeps the latest value per path."""

    def __init__(self, registrations: RegistrationManager, store: Any, events: EventBus,
                 registry: ObjectRegistry, *, request_timeout: float = 10.0,
                 queue_timeout: float = 86400.0, awake_window: float = 93.0,
                 read_on_register: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.registrations = registrations
        self.transport: Transport | None = None
        self._store = store
        self._events = events
        self._registry = registry
        self.request_timeout = request_timeout
        self.queue_timeout = queue_timeout
        self.awake_window = awake_window
        self._clock = clock
        self._formats: dict[str, int] = {}
        self._awake_until: dict[str, float] = {}
        self._gone: dict[str, asyncio.Future[str]] = {}
        self._observations: dict[tuple[str, tuple[Path, ...]], _Observation] = {}
        self._latest: dict[str, dict[Path, tuple[Value, datetime]]] = {}
        self._queued: OrderedDict[str, QueuedRequest] = OrderedDict()
        self._queued_req: dict[str, DeviceRequest] = {}
        self._pending: dict[str, list[str]] = {}
        self._waiters: dict[str, asyncio.Future[DeviceResponse]] = {}
        self._delivering: dict[str, asyncio.Task[None]] = {}
        self.read_on_register = read_on_register
        # Persisted observations per endpoint (mirror of the store), Write-Attributes set per path,
        # and the per-endpoint background task that re-observes and reads the device summary.
        self._persisted: dict[str, dict[tuple[Path, ...], StoredObservation]] = {}
        self._attributes: dict[tuple[str, Path], dict[str, Any]] = {}
        self._background: dict[str, asyncio.Task[None]] = {}
        # A start-up with many stored observations, or a burst of Registers, re-observes and reads
        # this many devices at a time, not all at once.
        self._background_slots = asyncio.Semaphore(64)
        registrations.listeners.append(self._on_registration)

    # --- public API -------------------------------------------------------------
    def latest(self, endpoint: str) -> dict[Path, tuple[Value, datetime]]:
        """The last observed, read or sent value per path of ``endpoint``, with when it arrived."""
        return dict(self._latest.get(endpoint, {}))

    def get_request(self, request_id: str) -> QueuedRequest:
        """A queued request by id (for polling); RequestNotFound (404) when unknown."""
        q = self._queued.get(request_id)
        if q is None:
            raise RequestNotFound(f"no queued request {request_id!r}")
        return q

    def queued_for(self, endpoint: str) -> list[QueuedRequest]:
        """The requests still waiting for ``endpoint``, oldest first."""
        return [self._queued[i] for i in self._pending.get(endpoint, [])]

    def end_awake_window(self, endpoint: str) -> None:
        """Treat a queue-mode device as asleep from now on (its awake window is over)."""
        self._awake_until.pop(endpoint, None)

    def observations(self, endpoint: str) -> list[tuple[Path, ...]]:
        """The paths (one tuple per observation) the server observes on ``endpoint``."""
        return [k[1] for k in self._observations if k[0] == endpoint]

    def stored_observations(self, endpoint: str) -> list[StoredObservation]:
        """The persisted observations of ``endpoint``, active or waiting to be re-established."""
        return list(self._persisted.get(endpoint, {}).values())

    async def send(self, endpoint: str, request: DeviceRequest, timeout: float | None = None, *,
                   origin: str = "api") -> DeviceResponse:
        """Send ``request`` to the device registered as ``endpoint`` and return its response.

        Raises DeviceNotFound, DeviceOffline, DeviceTimeout, DeviceError, InvalidRequest; for a
        sleeping queue-mode device the request is persisted and Queued(request_id) is raised at
        once (timeout None or 0) or after waiting up to ``timeout`` seconds for the result.
        ``origin`` ("api", "rollout", "internal") is recorded with an observation it starts.
        """
        if origin not in OBSERVATION_ORIGINS:
            raise InvalidRequest(f"origin must be one of {', '.join(OBSERVATION_ORIGINS)}, got {origin!r}")
        _ORIGIN.set(origin)  # every send sets it: within this call it is this call's origin
        reg = self.registrations.get(endpoint)
        if reg is None:
            raise DeviceNotFound(f"no device registered as {endpoint!r}")
        op = operation_name(request)
        self._validate(reg, request)
        if not reg.online:
            REQUESTS.inc(op, "offline")
            raise DeviceOffline(f"device {endpoint!r} is offline: its lifetime passed without an update")
        if reg.queue_mode and not self._awake(endpoint):
            return await self._enqueue_and_wait(reg, request, timeout)
        wait = timeout if timeout else self.request_timeout
        try:
            return await self._execute(reg, request, wait)
        except DeviceTimeout:
            if reg.queue_mode:  # it fell asleep: keep the request for its next wake-up
                self._awake_until.pop(endpoint, None)
                return await self._enqueue_and_wait(reg, request, None)
            raise

    # --- validation -------------------------------------------------------------
    def _validate(self, reg: Registration, request: DeviceRequest) -> None:
        if isinstance(request, (ReadCompositeRequest, WriteCompositeRequest, ObserveCompositeRequest,
                                CancelObserveCompositeRequest)):
            if reg.lwm2m_version == "1.0":
                raise InvalidRequest(f"{operation_name(request)} needs LwM2M 1.1; {reg.endpoint!r} "
                                     "registered with 1.0")
            paths = list(getattr(request, "paths", ())) or list(getattr(request, "values", {}))
            if not paths:
                raise InvalidRequest("a composite operation needs at least one path")
            if isinstance(request, WriteCompositeRequest):
                self._check_writable(request.values)
                self._check_types(request.values)
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
        if isinstance(request, (DeleteRequest,)) and path.level not in (1, 2):
            raise InvalidRequest(f"delete needs an object or object instance path, got {path}")
        if isinstance(request, WriteRequest):
            if path.level < 2:
                raise InvalidRequest(f"write needs an instance, resource or resource-instance path, got {path}")
            if not request.values:
                raise InvalidRequest("write needs at least one value")
            outside = [str(p) for p in request.values if not p.starts_with(path)]
            if outside:
                raise InvalidRequest(f"{', '.join(outside)} not under {path}")
            # Refused here, before sending or queueing: nothing invalid waits for a sleeping device.
            self._check_writable(request.values)
            self._check_types(request.values)
        if isinstance(request, CreateRequest):
            self._check_writable(request.values, create=True)
            self._check_types(request.values)
        if isinstance(request, WriteAttributesRequest):
            bad = [k for k in request.attributes if k not in ATTRIBUTE_NAMES]
            if bad:
                raise InvalidRequest(f"unknown attributes {bad}; allowed: {', '.join(ATTRIBUTE_NAMES)}")
            if path.is_root:
                raise InvalidRequest("write-attributes needs an object, instance or resource path")
        if isinstance(request, (ReadRequest, ObserveRequest, DiscoverRequest)) and path.is_root:
            raise InvalidRequest(f"{operation_name(request)} needs an object path or deeper")

    def _check_types(self, values: Mapping[Path, Value]) -> None:
        """Every value fits its resource's type (and multiple resources are addressed by instance)."""
        for inst in {Path(p.ids[:2]) for p in values}:
            try:
                build({p: v for p, v in values.items() if p.starts_with(inst)}, inst, self._registry)
            except (NodeError, ValueTypeError, PathError) as e:
                raise InvalidRequest(f"values do not fit the object definition: {e}") from None

    def _check_writable(self, values: Mapping[Path, Value], create: bool = False) -> None:
        for p, v in values.items():
            odef = self._registry.get(p.object_id) if p.object_id is not None else None
            if odef is None:
                raise InvalidRequest(f"object {p.object_id} is not defined on this server; cannot write {p}")
            if p.level < 3:
                raise InvalidRequest(f"{p} is not a resource path")
            rdef = odef.resources.get(p.resource_id)  # type: ignore[arg-type]
            if rdef is None:
                raise InvalidRequest(f"object {p.object_id} has no resource {p.resource_id}")
            if not rdef.writable and not create:
                raise InvalidRequest(f"{p} ({rdef.name}) is not writable")

    # --- the request/response mapping --------------------------------------------
    def _segments(self, reg: Registration, path: Path) -> tuple[str, ...]:
        root = tuple(s for s in reg.root_path.split("/") if s)
        return root + tuple(path.segments())

    def _encode(self, node_values: Mapping[Path, Value], path: Path, fmt: int, create_id: int | None = None,
                create: bool = False) -> bytes:
        try:
            if create:
                inst_path = path.child(create_id if create_id is not None else 0)
                node = build(node_values, inst_path, self._registry)
                assert isinstance(node, ObjectInstance)
                if fmt in _MULTI_FORMATS:  # names carry the instance id
                    return codec_for(fmt).encode(node, inst_path, self._registry)
                # TLV: an instance record when the id is given, bare resources when the device picks
                return codec_for(fmt).encode(ObjectInstance(create_id, node.resources), path, self._registry)
            if fmt in _MULTI_FORMATS and path.level < 3:
                return codec_for(fmt).encode_values(node_values, self._registry, path)  # type: ignore[attr-defined]
            node = build(node_values, path, self._registry)
            return codec_for(fmt).encode(node, path, self._registry)
        except (NodeError, ValueTypeError, PathError, CodecError) as e:
            raise InvalidRequest(f"values do not fit the object definition: {e}") from None

    def _single_format(self, path: Path, values: Mapping[Path, Value]) -> int | None:
        """text/plain (or opaque) for one single-instance resource, where it fits."""
        if len(values) != 1 or path not in values or path.level < 3:
            return None
        rdef = self._registry.resource_for(path)
        if rdef is not None and rdef.multiple and path.is_resource:
            return None
        rtype = rdef.type if rdef else None
        if rtype is ResourceType.OPAQUE or isinstance(values[path], bytes):
            return ContentFormat.OPAQUE
        return ContentFormat.TEXT

    async def _execute(self, reg: Registration, request: DeviceRequest, timeout: float) -> DeviceResponse:
        op = operation_name(request)
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._dispatch(reg, request, timeout)
        except DeviceTimeout:
            outcome = "timeout"
            raise
        except DeviceOffline:
            outcome = "offline"
            raise
        except DeviceError:
            outcome = "device_error"
            raise
        except InvalidRequest:
            outcome = "invalid"
            raise
        finally:
            REQUESTS.inc(op, outcome)
            REQUEST_SECONDS.observe(time.perf_counter() - started, op)

    async def _roundtrip(self, reg: Registration, req: OutgoingRequest, timeout: float) -> IncomingResponse:
        if self.transport is None:
            raise DeviceOffline("the CoAP endpoint is not running")
        gone = self._gone.get(reg.endpoint)
        if gone is None or gone.done():
            gone = self._gone[reg.endpoint] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self.transport.request(
            self.registrations.peer(reg.endpoint), reg.address, req, timeout))
        racers: set[asyncio.Future[Any]] = {task, gone}
        done, _ = await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            task.cancel()
            raise DeviceOffline(f"device {reg.endpoint!r} went offline during the request: {gone.result()}")
        try:
            resp = task.result()
        except TransportTimeout:
            raise DeviceTimeout(f"device {reg.endpoint!r} did not answer within {timeout:g} s") from None
        except TransportError as e:
            raise DeviceError(f"device {reg.endpoint!r} could not be reached: {e}") from None
        self._mark_awake(reg.endpoint)
        return resp

    def _fail(self, reg: Registration, resp: IncomingResponse, what: str) -> DeviceError:
        detail = resp.payload[:200].decode("utf-8", "replace") if resp.payload else ""
        msg = f"device {reg.endpoint!r} answered {resp.code} to {what}"
        return DeviceError(msg + (f": {detail}" if detail else ""), resp.code)

    def _learn_format(self, ep: str, fmt: int, refused: bool) -> None:
        """Try ``fmt`` first for ``ep`` from now on, if the device refused (4.06/4.15) the formats
        tried before it. A format that worked at the first try teaches nothing, and it may be one
        the operation imposed (TLV for a Create without an id, SenML for a composite): remembering
        it would replace the device's own preference (its root ``ct``) for every later request."""
        if refused and fmt not in (ContentFormat.TEXT, ContentFormat.OPAQUE):
            self._formats[ep] = fmt

    async def _with_formats(self, reg: Registration, formats: list[int],
                            make: Callable[[int], OutgoingRequest], timeout: float,
                            what: str) -> tuple[IncomingResponse, int]:
        """Send ``make(fmt)`` for each format until the device stops answering 4.06/4.15."""
        deadline = time.monotonic() + timeout
        resp: IncomingResponse | None = None
        for fmt in formats:
            left = max(deadline - time.monotonic(), 0.05)
            resp = await self._roundtrip(reg, make(fmt), left)
            if resp.code not in _FALLBACK_CODES:
                if resp.success:
                    self._learn_format(reg.endpoint, fmt, refused=fmt != formats[0])
                return resp, fmt
        assert resp is not None
        raise self._fail(reg, resp, f"{what} in every format it may support "
                                    f"({', '.join(str(f) for f in formats)})")

    def _decode(self, reg: Registration, resp: IncomingResponse, fmt: int | None, path: Path,
                what: str) -> dict[Path, Value]:
        cf = resp.content_format if resp.content_format is not None else fmt
        if cf is None:
            raise DeviceError(f"device {reg.endpoint!r} answered {what} without a content format",
                              resp.code)
        try:
            return _decode_node(resp.payload, cf, path, self._registry)
        except (CodecError, NodeError, ValueTypeError, PathError, AttributeError) as e:
            raise DeviceError(f"device {reg.endpoint!r} answered {what} with a payload that does not "
                              f"decode as content format {cf}: {e}", resp.code) from None

    def _decode_multi(self, reg: Registration, resp: IncomingResponse, fmt: int, what: str) -> dict[Path, Value]:
        cf = resp.content_format if resp.content_format is not None else fmt
        try:
            return codec_for(cf).decode_values(resp.payload, self._registry)  # type: ignore[attr-defined]
        except (CodecError, NodeError, ValueTypeError, PathError, AttributeError) as e:
            raise DeviceError(f"device {reg.endpoint!r} answered {what} with a payload that does not "
                              f"decode as content format {cf}: {e}", resp.code) from None

    async def _dispatch(self, reg: Registration, request: DeviceRequest, timeout: float) -> DeviceResponse:
        ep = reg.endpoint
        remembered = self._formats.get(ep)
        if isinstance(request, (ReadRequest, ObserveRequest)):
            path = request.path
            seg = self._segments(reg, path)
            observe = 0 if isinstance(request, ObserveRequest) else None
            what = f"{operation_name(request)} {path}"
            if observe is not None:
                return await self._observe(reg, (path,), lambda f: OutgoingRequest(
                    "GET", seg, accept=f, observe=0), formats_for(reg, False, remembered), timeout, what)
            resp, fmt = await self._with_formats(reg, formats_for(reg, False, remembered),
                                                 lambda f: OutgoingRequest("GET", seg, accept=f), timeout, what)
            if resp.code != "2.05":
                raise self._fail(reg, resp, what)
            values: Mapping[Path, Value] = self._decode(reg, resp, fmt, path, what)
            self._store_latest(ep, values)
            return ReadResponse(dict(values))
        if isinstance(request, WriteRequest):
            path = request.path
            method = "PUT" if request.replace else "POST"
            seg = self._segments(reg, path)
            what = f"write {path}"
            single = self._single_format(path, request.values)
            formats = ([single] if single is not None else []) + formats_for(reg, False, remembered, True)
            payloads = {f: self._encode(request.values, path, f) for f in formats[:1]}

            def make_write(f: int) -> OutgoingRequest:
                if f not in payloads:
                    payloads[f] = self._encode(request.values, path, f)
                return OutgoingRequest(method, seg, payload=payloads[f], content_format=f)

            resp, _ = await self._with_formats(reg, formats, make_write, timeout, what)
            if resp.code not in ("2.04", "2.01"):
                raise self._fail(reg, resp, what)
            self._store_latest(ep, request.values)
            return EmptyResponse(resp.code)
        if isinstance(request, ExecuteRequest):
            what = f"execute {request.path}"
            payload = (request.args or "").encode("utf-8")
            resp = await self._roundtrip(reg, OutgoingRequest(
                "POST", self._segments(reg, request.path), payload=payload,
                content_format=ContentFormat.TEXT if payload else None), timeout)
            if resp.code != "2.04":
                raise self._fail(reg, resp, what)
            return EmptyResponse(resp.code)
        if isinstance(request, CreateRequest):
            path = request.path
            what = f"create in {path}"
            values = request.values
            if request.instance_id is not None:
                bad = [p for p in values if not p.starts_with(path.child(request.instance_id))]
            else:
                iids = {p.instance_id for p in values}
                bad = [p for p in values if not p.starts_with(path)] if len(iids) <= 1 else list(values)
            if bad:
                raise InvalidRequest(f"create values must lie in one instance of {path}: {[str(p) for p in bad]}")
            iid = request.instance_id
            if iid is None and reg.lwm2m_version != "1.0" and reg.preferred_format is not None \
                    and formats_for(reg, False, remembered, True)[0] in _MULTI_FORMATS:
                # TLV is optional for 1.1+ clients (Wakaama's 1.1 client has SenML only and answers a
                # TLV payload with 4.00): for one that prefers SenML or LwM2M CBOR the server picks
                # the id, and the names carry it.
                iid = self._free_instance_id(reg, path)
            if request.instance_id is None and values:
                # The caller's placeholder instance id is not sent (TLV without an instance record).
                values = {Path.of(p.object_id, iid or 0, *p.ids[2:]): v  # type: ignore[arg-type]
                          for p, v in values.items()}
            seg = self._segments(reg, path)
            # Without an instance id only TLV can say "resources of a new instance" (§7.4.3).
            create_formats = (formats_for(reg, False, remembered, True) if iid is not None
                              else [int(ContentFormat.TLV)])
            resp, _ = await self._with_formats(
                reg, create_formats,
                lambda f: OutgoingRequest("POST", seg, payload=self._encode(
                    values, path, f, iid, create=True), content_format=f), timeout, what)
            if resp.code != "2.01":
                raise self._fail(reg, resp, what)
            created = self._created_path(reg, resp, path, iid)
            self._store_latest(ep, {Path.of(*created.ids, *p.ids[2:]): v for p, v in values.items()})
            return CreateResponse(created)
        if isinstance(request, DeleteRequest):
            what = f"delete {request.path}"
            resp = await self._roundtrip(reg, OutgoingRequest("DELETE", self._segments(reg, request.path)), timeout)
            if resp.code != "2.02":
                raise self._fail(reg, resp, what)
            latest = self._latest.get(ep)
            if latest:
                for p in [p for p in latest if p.starts_with(request.path)]:
                    del latest[p]
            return EmptyResponse(resp.code)
        if isinstance(request, DiscoverRequest):
            what = f"discover {request.path}"
            resp = await self._roundtrip(reg, OutgoingRequest(
                "GET", self._segments(reg, request.path), accept=ContentFormat.LINK_FORMAT), timeout)
            if resp.code != "2.05":
                raise self._fail(reg, resp, what)
            return DiscoverResponse(self._parse_discover(reg, resp, what))
        if isinstance(request, WriteAttributesRequest):
            what = f"write-attributes {request.path}"
            query = tuple(k if v is None else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in request.attributes.items())
            resp = await self._roundtrip(reg, OutgoingRequest(
                "PUT", self._segments(reg, request.path), query=query), timeout)
            if resp.code != "2.04":
                raise self._fail(reg, resp, what)
            await self._remember_attributes(ep, request.path, request.attributes)
            return EmptyResponse(resp.code)
        if isinstance(request, (CancelObserveRequest, CancelObserveCompositeRequest)):
            key = (request.path,) if isinstance(request, CancelObserveRequest) else tuple(request.paths)
            obs = self._observations.pop((ep, key), None)
            stored = self._persisted.get(ep, {}).get(key)
            if obs is None and stored is None:
                raise InvalidRequest(f"no observation of {', '.join(str(p) for p in key)} on {ep!r}")
            if obs is not None:
                obs.handle.cancel()
            if stored is not None:
                await self._forget(ep, key)
            return EmptyResponse("2.05")
        if isinstance(request, (ReadCompositeRequest, ObserveCompositeRequest)):
            paths = list(request.paths)
            what = f"{operation_name(request)} {', '.join(str(p) for p in paths)}"
            formats = formats_for(reg, True, remembered)
            seg = self._segments(reg, Path())

            def make_fetch(f: int, observe: int | None = None) -> OutgoingRequest:
                return OutgoingRequest("FETCH", seg, payload=codec_for(f).encode_paths(paths),  # type: ignore[attr-defined]
                                       content_format=f, accept=f, observe=observe)

            if isinstance(request, ObserveCompositeRequest):
                return await self._observe(reg, tuple(paths), lambda f: make_fetch(f, 0), formats, timeout, what)
            resp, fmt = await self._with_formats(reg, formats, make_fetch, timeout, what)
            if resp.code != "2.05":
                raise self._fail(reg, resp, what)
            values = self._decode_multi(reg, resp, fmt, what)
            self._store_latest(ep, values)
            return ReadResponse(values)
        if isinstance(request, WriteCompositeRequest):
            what = f"write-composite {', '.join(sorted(str(p) for p in request.values))}"
            seg = self._segments(reg, Path())

            def make_patch(f: int) -> OutgoingRequest:
                try:
                    payload = codec_for(f).encode_values(request.values, self._registry)  # type: ignore[attr-defined]
                except (NodeError, ValueTypeError, CodecError) as e:
                    raise InvalidRequest(f"values do not fit the object definition: {e}") from None
                return OutgoingRequest("IPATCH", seg, payload=payload, content_format=f)

            resp, _ = await self._with_formats(reg, formats_for(reg, True, remembered, True), make_patch,
                                               timeout, what)
            if resp.code != "2.04":
                raise self._fail(reg, resp, what)
            self._store_latest(ep, request.values)
            return EmptyResponse(resp.code)
        raise InvalidRequest(f"unsupported request {type(request).__name__}")  # pragma: no cover

    def _free_instance_id(self, reg: Registration, object_path: Path) -> int:
        """The lowest instance id of ``object_path`` that neither the registration nor a value seen
        since (a Create without an Update after it) shows on the device."""
        oid = object_path.object_id
        used = {p.instance_id for p in reg.objects if p.object_id == oid}
        used.update(p.instance_id for p in self._latest.get(reg.endpoint, {}) if p.object_id == oid)
        free = next((i for i in range(65535) if i not in used), None)
        if free is None:
            raise InvalidRequest(f"{object_path} has no free instance id left on {reg.endpoint!r}")
        return free

    def _created_path(self, reg: Registration, resp: IncomingResponse, path: Path, iid: int | None) -> Path:
        loc = [s for s in resp.location_path if s]
        root = [s for s in reg.root_path.split("/") if s]
        if root and loc[: len(root)] == root:
            loc = loc[len(root):]
        if loc:
            try:
                p = Path.parse("/" + "/".join(loc))
                if p.level == 2:
                    return p
            except PathError:
                pass
        if iid is not None:
            return path.child(iid)
        raise DeviceError(f"device {reg.endpoint!r} created an instance in {path} but gave no valid "
                          f"Location-Path ({'/'.join(resp.location_path)!r})", resp.code)

    def _parse_discover(self, reg: Registration, resp: IncomingResponse, what: str) -> list[dict[str, Any]]:
        from ..codecs.link_format import parse_discover

        try:
            links = parse_discover(resp.payload, reg.root_path)
        except (CodecError, ValueError) as e:
            raise DeviceError(f"device {reg.endpoint!r} answered {what} with bad link-format: {e}",
                              resp.code) from None
        return [{"path": p, "attributes": attrs} for p, attrs in links.items()]

    # --- observations ---------------------------------------------------------
    async def _observe(self, reg: Registration, paths: tuple[Path, ...],
                       make: Callable[[int], OutgoingRequest], formats: list[int], timeout: float,
                       what: str) -> ReadResponse:
        if self.transport is None:
            raise DeviceOffline("the CoAP endpoint is not running")
        ep = reg.endpoint
        key = (ep, paths)
        old = self._observations.pop(key, None)
        if old is not None:
            old.handle.cancel()
        composite = len(paths) != 1 or make(formats[0]).method == "FETCH"
        resp: IncomingResponse | None = None
        for fmt in formats:
            holder: dict[str, _Observation] = {}

            def on_notify(n: IncomingResponse, fmt: int = fmt, holder: dict[str, _Observation] = holder) -> None:
                self._notification(reg, paths, composite, n, fmt, holder.get("o"))

            def on_end(reason: str, holder: dict[str, _Observation] = holder) -> None:
                o = holder.get("o")
                if o is not None and self._observations.get(key) is o:
                    del self._observations[key]
                    self._events.publish(new_event("observation_ended", ep, paths=[str(p) for p in paths],
                                                   reason=reason))

            try:
                resp, handle = await self.transport.observe(self.registrations.peer(ep), reg.address,
                                                            make(fmt), timeout, on_notify, on_end)
            except TransportTimeout:
                raise DeviceTimeout(f"device {ep!r} did not answer within {timeout:g} s") from None
            except TransportError as e:
                raise DeviceError(f"device {ep!r} could not be reached: {e}") from None
            self._mark_awake(ep)
            if resp.code in _FALLBACK_CODES:
                handle.cancel()
                continue
            if resp.code != "2.05":
                handle.cancel()
                raise self._fail(reg, resp, what)
            try:
                values = (self._decode_multi(reg, resp, fmt, what) if composite
                          else self._decode(reg, resp, fmt, paths[0], what))
            except DeviceError:
                handle.cancel()
                raise
            obs = _Observation(ep, paths, handle, fmt)
            holder["o"] = obs
            prev = self._observations.get(key)
            if prev is not None:  # observed again meanwhile (e.g. re-established and by a caller)
                # Locally only: a cancel sent now could cross this new observation on the device;
                # the old one's next notification gets a Reset.
                prev.handle.cancel(notify_device=False)
            self._observations[key] = obs
            try:
                await self._persist(ep, paths, composite)
            except Exception:  # not kept if it cannot be persisted: nothing half-written
                if self._observations.get(key) is obs:
                    del self._observations[key]
                handle.cancel()
                raise
            self._learn_format(ep, fmt, refused=fmt != formats[0])
            self._store_latest(ep, values)
            return ReadResponse(values)
        assert resp is not None
        raise self._fail(reg, resp, f"{what} in every format it may support")

    async def _persist(self, ep: str, paths: tuple[Path, ...], composite: bool) -> None:
        """Store the observation of ``paths`` unless it is stored already (re-established)."""
        known = self._persisted.get(ep, {}).get(paths)
        if known is not None and known.composite == composite:
            return
        attrs = {} if composite else self._attributes.get((ep, paths[0]), {})
        stored = StoredObservation(ep, paths, composite, _ORIGIN.get(), _now(), dict(attrs))
        await self._store.save_observation(stored)
        self._persisted.setdefault(ep, {})[paths] = stored

    async def _forget(self, ep: str, paths: tuple[Path, ...]) -> None:
        """Remove the stored observation of ``paths`` (Cancel, or the device refuses it now)."""
        mine = self._persisted.get(ep, {})
        # Out of the mirror before the await, so a re-observe running meanwhile skips it.
        stored = mine.pop(paths, None)
        try:
            await self._store.delete_observation(ep, paths)
        except Exception:
            if stored is not None:
                self._persisted.setdefault(ep, {})[paths] = stored
            raise
        if not mine:
            self._persisted.pop(ep, None)

    async def _remember_attributes(self, ep: str, path: Path, attributes: Mapping[str, Any]) -> None:
        """Keep the Write-Attributes set on ``path``; a stored observation of it keeps them too."""
        attrs = dict(self._attributes.get((ep, path), {}))
        for k, v in attributes.items():
            if v is None:
                attrs.pop(k, None)
            else:
                attrs[k] = v
        if attrs:
            self._attributes[(ep, path)] = attrs
        else:
            self._attributes.pop((ep, path), None)
        stored = self._persisted.get(ep, {}).get((path,))
        if stored is not None and not stored.composite and stored.attributes != attrs:
            stored = replace(stored, attributes=attrs)
            await self._store.save_observation(stored)
            self._persisted[ep][(path,)] = stored

    def _notification(self, reg: Registration, paths: tuple[Path, ...], composite: bool,
                      n: IncomingResponse, fmt: int, obs: _Observation | None) -> None:
        ep = reg.endpoint
        NOTIFICATIONS.inc()
        self._mark_awake(ep)
        what = f"notification of {', '.join(str(p) for p in paths)}"
        try:
            if not n.success:
                raise self._fail(reg, n, what)
            values = (self._decode_multi(reg, n, fmt, what) if composite
                      else self._decode(reg, n, fmt, paths[0], what))
        except DeviceError as e:
            self._events.publish(new_event("notification_error", ep, paths=[str(p) for p in paths],
                                           error=e.message, coap_code=e.coap_code))
            return
        self._store_latest(ep, values)
        self._events.publish(new_event("notification", ep, paths=[str(p) for p in paths],
                                       values=plain_values(values)))

    # --- latest values, Send --------------------------------------------------------
    def _store_latest(self, endpoint: str, values: Mapping[Path, Value],
                      when: datetime | None = None) -> None:
        if not values:
            return
        when = when or _now()
        latest = self._latest.setdefault(endpoint, {})
        for p, v in values.items():
            latest[p] = (v, when)
        self._store.save_values_nowait(endpoint, values, when)

    async def handle_send(self, address: tuple[str, int], payload: bytes,
                          content_format: int | None) -> str:
        """The Send operation (POST /dp): decode, keep as latest values, publish a "send" event.

        Returns the endpoint. Raises DeviceNotFound (no registration from that address),
        InvalidRequest (payload or content format not usable); nothing is stored then.
        """
        reg = self.registrations.by_address(address)
        if reg is None:
            SEND.inc("unknown_device")
            raise DeviceNotFound(f"no registration from {address[0]}:{address[1]}")
        if content_format is None or int(content_format) not in _MULTI_FORMATS:
            SEND.inc("bad_format")
            raise InvalidRequest("Send needs SenML CBOR (112), SenML JSON (110) or LwM2M CBOR (11544), "
                                 f"got content format {content_format}", "4.15")
        try:
            records = codec_for(content_format).decode_timestamped(payload, self._registry)  # type: ignore[attr-defined]
        except (CodecError, NodeError, ValueTypeError, PathError) as e:
            SEND.inc("bad_payload")
            raise InvalidRequest(f"Send payload does not decode: {e}") from None
        merged: dict[Path, Value] = {}
        for ts, values in records:
            when = datetime.fromtimestamp(ts, timezone.utc) if ts else None
            self._store_latest(reg.endpoint, values, when)
            merged.update(values)
        self._mark_awake(reg.endpoint)
        SEND.inc("ok")
        self._events.publish(new_event("send", reg.endpoint, values=plain_values(merged),
                                       records=[{"time": ts, "values": plain_values(v)} for ts, v in records]))
        return reg.endpoint

    # --- queue mode -------------------------------------------------------------
    def _awake(self, endpoint: str) -> bool:
        return self._awake_until.get(endpoint, 0.0) > self._clock()

    def _mark_awake(self, endpoint: str) -> None:
        reg = self.registrations.get(endpoint)
        if reg is not None and reg.queue_mode:
            self._awake_until[endpoint] = self._clock() + self.awake_window

    async def _enqueue_and_wait(self, reg: Registration, request: DeviceRequest,
                                timeout: float | None) -> DeviceResponse:
        now = _now()
        q = QueuedRequest(id=secrets.token_urlsafe(9), endpoint=reg.endpoint, request=summarize(request),
                          state="pending", created_at=now, updated_at=now,
                          expires_at=datetime.fromtimestamp(now.timestamp() + self.queue_timeout, timezone.utc))
        await self._store.save_queued(q, request)
        self._keep(q)
        self._queued_req[q.id] = request
        self._pending.setdefault(reg.endpoint, []).append(q.id)
        REQUESTS.inc(operation_name(request), "queued")
        self._events.publish(new_event("request_queued", reg.endpoint, request_id=q.id, request=q.request))
        if not timeout:
            raise Queued(q.id)
        fut = self._waiters.setdefault(q.id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise Queued(q.id) from None

    def _keep(self, q: QueuedRequest) -> None:
        self._queued[q.id] = q
        self._queued.move_to_end(q.id)
        while len(self._queued) > _MAX_FINISHED:
            oldest = next(iter(self._queued.values()))
            if oldest.state in ("pending", "sent"):
                break
            self._queued.popitem(last=False)

    async def _finish(self, q: QueuedRequest, state: str, response: DeviceResponse | None = None,
                      error: LwM2MError | None = None) -> None:
        done = replace(q, state=state, updated_at=_now(),
                       result=response_to_json(response) if response is not None else None,
                       error=error.message if error else None,
                       coap_code=getattr(error, "coap_code", None))
        self._keep(done)
        self._queued_req.pop(q.id, None)
        await self._store.save_queued(done, None)
        QUEUED_REQUESTS.inc(state)
        self._events.publish(new_event("queued_request_done", q.endpoint, request_id=q.id, state=state,
                                       result=done.result, error=done.error, coap_code=done.coap_code))
        fut = self._waiters.pop(q.id, None)
        if fut is not None and not fut.done():
            if response is not None:
                fut.set_result(response)
            else:
                fut.set_exception(error or DeviceError(f"queued request {q.id} {state}"))
                fut.exception()  # a waiter may have given up: do not warn about it

    async def _deliver(self, endpoint: str) -> None:
        """Send the queued requests of ``endpoint`` in order while it is awake."""
        while self._pending.get(endpoint):
            reg = self.registrations.get(endpoint)
            if reg is None or not reg.online or (reg.queue_mode and not self._awake(endpoint)):
                return
            qid = self._pending[endpoint][0]
            q = self._queued[qid]
            request = self._queued_req.get(qid)
            if request is None:
                self._pending[endpoint].pop(0)
                continue
            sent = replace(q, state="sent", updated_at=_now())
            self._keep(sent)
            await self._store.save_queued(sent, None)
            try:
                response = await self._execute(reg, request, self.request_timeout)
            except DeviceTimeout:
                back = replace(sent, state="pending", updated_at=_now())
                self._keep(back)
                await self._store.save_queued(back, None)
                self._awake_until.pop(endpoint, None)
                return
            except LwM2MError as e:
                self._pending[endpoint].pop(0)
                await self._finish(sent, "failed", error=e)
                continue
            self._pending[endpoint].pop(0)
            await self._finish(sent, "done", response)
        self._pending.pop(endpoint, None)

    def _start_delivery(self, endpoint: str) -> None:
        task = self._delivering.get(endpoint)
        if task is not None and not task.done():
            return
        if not self._pending.get(endpoint):
            return

        async def run() -> None:
            await asyncio.sleep(0.01)  # let the 2.01/2.04 leave first
            try:
                await self._deliver(endpoint)
            except Exception:
                log.exception("delivering queued requests to %s failed", endpoint)

        self._delivering[endpoint] = asyncio.ensure_future(run())

    async def _fail_queued(self, endpoint: str, reason: str) -> None:
        for qid in self._pending.pop(endpoint, []):
            q = self._queued.get(qid)
            if q is not None:
                await self._finish(q, "failed", error=DeviceOffline(reason))

    # --- registration changes ---------------------------------------------------
    def _on_registration(self, reg: Registration, kind: str) -> None:
        ep = reg.endpoint
        if kind == "registered":
            self._formats.pop(ep, None)
            for key in [k for k in self._observations if k[0] == ep]:
                # A new registration means the client dropped its observations (§6.2.1): nothing
                # to tell it (a GET with Observe=1 would reach it as a stray Read).
                self._observations.pop(key).handle.cancel(notify_device=False)
        if kind in ("registered", "updated"):
            if reg.queue_mode:
                self._awake_until[ep] = self._clock() + self.awake_window
            self._start_delivery(ep)  # also when it left queue mode with requests still queued
            if kind == "registered" and (self.read_on_register or ep in self._persisted):
                self._start_background(reg, read_summary=self.read_on_register, restart=True)
            elif kind == "updated" and self._inactive_observations(ep):
                self._start_background(reg, read_summary=False, restart=False)
            return
        # expired or deregistered: fail what waits for it.
        reason = ("its lifetime passed without an update" if kind == "expired" else "it de-registered")
        gone = self._gone.pop(ep, None)
        if gone is not None and not gone.done():
            gone.set_result(reason)
        for key in [k for k in self._observations if k[0] == ep]:
            # A device that left or went silent is not sent a cancel (CON retransmissions into
            # the void); a late notification still gets a Reset.
            self._observations.pop(key).handle.cancel(notify_device=False)
        task = self._background.pop(ep, None)
        if task is not None:
            task.cancel()
        self._awake_until.pop(ep, None)
        self._formats.pop(ep, None)
        if kind == "deregistered":  # the store dropped its values and observations with the row
            self._latest.pop(ep, None)
            self._persisted.pop(ep, None)
            for attr_key in [k for k in self._attributes if k[0] == ep]:
                del self._attributes[attr_key]
        if self._pending.get(ep):
            asyncio.ensure_future(self._fail_queued(ep, f"device {ep!r} went offline: {reason}"))

    # --- re-established observations, device summary --------------------------------
    def _inactive_observations(self, ep: str) -> bool:
        mine = self._persisted.get(ep)
        return bool(mine) and any((ep, key) not in self._observations for key in mine)  # type: ignore[union-attr]

    def _start_background(self, reg: Registration, *, read_summary: bool, restart: bool) -> None:
        """Re-observe (and read the summary) for ``reg`` in a task of its own, after the
        2.01/2.04 has left. ``restart`` replaces a task still running (a new registration)."""
        ep = reg.endpoint
        task = self._background.get(ep)
        if task is not None and not task.done():
            if not restart:
                return
            task.cancel()

        async def run() -> None:
            await asyncio.sleep(0.01)  # let the 2.01/2.04 leave first
            try:
                async with self._background_slots:
                    if read_summary:
                        await self._read_summary(reg.endpoint, reg.registration_id)
                    await self._reestablish(ep)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-observing / reading %s after its registration failed", ep)
            finally:
                if self._background.get(ep) is current:
                    del self._background[ep]

        current = self._background[ep] = asyncio.ensure_future(run())

    def _reachable(self, ep: str, registration_id: str | None = None) -> Registration | None:
        """The registration of ``ep`` if a request may go out now (online; awake if queue mode)."""
        reg = self.registrations.get(ep)
        if reg is None or not reg.online or (reg.queue_mode and not self._awake(ep)):
            return None
        if registration_id is not None and reg.registration_id != registration_id:
            return None
        return reg

    async def _read_summary(self, ep: str, registration_id: str) -> None:
        """Read /3/0 (and /33100/0 when the device has it) into latest values; failures become
        ``read_on_register_failed`` events. Only while the device is reachable: never queued."""
        for path in _SUMMARY_PATHS:
            reg = self._reachable(ep, registration_id)
            if reg is None:
                return
            if path.object_id not in reg.object_ids:
                continue
            try:
                await self._execute(reg, ReadRequest(path), self.request_timeout)
            except LwM2MError as e:
                self._events.publish(new_event("read_on_register_failed", ep, path=str(path), error=str(e),
                                               coap_code=getattr(e, "coap_code", None)))
                if isinstance(e, (DeviceTimeout, DeviceOffline)):
                    return

    async def _reestablish(self, ep: str) -> None:
        """Observe again every stored observation of ``ep`` that is not active (with its
        Write-Attributes first). One the device refuses (4.xx) is dropped; one it does not answer
        stays stored for its next Register or Update."""
        for key, stored in list(self._persisted.get(ep, {}).items()):
            reg = self._reachable(ep)
            if reg is None:
                return
            if (ep, key) in self._observations or self._persisted.get(ep, {}).get(key) is not stored:
                continue
            paths = [str(p) for p in key]
            try:
                if stored.attributes:
                    await self._execute(reg, WriteAttributesRequest(key[0], stored.attributes),
                                        self.request_timeout)
                request: DeviceRequest = (ObserveCompositeRequest(key) if stored.composite
                                          else ObserveRequest(key[0]))
                await self._execute(reg, request, self.request_timeout)
            except (DeviceTimeout, DeviceOffline) as e:
                self._events.publish(new_event("observation_restore_failed", ep, paths=paths, error=str(e)))
                return
            except LwM2MError as e:
                code = getattr(e, "coap_code", None) or ""
                if code.startswith("4."):
                    await self._forget(ep, key)
                    self._events.publish(new_event("observation_ended", ep, paths=paths,
                                                   reason=f"re-observing failed: {e}"))
                else:
                    self._events.publish(new_event("observation_restore_failed", ep, paths=paths,
                                                   error=str(e)))
                continue
            self._events.publish(new_event("observation_restored", ep, paths=paths, origin=stored.origin))

    def resume(self) -> None:
        """Once the transport is up after a restart: re-observe at once on every device still
        registered and not in queue mode (queue-mode devices: at their next Update)."""
        for ep in list(self._persisted):
            reg = self.registrations.get(ep)
            if reg is not None and reg.online and not reg.queue_mode:
                self._start_background(reg, read_summary=False, restart=False)

    # --- lifecycle -----------------------------------------------------------------
    async def restore(self) -> None:
        """Load latest values, unfinished queued requests and observations from the store."""
        self._latest = await self._store.load_latest()
        self._persisted = {}
        for stored in await self._store.load_observations():
            self._persisted.setdefault(stored.endpoint, {})[stored.paths] = stored
            if stored.attributes and not stored.composite:
                self._attributes[(stored.endpoint, stored.paths[0])] = dict(stored.attributes)
        for q, request in await self._store.load_unfinished_queued():
            q = replace(q, state="pending")
            self._keep(q)
            self._queued_req[q.id] = request
            self._pending.setdefault(q.endpoint, []).append(q.id)

    async def expire_queued(self) -> None:
        """Mark expired every queued request older than the queue timeout."""
        now = _now()
        for ep, ids in list(self._pending.items()):
            for qid in list(ids):
                q = self._queued.get(qid)
                if q is not None and q.state == "pending" and q.expires_at <= now:
                    ids.remove(qid)
                    await self._finish(q, "expired", error=DeviceTimeout(
                        f"device {ep!r} did not wake up within {self.queue_timeout:g} s"))

    async def run_housekeeping(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_queued()
            except Exception:
                log.exception("queued-request housekeeping failed")

    async def close(self) -> None:
        for obs in list(self._observations.values()):
            # The device is told to stop (no notifications to a closed port); the stored
            # observation is re-established by the next start.
            obs.handle.cancel()
        self._observations.clear()
        for t in [*self._delivering.values(), *self._background.values()]:
            t.cancel()
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
