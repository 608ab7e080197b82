"""The protocol layer's Transport over aiocoap: requests and observations sent to devices from the
server's one context (so they leave from the port the device registered to)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiocoap import Code, Context, Message
from aiocoap import error as coap_error
from aiocoap.numbers.contentformat import ContentFormat as CoapContentFormat

from ..protocol.transport import (BACKGROUND, IncomingResponse, OutgoingRequest, TransportBusy,
                                  TransportError, TransportPreempted, TransportTimeout)

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


def _abandon(msg: Message) -> bool:
    """Stop the confirmable exchange of ``msg`` nobody waits for any more; True if it never left.

    aiocoap keeps retransmitting a request whose caller gave up, and holds back every other
    confirmable request to that peer until the last retransmission (~93 s, NSTART=1). Its message
    layer offers no cancel, so this takes the message out of the backlog (never sent) or ends
    its exchange (no more retransmissions; the next request to the peer goes out).
    """
    remote, mid = msg.remote, msg.mid
    manager = getattr(getattr(remote, "interface", None), "_ctx", None)
    backlogs = getattr(manager, "_backlogs", None)
    active = getattr(manager, "_active_exchanges", None)
    if remote is None or mid is None or backlogs is None or active is None:
        return False
    waiting = backlogs.get(remote)
    if waiting:
        for i, (queued, _) in enumerate(waiting):
            if queued is msg:
                del waiting[i]
                return True
    entry = active.pop((remote, mid), None)
    if entry is not None:
        entry[1].cancel()  # the next retransmission
        with contextlib.suppress(Exception):
            manager._continue_backlog(remote)  # type: ignore[union-attr]
    return False


class AiocoapTransport:
    """Sends :class:`OutgoingRequest` values through ``context`` and maps the answers and errors.

    Requests made in the ``BACKGROUND`` context give way: an operator's request to the same
    address first ends the background exchange in flight (which fails with TransportPreempted).
    """

    def __init__(self, context: Context) -> None:
        self.context = context
        self._background: dict[tuple[str, int], tuple[Message, asyncio.Future[None]]] = {}

    def _preempt(self, address: tuple[str, int]) -> None:
        entry = self._background.pop(address, None)
        if entry is not None:
            msg, preempted = entry
            _abandon(msg)
            if not preempted.done():
                preempted.set_result(None)

    async def request(self, peer: object | None, address: tuple[str, int], request: OutgoingRequest,
                      timeout: float) -> IncomingResponse:
        background = BACKGROUND.get()
        if not background:
            self._preempt(address)
        preempted: asyncio.Future[None] | None = None
        if background:
            preempted = asyncio.get_running_loop().create_future()
        try:
            return await self._request(peer, address, request, timeout, preempted)
        finally:
            if preempted is not None:
                entry = self._background.get(address)
                if entry is not None and entry[1] is preempted:
                    del self._background[address]

    async def _request(self, peer: object | None, address: tuple[str, int],
                       request: OutgoingRequest, timeout: float,
                       preempted: asyncio.Future[None] | None) -> IncomingResponse:
        msg = _message(peer, address, request)
        # A device whose buffer is smaller than a payload answers 4.13 with a Block1 option giving
        # the block size it takes (RFC 7959 §2.9.3; Wakaama's client does). aiocoap 0.4 fails on
        # that answer to a request it sent whole, so a payload that fits one message goes out
        # unmanaged and, on such a 4.13, again block-wise at the device's size (kept on its address).
        remote = msg.remote
        limit = min(1024, 2 ** (getattr(remote, "maximum_block_size_exp", 6) + 4))
        whole = request.method in ("PUT", "POST", "IPATCH") and 0 < len(request.payload) <= limit
        deadline = asyncio.get_running_loop().time() + timeout
        pr = self.context.request(msg, handle_blockwise=not whole)
        if preempted is not None:
            self._preempt(address)  # at most one background exchange per address
            self._background[address] = (msg, preempted)
        resp = await self._response(pr, timeout, msg, preempted)
        block1 = resp.opt.block1
        if whole and resp.code == Code.REQUEST_ENTITY_TOO_LARGE and block1 is not None \
                and 2 ** (block1.size_exponent + 4) < len(request.payload):
            for r in (remote, resp.remote):
                if r is not None:
                    r.maximum_block_size_exp = block1.size_exponent
            msg = _message(resp.remote, address, request)
            left = max(deadline - asyncio.get_running_loop().time(), 0.05)
            resp = await self._response(self.context.request(msg), left, msg, None)
        return to_incoming(resp)

    @staticmethod
    async def _response(pr: object, timeout: float, msg: Message,
                        preempted: asyncio.Future[None] | None) -> Message:
        """The answer to ``msg``; on a timeout, a cancel or a preemption its exchange is ended."""
        response: asyncio.Future[Message] = asyncio.ensure_future(pr.response)  # type: ignore[attr-defined]
        racers: set[asyncio.Future[Any]] = {response}
        if preempted is not None:
            racers.add(preempted)
        try:
            done, _ = await asyncio.wait(racers, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the caller gave up: so does the exchange
            response.cancel()
            _abandon(msg)
            raise
        if response not in done:
            response.cancel()
            never_sent = _abandon(msg)
            if preempted is not None and preempted in done:
                raise TransportPreempted("gave way to an operator's request")
            if never_sent:
                raise TransportBusy(f"not sent within {timeout:g} s: another exchange with the "
                                    "device was in flight") from None
            raise TransportTimeout(f"no answer within {timeout:g} s")
        try:
            return response.result()
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
