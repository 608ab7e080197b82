"""The server's CoAP resources: /rd (Register), /rd/{id} (Update, De-register), /dp (Send),
/bs (Bootstrap-Request, when a bootstrap server is attached).

Translates CoAP messages to calls on the protocol layer and protocol errors to CoAP codes, in
this one place.
"""

from __future__ import annotations

import logging
from typing import Any

from aiocoap import Code, Message
from aiocoap.pipe import Pipe
from aiocoap.resource import PathCapable, Resource

from ..protocol.devices import DeviceManager
from ..protocol.errors import LwM2MError, RegistrationError
from ..protocol.registration import RegistrationManager
from ..protocol.security import PLAIN, Authentication
from .block1 import BoundedBlock1Spool
from .datagrams import host_port
from .dtls import bootstrap_only, session_identity
from .rawmsg import RawGet

__all__ = ["LwM2MSite", "peer_address", "authentication", "coap_code"]

log = logging.getLogger(__name__)



def coap_code(dotted: str) -> Code:
    """``"4.12"`` as an aiocoap Code (4.00 for anything that is not a client or server error)."""
    cls, _, detail = dotted.partition(".")
    if cls in ("4", "5") and detail.isdigit() and int(detail) < 32:
        return Code((int(cls) << 5) | int(detail))
    return Code.BAD_REQUEST


def peer_address(remote: object) -> tuple[str, int]:
    """(host, port) of an aiocoap remote, IPv4-mapped addresses as plain IPv4."""
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr is None:
        host, _, port = str(getattr(remote, "hostinfo", "")).rpartition(":")
        return host.strip("[]"), int(port or 5683)
    return host_port(sockaddr)


def authentication(remote: object) -> Authentication:
    """The channel a request came over: plain CoAP, or DTLS with the identity it proved."""
    found = session_identity(remote)
    if found is None:
        if getattr(remote, "scheme", "coap") == "coaps":  # DTLS without a finished handshake
            raise RegistrationError("DTLS session has no authenticated identity", "4.03")
        return PLAIN
    identity, cred = found
    return Authentication("psk", identity, getattr(cred, "endpoint", None),
                          getattr(cred, "purpose", None))


def _ready(response: Message) -> Any:
    async def build() -> Message:
        return response
    return build


def _error(code: str, message: str) -> Message:
    return Message(code=coap_code(code), payload=message.encode("utf-8")[:1024])


