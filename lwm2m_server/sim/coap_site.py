"""The CoAP side of a simulated device: one aiocoap resource that serves every LwM2M path.

This is the one place where CoAP requests become LwM2M operations on ``SimDevice`` and where
``RequestError`` and ``CodecError`` become CoAP response codes (LwM2M 1.1 §6.3, §8.2):
GET = Read (Accept 40: Discover; Observe 0: Observe), PUT = Write replace (no payload but a
query: Write-Attributes), POST = Execute on an executable resource, Create on an object,
partial Write otherwise, DELETE = Delete.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap.numbers.codes import Code

from ..codecs import CodecError, ContentFormat, codec_for
from ..model import Node, Path, PathError, ResourceInstance, ResourceType, SingleResource
from .errors import (BAD_REQUEST, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE, UNSUPPORTED_CONTENT_FORMAT,
                     RequestError)
from .observe import Observation

from .host import DeviceHost

__all__ = ["DeviceSite", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = frozenset({ContentFormat.TEXT, ContentFormat.OPAQUE, ContentFormat.TLV,
                               ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR,
                               ContentFormat.OLD_TLV})


def _error(e: RequestError) -> aiocoap.Message:
    return aiocoap.Message(code=Code(e.code[0] * 32 + e.code[1]), payload=e.message.encode())


class DeviceSite(aiocoap.resource.ObservableResource):
    """The root resource of a device's context."""

    def __init__(self, device: DeviceHost) -> None:
        super().__init__()
        self.device = device
        # observation -> (aiocoap's ServerObservation, the request that set it up)
        self._server_side: dict[Observation, tuple[Any, aiocoap.Message]] = {}

    def get_link_description(self) -> Any:
        return None

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    # --- codecs ---------------------------------------------------------------
    def encode(self, node: Node, path: Path, accept: int | None) -> tuple[int, bytes]:
        if accept is not None:
            fmt = int(accept)
            if fmt not in SUPPORTED_FORMATS:
                raise RequestError(NOT_ACCEPTABLE, f"content format {fmt} is not supported")
        elif isinstance(node, (SingleResource, ResourceInstance)):
            fmt = ContentFormat.OPAQUE if node.type is ResourceType.OPAQUE else ContentFormat.TEXT
        else:
            fmt = self.device.config.preferred_format
        try:
            return fmt, codec_for(fmt).encode(node, path, self.device.registry)
        except CodecError as e:
            raise RequestError(NOT_ACCEPTABLE, f"{path} cannot be sent as format {fmt}: {e}") from None

    def decode(self, request: aiocoap.Message, path: Path) -> Node:
        cf = request.opt.content_format
        if cf is None:
            raise RequestError(BAD_REQUEST, "a payload needs a Content-Format")
        if int(cf) not in SUPPORTED_FORMATS:
            raise RequestError(UNSUPPORTED_CONTENT_FORMAT, f"content format {int(cf)} is not supported")
        try:
            return codec_for(int(cf)).decode(request.payload, path, self.device.registry)
        except CodecError as e:
            raise RequestError(BAD_REQUEST, f"payload does not decode: {e}") from None

    # --- requests ---------------------------------------------------------------
    @staticmethod
    def path_of(request: aiocoap.Message) -> Path:
        segs = [s for s in request.opt.uri_path]
        if segs and segs[-1] == "":
            segs = segs[:-1]
        try:
            return Path.parse("/" + "/".join(segs))
        except PathError as e:
            raise RequestError(BAD_REQUEST, str(e)) from None

    def read_response(self, request: aiocoap.Message, path: Path) -> aiocoap.Message:
        node = self.device.read(path)
        fmt, payload = self.encode(node, path, request.opt.accept)
        return aiocoap.Message(code=Code.CONTENT, payload=payload, content_format=fmt)

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        dev = self.device
        if dev.faults.latency_ms:
            await asyncio.sleep(dev.faults.latency_ms / 1000)
        if dev.bootstrap_site is not None:  # bootstrapping: only the bootstrap interface
            return dev.bootstrap_site.render(request)  # type: ignore[no-any-return]
        try:
            return self._dispatch(request)
        except RequestError as e:
            return _error(e)

    def _dispatch(self, request: aiocoap.Message) -> aiocoap.Message:
        dev = self.device
        path = self.path_of(request)
        code = request.code
        if code == Code.GET:
            if request.opt.accept == ContentFormat.LINK_FORMAT:
                return aiocoap.Message(code=Code.CONTENT, payload=dev.discover(path).encode(),
                                       content_format=ContentFormat.LINK_FORMAT)
            if request.opt.observe == 1:
                self.cancel_observations(path)
            return self.read_response(request, path)
        if code == Code.PUT:
            if not request.payload and request.opt.content_format is None:
                if not request.opt.uri_query:
                    raise RequestError(BAD_REQUEST, "Write needs a payload, Write-Attributes a query")
                dev.write_attributes(path, list(request.opt.uri_query))
                return aiocoap.Message(code=Code.CHANGED)
            dev.write(path, self.decode(request, path), replace=True)
            return aiocoap.Message(code=Code.CHANGED)
        if code == Code.POST:
            if path.is_object:
                ids = dev.create(path, self.decode(request, path))
                return aiocoap.Message(code=Code.CREATED,
                                       location_path=(str(path.object_id), str(ids[0])))
            if path.is_resource:
                obj = dev.objects.get(path.object_id)  # type: ignore[arg-type]
                rdef = obj.definition.resources.get(path.resource_id) if obj else None  # type: ignore[arg-type]
                if rdef is None or rdef.executable or request.opt.content_format is None:
                    try:
                        args = request.payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise RequestError(BAD_REQUEST, "Execute arguments must be UTF-8 text") from None
                    dev.execute(path, args)
                    return aiocoap.Message(code=Code.CHANGED)
            if path.is_root:
                raise RequestError(METHOD_NOT_ALLOWED, "POST / is not an LwM2M operation")
            dev.write(path, self.decode(request, path), replace=False)
            return aiocoap.Message(code=Code.CHANGED)
        if code == Code.DELETE:
            dev.delete(path)
            return aiocoap.Message(code=Code.DELETED)
        raise RequestError(METHOD_NOT_ALLOWED, f"{code} is not supported by this device")

    # --- observe -------------------------------------------------------------------
    def cancel_observations(self, path: Path) -> None:
        """A GET with Observe 1 (RFC 7641 §3.6) ends the observations of ``path``.

        Servers send it with a new token, so the observations are matched by path (one
        server per device here); each gets a last answer without Observe.
        """
        for obs in list(self.device.observations.get(path, [])):
            servobs, original = self._server_side.pop(obs, (None, None))
            self._forget(obs)
            if servobs is not None:
                try:
                    last = self.read_response(original, path)
                except RequestError as e:
                    last = _error(e)
                servobs.trigger(last, is_last=True)

    def _forget(self, obs: Observation) -> None:
        obs.close()
        self._server_side.pop(obs, None)
        lst = self.device.observations.get(obs.path, [])
        if obs in lst:
            lst.remove(obs)
        if not lst:
            self.device.observations.pop(obs.path, None)

    async def add_observation(self, request: aiocoap.Message, serverobservation: Any) -> None:
        dev = self.device
        if request.code != Code.GET or request.opt.accept == ContentFormat.LINK_FORMAT:
            return
        try:
            path = self.path_of(request)
            values = dev.read_values(path)
            self.encode(dev.read(path), path, request.opt.accept)
        except RequestError:
            return  # render answers the error; no observation is set up

        def send() -> None:
            try:
                msg = self.read_response(request, path)
                # Confirmable, so a server that forgot the observation answers with a Reset.
                msg.mtype = aiocoap.CON
                serverobservation.trigger(msg)
            except RequestError as e:
                serverobservation.trigger(_error(e), is_last=True)

        obs = Observation(path, lambda: dev.effective_attributes(path),
                          lambda: dev.read_values(path), send)
        dev.observations.setdefault(path, []).append(obs)
        self._server_side[obs] = (serverobservation, request)
        serverobservation.accept(lambda: self._forget(obs))
        obs.started(values)
