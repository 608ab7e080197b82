"""The protocol layer's Transport over aiocoap: requests and observations sent to devices from the
server's one context (so they leave from the port the device registered to)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiocoap import Code, Context, Message
from aiocoap import error as coap_error
from aiocoap.numbers.contentformat import ContentFormat as CoapContentFormat

from ..protocol.transport import (IncomingResponse, OutgoingRequest, TransportError,
                                  TransportTimeout)

__all__ = ["AiocoapTransport", "to_incoming", "hostport"]

log = logging.getLogger(__name__)

_METHODS = {"GET": Code.GET, "PUT": Code.PUT, "POST": Code.POST, "DELETE": Code.DELETE,
            "FETCH": Code.FETCH, "IPATCH": Code.iPATCH}


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def to_incoming(msg: Message) -> IncomingResponse:
    """An aiocoap response as the protocol layer's value."""
    cf = msg.opt.content_format
    return IncomingResponse(code=msg.code.dotted, payload=bytes(msg.payload),
                            content_format=int(cf) if cf is not None else None,
                            location_path=tuple(msg.opt.location_path))


def _message(peer: object | None, address: tuple[str, int], req: OutgoingRequest) -> Message:
    msg = Message(code=_METHODS[req.method], uri_path=req.path, uri_query=req.query, payload=req.payload)
    if req.content_format is not None:
        msg.opt.content_format = CoapContentFormat(req.content_format)
    if req.accept is not None:
        msg.opt.accept = CoapContentFormat(req.accept)
    if req.observe is not None:
        msg.opt.observe = req.observe
    if peer is not None:
        msg.remote = peer
    else:
        msg.unresolved_remote = hostport(*address)
    return msg


class _Observation:
    def __init__(self, request: object, task: asyncio.Task[None] | None) -> None:
        self._request = request
        self._task = task
        self.cancelled = False

    def cancel(self, notify_device: bool = True) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        obs = getattr(self._request, "observation", None)
        if obs is not None and not obs.cancelled:
            obs.cancel()
        if self._task is not None:
            self._task.cancel()


class AiocoapTransport:
    """Sends :class:`OutgoingRequest` values through ``context`` and maps the answers and errors."""

    def __init__(self, context: Context) -> None:
        self.context = context

    async def request(self, peer: object | None, address: tuple[str, int], request: OutgoingRequest,
                      timeout: float) -> IncomingResponse:
        msg = _message(peer, address, request)
        # A device whose buffer is smaller than a payload answers 4.13 with a Block1 option giving
        # the block size it takes (RFC 7959 §2.9.3; Wakaama's client does). aiocoap 0.4 fails on
        # that answer to a request it sent whole, so a payload that fits one message goes out
        # unmanaged and, on such a 4.13, again block-wise at the device's size (kept on its address).
        remote = msg.remote
        limit = min(1024, 2 ** (getattr(remote, "maximum_block_size_exp", 6) + 4))
        whole = request.method in ("PUT", "POST", "IPATCH") and 0 < len(request.payload) <= limit
        deadline = asyncio.get_running_loop().time() + timeout
        resp = await self._response(self.context.request(msg, handle_blockwise=not whole), timeout)
        block1 = resp.opt.block1
        if whole and resp.code == Code.REQUEST_ENTITY_TOO_LARGE and block1 is not None \
                and 2 ** (block1.size_exponent + 4) < len(request.payload):
            for r in (remote, resp.remote):
                if r is not None:
                    r.maximum_block_size_exp = block1.size_exponent
            msg = _message(resp.remote, address, request)
            left = max(deadline - asyncio.get_running_loop().time(), 0.05)
            resp = await self._response(self.context.request(msg), left)
        return to_incoming(resp)

    @staticmethod
    async def _response(pr: object, timeout: float) -> Message:
        try:
            return await asyncio.wait_for(pr.response, timeout)  # type: ignore[attr-defined]
        except asyncio.TimeoutError:
            raise TransportTimeout(f"no answer within {timeout:g} s") from None
        except (coap_error.ConRetransmitsExceeded, coap_error.RequestTimedOut) as e:
            raise TransportTimeout(str(e) or type(e).__name__) from None
        except coap_error.Error as e:
            raise TransportError(str(e) or type(e).__name__) from None

    async def observe(self, peer: object | None, address: tuple[str, int], request: OutgoingRequest,
                      timeout: float, on_notify: Callable[[IncomingResponse], None],
                      on_end: Callable[[str], None]) -> tuple[IncomingResponse, _Observation]:
        msg = _message(peer, address, request)
        pr = self.context.request(msg)
        try:
            first = await asyncio.wait_for(pr.response, timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(Exception):
                pr.observation.cancel()
            raise TransportTimeout(f"no answer within {timeout:g} s") from None
        except coap_error.Error as e:
            raise TransportError(str(e) or type(e).__name__) from None
        if first.opt.observe is None or not first.code.is_successful():
            # The device answered without establishing an observation.
            handle = _Observation(pr, None)
            handle.cancel()
            if first.code.is_successful():
                on_end("the device does not support observing this path")
            return to_incoming(first), handle

        async def pump() -> None:
            reason = "cancelled"
            try:
                async for n in pr.observation:
                    on_notify(to_incoming(n))
                reason = "the device ended the observation"
            except asyncio.CancelledError:
                raise
            except coap_error.Error as e:
                reason = f"observation failed: {e or type(e).__name__}"
            except Exception as e:  # a bug in on_notify must not stay silent
                log.exception("notification handling failed")
                reason = f"notification handling failed: {e}"
            on_end(reason)

        task = asyncio.ensure_future(pump())
        handle = _Observation(pr, task)
        # Active cancel (RFC 7641 §3.6, LwM2M 1.1 §6.4.3): the same request with Observe=1 and
        # the observation's token, so the device drops the observation at once. Notifications
        # that still arrive after the local cancel are answered with a Reset, as before.
        cancel_req = OutgoingRequest(request.method, request.path, request.query, request.payload,
                                     request.content_format, request.accept, observe=1)
        token = first.token
        remote = msg.remote  # resolved when the observation was sent
        orig_cancel = handle.cancel

        def cancel(notify_device: bool = True) -> None:
            if handle.cancelled:
                return
            orig_cancel()
            if notify_device:
                asyncio.ensure_future(self._deregister(remote, address, cancel_req, token))

        handle.cancel = cancel  # type: ignore[method-assign]
        return to_incoming(first), handle

    async def _deregister(self, remote: object | None, address: tuple[str, int], req: OutgoingRequest,
                          token: bytes) -> None:
        """Send ``req`` (Observe=1) carrying ``token``; best effort, the answer is not awaited.

        aiocoap's token manager gives every request a fresh token, so this request goes straight
        to the message manager (message id, CON retransmissions) with the observation's token.
        """
        msg = _message(remote, address, req)
        try:
            interface = await self.context.find_remote_and_interface(msg)
            messages = getattr(interface, "token_interface", None)
            if messages is None or not hasattr(messages, "send_message"):
                raise TransportError("no message layer to send an observation cancel through")
            msg.token = token
            messages.send_message(msg, lambda *_: None)
        except Exception as e:  # the local cancel stands; a late notification gets a Reset
            log.debug("active observation cancel to %s failed: %s", hostport(*address), e)
