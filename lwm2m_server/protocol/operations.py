"""The device-management operations (LwM2M 1.1 §6.3, §6.4): one handler per request type that
turns a request into CoAP exchanges and the device's answers into a response.

Read, Write, Execute, Create, Delete, Discover, Write-Attributes, the composite operations, and
Observe / Cancel Observation (handed to :class:`~.observations.Observations`). Requests reach
here validated (``validation.py``); :meth:`Operations.execute` also counts each one in /metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..codecs import ContentFormat, codec_for
from ..logs import REQUEST_ID
from ..metrics import REQUEST_SECONDS, REQUESTS
from ..model import ObjectRegistry, Path, PathError
from .errors import DeviceError, DeviceOffline, DeviceTimeout, InvalidRequest
from .exchange import Exchange
from .formats import MULTI_FORMATS, formats_for, single_format
from .latest import LatestValues
from .observations import Observations
from .payloads import decode, decode_multi, device_failure, encode, encode_multi, parse_discover
from .registration import Registration
from .requests import (CancelObserveCompositeRequest, CancelObserveRequest, CreateRequest,
                       CreateResponse, DeleteRequest, DeviceRequest, DeviceResponse,
                       DiscoverRequest, DiscoverResponse, EmptyResponse, ExecuteRequest,
                       ObserveCompositeRequest, ObserveRequest, ReadCompositeRequest, ReadRequest,
                       ReadResponse, WriteAttributesRequest, WriteCompositeRequest, WriteRequest,
                       operation_name)
from .transport import IncomingResponse, OutgoingRequest

log = logging.getLogger(__name__)

__all__ = ["Operations"]

_Handler = Callable[[Registration, Any, float], Awaitable[DeviceResponse]]


class Operations:
    """Carries out one validated request on a reachable device."""

    def __init__(self, exchange: Exchange, observations: Observations, latest: LatestValues,
                 registry: ObjectRegistry) -> None:
        self._x = exchange
        self._observations = observations
        self._latest = latest
        self._registry = registry
        self._handlers: dict[type, _Handler] = {
            ReadRequest: self._read, ObserveRequest: self._observe, WriteRequest: self._write,
            ExecuteRequest: self._execute, CreateRequest: self._create, DeleteRequest: self._delete,
            DiscoverRequest: self._discover, WriteAttributesRequest: self._write_attributes,
            CancelObserveRequest: self._cancel_observe, CancelObserveCompositeRequest: self._cancel_observe,
            ReadCompositeRequest: self._read_composite, ObserveCompositeRequest: self._read_composite,
            WriteCompositeRequest: self._write_composite,
        }

    async def execute(self, reg: Registration, request: DeviceRequest, timeout: float) -> DeviceResponse:
        """Carry out ``request`` on ``reg`` within ``timeout`` seconds, counted in /metrics."""
        op = operation_name(request)
        started = time.perf_counter()
        outcome = "ok"
        try:
            handler = self._handlers.get(type(request))
            if handler is None:  # pragma: no cover
                raise InvalidRequest(f"unsupported request {type(request).__name__}")
            return await handler(reg, request, timeout)
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
            elapsed = time.perf_counter() - started
            REQUESTS.inc(op, outcome)
            REQUEST_SECONDS.observe(elapsed, op)
            # Info when a REST call caused it (the line carries its request id), else debug:
            # a rollout's many requests would drown the log.
            log.log(logging.INFO if REQUEST_ID.get() else logging.DEBUG, "%s %s on %s: %s in %.1f ms",
                    op, getattr(request, "path", ""), reg.endpoint, outcome, elapsed * 1000,
                    extra={"fields": {"operation": op, "endpoint": reg.endpoint,
                                      "path": str(getattr(request, "path", "")),
                                      "outcome": outcome, "duration_ms": round(elapsed * 1000, 1)}})

    def _formats(self, reg: Registration, multi: bool = False, write: bool = False) -> list[int]:
        return formats_for(reg, multi, self._x.formats.remembered(reg.endpoint), write)

    def _expect(self, reg: Registration, resp: IncomingResponse, codes: tuple[str, ...], what: str) -> None:
        if resp.code not in codes:
            raise device_failure(reg, resp, what)

    # --- one path -----------------------------------------------------------------------
    async def _read(self, reg: Registration, request: ReadRequest, timeout: float) -> DeviceResponse:
        path = request.path
        seg = self._x.segments(reg, path)
        what = f"read {path}"
        resp, fmt = await self._x.with_formats(reg, self._formats(reg),
                                               lambda f: OutgoingRequest("GET", seg, accept=f), timeout, what)
        self._expect(reg, resp, ("2.05",), what)
        values = decode(self._registry, reg, resp, fmt, path, what)
        self._latest.put(reg.endpoint, values)
        return ReadResponse(dict(values))

    async def _observe(self, reg: Registration, request: ObserveRequest, timeout: float) -> DeviceResponse:
        seg = self._x.segments(reg, request.path)
        return await self._observations.observe(
            reg, (request.path,), lambda f: OutgoingRequest("GET", seg, accept=f, observe=0),
            self._formats(reg), timeout, f"observe {request.path}")

    async def _write(self, reg: Registration, request: WriteRequest, timeout: float) -> DeviceResponse:
        path = request.path
        method = "PUT" if request.replace else "POST"
        seg = self._x.segments(reg, path)
        single = single_format(self._registry, path, request.values)
        formats = ([single] if single is not None else []) + self._formats(reg, write=True)
        payloads = {f: encode(self._registry, request.values, path, f) for f in formats[:1]}

        def make(f: int) -> OutgoingRequest:
            if f not in payloads:
                payloads[f] = encode(self._registry, request.values, path, f)
            return OutgoingRequest(method, seg, payload=payloads[f], content_format=f)

        what = f"write {path}"
        resp, _ = await self._x.with_formats(reg, formats, make, timeout, what)
        self._expect(reg, resp, ("2.04", "2.01"), what)
        self._latest.put(reg.endpoint, request.values)
        return EmptyResponse(resp.code)

    async def _execute(self, reg: Registration, request: ExecuteRequest, timeout: float) -> DeviceResponse:
        payload = (request.args or "").encode("utf-8")
        resp = await self._x.roundtrip(reg, OutgoingRequest(
            "POST", self._x.segments(reg, request.path), payload=payload,
            content_format=ContentFormat.TEXT if payload else None), timeout)
        self._expect(reg, resp, ("2.04",), f"execute {request.path}")
        return EmptyResponse(resp.code)

    async def _create(self, reg: Registration, request: CreateRequest, timeout: float) -> DeviceResponse:
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
                and self._formats(reg, write=True)[0] in MULTI_FORMATS:
            # TLV is optional for 1.1+ clients (Wakaama's 1.1 client has SenML only and answers a
            # TLV payload with 4.00): for one that prefers SenML or LwM2M CBOR the server picks
            # the id, and the names carry it.
            iid = self._free_instance_id(reg, path)
        if request.instance_id is None and values:
            # The caller's placeholder instance id is not sent (TLV without an instance record).
            values = {Path.of(p.object_id, iid or 0, *p.ids[2:]): v  # type: ignore[arg-type]
                      for p, v in values.items()}
        seg = self._x.segments(reg, path)
        # Without an instance id only TLV can say "resources of a new instance" (§7.4.3).
        create_formats = self._formats(reg, write=True) if iid is not None else [int(ContentFormat.TLV)]
        resp, _ = await self._x.with_formats(
            reg, create_formats,
            lambda f: OutgoingRequest("POST", seg, payload=encode(
                self._registry, values, path, f, iid, create=True), content_format=f), timeout, what)
        self._expect(reg, resp, ("2.01",), what)
        created = self._created_path(reg, resp, path, iid)
        self._latest.put(reg.endpoint, {Path.of(*created.ids, *p.ids[2:]): v for p, v in values.items()})
        return CreateResponse(created)

    async def _delete(self, reg: Registration, request: DeleteRequest, timeout: float) -> DeviceResponse:
        resp = await self._x.roundtrip(reg, OutgoingRequest("DELETE", self._x.segments(reg, request.path)),
                                       timeout)
        self._expect(reg, resp, ("2.02",), f"delete {request.path}")
        self._latest.drop_under(reg.endpoint, request.path)
        return EmptyResponse(resp.code)

    async def _discover(self, reg: Registration, request: DiscoverRequest, timeout: float) -> DeviceResponse:
        what = f"discover {request.path}"
        resp = await self._x.roundtrip(reg, OutgoingRequest(
            "GET", self._x.segments(reg, request.path), accept=ContentFormat.LINK_FORMAT), timeout)
        self._expect(reg, resp, ("2.05",), what)
        return DiscoverResponse(parse_discover(reg, resp, what))

    async def _write_attributes(self, reg: Registration, request: WriteAttributesRequest,
                                timeout: float) -> DeviceResponse:
        query = tuple(k if v is None else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in request.attributes.items())
        resp = await self._x.roundtrip(reg, OutgoingRequest(
            "PUT", self._x.segments(reg, request.path), query=query), timeout)
        self._expect(reg, resp, ("2.04",), f"write-attributes {request.path}")
        await self._observations.remember_attributes(reg.endpoint, request.path, request.attributes)
        return EmptyResponse(resp.code)

    async def _cancel_observe(self, reg: Registration,
                              request: CancelObserveRequest | CancelObserveCompositeRequest,
                              timeout: float) -> DeviceResponse:
        key = (request.path,) if isinstance(request, CancelObserveRequest) else tuple(request.paths)
        await self._observations.cancel(reg.endpoint, key)
        return EmptyResponse("2.05")

    # --- several paths (LwM2M 1.1 composite operations) --------------------------------------
    async def _read_composite(self, reg: Registration,
                              request: ReadCompositeRequest | ObserveCompositeRequest,
                              timeout: float) -> DeviceResponse:
        paths = list(request.paths)
        what = f"{operation_name(request)} {', '.join(str(p) for p in paths)}"
        formats = self._formats(reg, multi=True)
        seg = self._x.segments(reg, Path())

        def make_fetch(f: int, observe: int | None = None) -> OutgoingRequest:
            return OutgoingRequest("FETCH", seg, payload=codec_for(f).encode_paths(paths),  # type: ignore[attr-defined]
                                   content_format=f, accept=f, observe=observe)

        if isinstance(request, ObserveCompositeRequest):
            return await self._observations.observe(reg, tuple(paths), lambda f: make_fetch(f, 0),
                                                    formats, timeout, what)
        resp, fmt = await self._x.with_formats(reg, formats, make_fetch, timeout, what)
        self._expect(reg, resp, ("2.05",), what)
        values = decode_multi(self._registry, reg, resp, fmt, what)
        self._latest.put(reg.endpoint, values)
        return ReadResponse(values)

    async def _write_composite(self, reg: Registration, request: WriteCompositeRequest,
                               timeout: float) -> DeviceResponse:
        what = f"write-composite {', '.join(sorted(str(p) for p in request.values))}"
        seg = self._x.segments(reg, Path())
        resp, _ = await self._x.with_formats(
            reg, self._formats(reg, multi=True, write=True),
            lambda f: OutgoingRequest("IPATCH", seg, payload=encode_multi(self._registry, request.values, f),
                                      content_format=f), timeout, what)
        self._expect(reg, resp, ("2.04",), what)
        self._latest.put(reg.endpoint, request.values)
        return EmptyResponse(resp.code)

    # --- Create's instance ids ----------------------------------------------------------------
    def _free_instance_id(self, reg: Registration, object_path: Path) -> int:
        """The lowest instance id of ``object_path`` that neither the registration nor a value seen
        since (a Create without an Update after it) shows on the device."""
        oid = object_path.object_id
        used = {p.instance_id for p in reg.objects if p.object_id == oid}
        used.update(p.instance_id for p in self._latest.paths(reg.endpoint) if p.object_id == oid)
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