class LwM2MSite(Resource, PathCapable):
    """The root resource: dispatches by path and method, maps errors to CoAP codes."""

    def __init__(self, registrations: RegistrationManager, devices: DeviceManager,
                 max_payload: int = 64 * 1024) -> None:
        super().__init__()
        # aiocoap's Block1 assembly has no size limit and answers a gap with 5.00 (block1.py).
        self._block1 = BoundedBlock1Spool(max_payload)
        self.registrations = registrations
        self.devices = devices
        self.max_payload = max_payload
        # Resources of other services by first path segment (e.g. "fw": firmware downloads).
        self.mounts: dict[str, Resource] = {}
        # The bootstrap server (coap/bootstrap.py), when this process runs one: serves POST /bs.
        self.bootstrap: Any = None

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        mounted = self.mounts.get(request.opt.uri_path[0]) if request.opt.uri_path else None
        if mounted is not None:
            return await mounted.needs_blockwise_assembly(request)
        return True

    def get_link_description(self) -> dict[str, str] | None:
        return None

    async def render_to_pipe(self, pipe: Pipe) -> None:
        """aiocoap's per-request path, without its blockwise wrapper for requests that carry no
        Block1/Block2 option and go to no mounted resource (every Register and Update of a
        device that needs no blockwise transfer): the wrapper costs two awaited calls, a block
        key and a cache look-up per request, and changes nothing for them (render answers
        with at most 1,024 bytes of payload, which fits any message)."""
        request = pipe.request
        opt = request.opt
        path = opt.uri_path
        if (opt.block1 is not None or opt.block2 is not None
                or (path and path[0] in self.mounts)):
            await super().render_to_pipe(pipe)
            return
        response = await self.render(request)
        if len(response.payload) > request.remote.maximum_payload_size:  # never, as said; but
            response = await self._block2.extract_or_insert(request, _ready(response))
        pipe.add_response(response, is_last=True)

    async def render(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        method = request.code
        mounted = self.mounts.get(path[0]) if path else None
        if bootstrap_only(request.remote) and path != ("bs",):
            return _error("4.03", "this port serves the bootstrap interface (/bs) only")
        if mounted is not None:
            return await mounted.render(request)
        try:
            if path == ("rd",) and method == Code.POST:
                return await self._register(request)
            if len(path) == 2 and path[0] == "rd":
                if method == Code.POST:
                    return await self._update(request, path[1])
                if method == Code.DELETE:
                    await self.registrations.deregister(path[1], authentication(request.remote))
                    return Message(code=Code.DELETED)
                return _error("4.05", f"{method} is not allowed on /rd/{{id}}: use POST or DELETE")
            if path == ("dp",) and method == Code.POST:
                return await self._send(request)
            if path == ("bs",) and self.bootstrap is not None:
                if method != Code.POST:
                    return _error("4.05", f"{method} is not allowed on /bs: use POST")
                code, message = await self.bootstrap.request(request.opt.uri_query, request.remote,
                                                            authentication(request.remote))
                return Message(code=Code.CHANGED) if code == "2.04" else _error(code, message)
            if path in (("rd",), ("dp",)):
                return _error("4.05", f"{method} is not allowed on /{path[0]}: use POST")
            return _error("4.04", "not found: this server offers /rd and /dp")
        except RegistrationError as e:
            if e.coap_code == "4.03":  # a security refusal: one line, with its reason
                log.warning("%s /%s from %s refused: %s", method, "/".join(path),
                            "%s:%s" % peer_address(request.remote), e.message)
            return _error(e.coap_code, e.message)
        except LwM2MError as e:
            code = getattr(e, "coap_code", None) or ("4.04" if e.http_status == 404 else "4.00")
            return _error(code, e.message)
        except Exception:
            log.exception("handling %s /%s failed", method, "/".join(path))
            return _error("5.00", "internal server error")

    def answer_get(self, request: RawGet, host: str, port: int
                   ) -> tuple[int, list[tuple[int, bytes]], bytes] | None:
        """A plain GET read off its datagram (coap/rawmsg.py), for a mounted resource that
        answers such requests itself (``/fw`` blocks); None leaves it to aiocoap and ``render``."""
        mounted = self.mounts.get(request.path[0]) if request.path else None
        answer = getattr(mounted, "answer_get", None)
        return answer(request, host, port) if answer is not None else None

    def _payload(self, request: Message) -> bytes:
        payload = bytes(request.payload)
        if len(payload) > self.max_payload:
            raise RegistrationError(f"payload of {len(payload)} bytes is larger than {self.max_payload}", "4.13")
        return payload

    def _check_format(self, request: Message) -> None:
        cf = request.opt.content_format
        if request.payload and cf is not None and int(cf) != 40:
            raise RegistrationError(f"registration payload must be link-format (40), got content format {int(cf)}",
                                    "4.15")

    async def _register(self, request: Message) -> Message:
        payload = self._payload(request)
        self._check_format(request)
        reg = await self.registrations.register(request.opt.uri_query, payload,
                                                peer_address(request.remote), request.remote,
                                                authentication(request.remote))
        return Message(code=Code.CREATED, location_path=("rd", reg.registration_id))

    async def _update(self, request: Message, registration_id: str) -> Message:
        payload = self._payload(request)
        self._check_format(request)
        await self.registrations.update(registration_id, request.opt.uri_query, payload,
                                        peer_address(request.remote), request.remote,
                                        authentication(request.remote))
        return Message(code=Code.CHANGED)

    async def _send(self, request: Message) -> Message:
        payload = self._payload(request)
        cf = request.opt.content_format
        address = peer_address(request.remote)
        reg = self.registrations.by_address(address)
        if reg is not None:  # an unknown sender is refused by handle_send
            await self.registrations.policy.check_same_channel(reg, authentication(request.remote),
                                                               "Send")
        await self.devices.handle_send(address, payload,
                                       int(cf) if cf is not None else None)
        return Message(code=Code.CHANGED)
