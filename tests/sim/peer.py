"""A small LwM2M server stand-in for the simulator's tests: CoAP /rd, file downloads, HTTP.

It follows the LwM2M 1.1 registration interface just enough to accept Register, Update and
De-register, and sends requests to the address a device registered from.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption


@dataclass
class Registration:
    endpoint: str
    query: dict[str, str]
    links: str
    remote: Any
    location: str
    updates: int = 0
    update_queries: list[dict[str, str]] = field(default_factory=list)
    registered: int = 1
    at: float = field(default_factory=time.monotonic)


class _Rd(resource.Resource):
    def __init__(self, peer: Peer) -> None:
        super().__init__()
        self.peer = peer

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        q = dict((x.split("=", 1) + [""])[:2] for x in request.opt.uri_query)
        ep = q.get("ep")
        if not ep:
            return aiocoap.Message(code=Code.BAD_REQUEST, payload=b"ep missing")
        loc = f"r{next(self.peer._ids)}"
        old = self.peer.devices.get(ep)
        reg = Registration(ep, q, request.payload.decode(), request.remote, loc,
                           registered=(old.registered + 1) if old else 1)
        self.peer.devices[ep] = reg
        self.peer.by_location[loc] = reg
        self.peer.events.append(("register", ep))
        self.peer._changed()
        return aiocoap.Message(code=Code.CREATED, location_path=("rd", loc))


class _RdEntry(resource.Resource):
    def __init__(self, peer: Peer, loc: str) -> None:
        super().__init__()
        self.peer, self.loc = peer, loc


class _RdSite(resource.Resource, resource.PathCapable):
    """/rd/<loc>: Update (POST) and De-register (DELETE)."""

    def __init__(self, peer: Peer) -> None:
        super().__init__()
        self.peer = peer

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        loc = request.opt.uri_path[0] if request.opt.uri_path else ""
        reg = self.peer.by_location.get(loc)
        if reg is None:
            return aiocoap.Message(code=Code.NOT_FOUND)
        if request.code == Code.POST:
            reg.updates += 1
            reg.remote = request.remote
            reg.update_queries.append(dict((x.split("=", 1) + [""])[:2] for x in request.opt.uri_query))
            self.peer.events.append(("update", reg.endpoint))
            self.peer._changed()
            for fut in self.peer._on_update.pop(reg.endpoint, []):
                if not fut.done():
                    fut.set_result(None)
            return aiocoap.Message(code=Code.CHANGED)
        if request.code == Code.DELETE:
            del self.peer.by_location[loc]
            self.peer.devices.pop(reg.endpoint, None)
            self.peer.events.append(("deregister", reg.endpoint))
            self.peer._changed()
            return aiocoap.Message(code=Code.DELETED)
        return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)


class _File(resource.Resource):
    """A download served with block2; ``answer_blocks`` limits how many blocks get an answer."""

    def __init__(self, data: bytes, answer_blocks: int | None = None, delay: float = 0.0) -> None:
        super().__init__()
        self.data = data
        self.answer_blocks = answer_blocks
        self.delay = delay
        self.requests = 0

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return False

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.requests += 1
        if self.answer_blocks is not None and self.requests > self.answer_blocks:
            await asyncio.sleep(3600)  # the server went away
        await asyncio.sleep(self.delay)
        num, szx = 0, 6
        if request.opt.block2 is not None:
            num, szx = request.opt.block2.block_number, min(6, request.opt.block2.size_exponent)
        size = 1 << (szx + 4)
        chunk = self.data[num * size:(num + 1) * size]
        more = (num + 1) * size < len(self.data)
        msg = aiocoap.Message(payload=chunk)
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, more, szx)
        msg.opt.size2 = len(self.data)
        return msg


class Peer:
    """Start with ``await Peer.start()``; ``uri`` is what devices are given as --server."""

    def __init__(self) -> None:
        self.devices: dict[str, Registration] = {}
        self.by_location: dict[str, Registration] = {}
        self.events: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._cond: asyncio.Condition | None = None
        self._on_update: dict[str, list[asyncio.Future[None]]] = {}
        self.site = resource.Site()
        self.site.add_resource(["rd"], _Rd(self))
        self.site.add_resource(["rd"], _RdSite(self))
        self.ctx: aiocoap.Context | None = None
        self.port = 0

    @classmethod
    async def start(cls) -> Peer:
        p = cls()
        p.ctx = await aiocoap.Context.create_server_context(p.site, bind=("127.0.0.1", 0),
                                                            transports=["udp6"])
        mi = p.ctx.request_interfaces[0].token_interface.message_interface
        p.port = mi._local_port()
        p._event = asyncio.Event()
        return p

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"

    def serve_file(self, name: str, data: bytes, answer_blocks: int | None = None,
                   delay: float = 0.0) -> str:
        f = _File(data, answer_blocks, delay)
        self.site.add_resource(["fw", name], f)
        return f"{self.uri}/fw/{name}"

    def _changed(self) -> None:
        self._event.set()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._event.clear()
                try:
                    await asyncio.wait_for(self._event.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
        await asyncio.wait_for(loop(), timeout)

    async def next_update(self, ep: str, timeout: float = 10.0) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._on_update.setdefault(ep, []).append(fut)
        await asyncio.wait_for(fut, timeout)

    def message(self, ep: str, code: Code, path: str, payload: bytes = b"", *,
                ct: int | None = None, accept: int | None = None, query: tuple[str, ...] = (),
                observe: int | None = None, mtype: Any = None) -> aiocoap.Message:
        reg = self.devices[ep]
        host, port = reg.remote.hostinfo.rsplit(":", 1)
        msg = aiocoap.Message(code=code, uri=f"coap://{host}:{port}{path}", payload=payload)
        if ct is not None:
            msg.opt.content_format = ct
        if accept is not None:
            msg.opt.accept = accept
        if query:
            msg.opt.uri_query = query
        if observe is not None:
            msg.opt.observe = observe
        if mtype is not None:
            msg.mtype = mtype
        return msg

    async def request(self, ep: str, code: Code, path: str, payload: bytes = b"", *,
                      timeout: float = 10.0, **kw: Any) -> aiocoap.Message:
        assert self.ctx is not None
        msg = self.message(ep, code, path, payload, **kw)
        return await asyncio.wait_for(self.ctx.request(msg).response, timeout)

    def observe(self, ep: str, path: str, **kw: Any) -> Any:
        assert self.ctx is not None
        return self.ctx.request(self.message(ep, Code.GET, path, observe=0, **kw))

    async def stop(self) -> None:
        if self.ctx is not None:
            await self.ctx.shutdown()


class HttpFileServer:
    """A minimal HTTP/1.1 server on 127.0.0.1 serving a few files (404 for the rest)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> HttpFileServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def serve(self, name: str, data: bytes) -> str:
        self.files["/" + name] = data
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            parts = line.split()
            data = self.files.get(parts[1]) if len(parts) > 1 else None
            if data is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def eventually(predicate: Any, timeout: float = 5.0, step: float = 0.01) -> None:
    """Wait until ``predicate()`` is true (AssertionError after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
