"""Registration throughput and memory of the LwM2M server core, against a bare aiocoap baseline.

Prints Registrations/s and Updates/s sustained by one server process under many concurrent
clients (UDP on 127.0.0.1; the client load runs in a separate process with one socket per
virtual client), for (1) a bare aiocoap server that answers the same requests with 2.01/2.04 and
(2) ``LwM2MServer`` with its SQLite store, and the ratio (target >= 0.5x). Then fills the server to
``--devices`` registrations (default 100,000) and prints the memory per registered device, as the
RSS growth of the server process and as traced Python allocations of the registration manager
alone (target < 10 KiB).

    python bench/registration_bench.py                 # full run (a few minutes)
    python bench/registration_bench.py --quick         # 2 s phases, 20,000 devices
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")  # exclusive ports, as the server binds them

LINKS = b'</>;rt="oma.lwm2m";ct=112,</1/0>,</3/0>,</4/0>,</5/0>,</9/0>,</33100/0>'


# --------------------------------------------------------------------------- minimal CoAP client
def _opt_nibble(x: int) -> tuple[int, bytes]:
    if x < 13:
        return x, b""
    if x < 269:
        return 13, bytes([x - 13])
    return 14, (x - 269).to_bytes(2, "big")


def coap_message(mid: int, token: bytes, path: list[str], query: list[str], payload: bytes,
                 code: int = 0x02) -> bytes:
    """A CON request (default POST) with Uri-Path, Content-Format 40 when there is a payload, Uri-Query."""
    opts: list[tuple[int, bytes]] = [(11, p.encode()) for p in path]
    if payload:
        opts.append((12, bytes([40])))
    opts += [(15, q.encode()) for q in query]
    out = bytearray([0x40 | len(token), code]) + struct.pack(">H", mid) + token
    last = 0
    for num, val in opts:
        d, dx = _opt_nibble(num - last)
        ln, lx = _opt_nibble(len(val))
        out += bytes([(d << 4) | ln]) + dx + lx + val
        last = num
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def _opt_extended(nibble: int, data: bytes, i: int) -> tuple[int, int]:
    """An option delta or length nibble with its extended bytes (RFC 7252 §3.1); (value, next i)."""
    if nibble == 13:
        return data[i] + 13, i + 1
    if nibble == 14:
        return struct.unpack(">H", data[i:i + 2])[0] + 269, i + 2
    return nibble, i


def parse_response(data: bytes) -> tuple[int, int, int, bytes, list[str]]:
    """(type, code, mid, token, location-path) of a CoAP message."""
    t = (data[0] >> 4) & 3
    tkl = data[0] & 0x0F
    code = data[1]
    mid = struct.unpack(">H", data[2:4])[0]
    token = data[4:4 + tkl]
    i = 4 + tkl
    num = 0
    loc: list[str] = []
    while i < len(data) and data[i] != 0xFF:
        b = data[i]
        i += 1
        d, i = _opt_extended(b >> 4, data, i)
        ln, i = _opt_extended(b & 0x0F, data, i)
        num += d
        if num == 8:
            loc.append(data[i:i + ln].decode())
        i += ln
    return t, code, mid, token, loc


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[bytes, asyncio.Future[tuple[int, list[str]]]] = {}
        # Sequential message ids: a reused id within EXCHANGE_LIFETIME is a duplicate to the server.
        self.mid = random.getrandbits(16)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t, code, mid, token, loc = parse_response(data)
        if t == 0:  # a separate CON response: acknowledge it
            assert self.transport is not None
            self.transport.sendto(bytes([0x60, 0]) + struct.pack(">H", mid), addr)
        if code == 0:
            return
        fut = self.waiting.pop(token, None)
        if fut is not None and not fut.done():
            fut.set_result((code, loc))


async def load(port: int, clients: int, duration: float, total: int | None, prefix: str) -> dict[str, float]:
    """Run the register phase then the update phase (or, with ``total``, register that many)."""
    loop = asyncio.get_running_loop()
    socks: list[_Client] = []
    for _ in range(clients):
        _, proto = await loop.create_datagram_endpoint(_Client, local_addr=("127.0.0.1", 0))
        socks.append(proto)
    addr = ("127.0.0.1", port)
    counter = {"n": 0}
    locations: list[list[list[str]]] = [[] for _ in socks]
    errors = {"n": 0}

    async def call(c: _Client, path: list[str], query: list[str], payload: bytes) -> tuple[int, list[str]] | None:
        c.mid = (c.mid + 1) & 0xFFFF
        mid = c.mid
        token = os.urandom(4)
        msg = coap_message(mid, token, path, query, payload)
        fut = loop.create_future()
        c.waiting[token] = fut
        for _attempt in range(3):
            assert c.transport is not None
            c.transport.sendto(msg, addr)
            try:
                return await asyncio.wait_for(asyncio.shield(fut), 2.0)
            except asyncio.TimeoutError:
                continue
        c.waiting.pop(token, None)
        errors["n"] += 1
        return None

    async def registrar(k: int, c: _Client, stop_at: float, limit: int | None) -> None:
        i = 0
        while time.monotonic() < stop_at:
            if limit is not None:
                if counter["n"] >= limit:
                    return
                counter["n"] += 1
            r = await call(c, ["rd"], [f"ep={prefix}{k}-{i}", "lt=86400", "lwm2m=1.1", "b=U"], LINKS)
            i += 1
            if r is not None and r[0] == 0x41:
                if limit is None:
                    counter["n"] += 1
                if len(locations[k]) < 50:
                    locations[k].append(r[1])

    async def updater(k: int, c: _Client, stop_at: float) -> None:
        j = 0
        while time.monotonic() < stop_at and locations[k]:
            loc = locations[k][j % len(locations[k])]
            r = await call(c, loc, ["lt=86400"], b"")
            j += 1
            if r is not None and r[0] in (0x44, 0x41):
                counter["n"] += 1

    out: dict[str, float] = {}
    if total is not None:
        t0 = time.monotonic()
        await asyncio.gather(*(registrar(k, c, t0 + 3600, total) for k, c in enumerate(socks)))
        out["registered"] = counter["n"]
        out["seconds"] = time.monotonic() - t0
    else:
        t0 = time.monotonic()
        await asyncio.gather(*(registrar(k, c, t0 + duration, None) for k, c in enumerate(socks)))
        out["register_per_s"] = counter["n"] / (time.monotonic() - t0)
        out["registers"] = counter["n"]
        print("phase", flush=True)  # tells the server side the update phase starts
        counter["n"] = 0
        t0 = time.monotonic()
        await asyncio.gather(*(updater(k, c, t0 + duration) for k, c in enumerate(socks)))
        out["update_per_s"] = counter["n"] / (time.monotonic() - t0)
        out["updates"] = counter["n"]
    out["errors"] = errors["n"]
    for c in socks:
        assert c.transport is not None
        c.transport.close()
    return out


async def run_load_process(port: int, clients: int, duration: float, total: int | None,
                           prefix: str) -> dict[str, float]:
    """Start the load generator in a separate process and return what it measured."""
    args = [sys.executable, __file__, "--load", str(port), "--clients", str(clients),
            "--duration", str(duration), "--prefix", prefix]
    if total is not None:
        args += ["--total", str(total)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    cpu0 = time.process_time()
    lines = []
    cpu_register = 0.0
    async for raw in proc.stdout:
        line = raw.decode().strip()
        if line == "phase":
            cpu_register = time.process_time() - cpu0
            cpu0 = time.process_time()
        else:
            lines.append(line)
    cpu_update = time.process_time() - cpu0
    await proc.wait()
    res: dict[str, float] = json.loads(lines[-1])
    # Server CPU seconds per operation (this process, all threads): steadier than rates on a busy
    # machine, since it does not depend on how much CPU the load process got.
    if res.get("registers"):
        res["cpu_us_per_register"] = cpu_register / res["registers"] * 1e6
    if res.get("updates"):
        res["cpu_us_per_update"] = cpu_update / res["updates"] * 1e6
    return res


# --------------------------------------------------------------------------- the servers
async def bare_server() -> tuple[object, int]:
    """aiocoap answering POST /rd with 2.01 (Location-Path rd/<n>) and POST /rd/<id> with 2.04."""
    from aiocoap import Code, Context, Message
    from aiocoap.resource import PathCapable, Resource

    class Root(Resource, PathCapable):
        n = 0

        async def render(self, request: Message) -> Message:
            if tuple(request.opt.uri_path) == ("rd",):
                Root.n += 1
                return Message(code=Code.CREATED, location_path=("rd", str(Root.n)))
            return Message(code=Code.CHANGED)

    from lwm2m_server.coap.endpoint import bound_udp_port

    ctx = await Context.create_server_context(Root(), bind=("127.0.0.1", 0), transports=["udp6"])
    return ctx, bound_udp_port(ctx)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def traced_bytes_per_registration(n: int) -> float:
    """Python allocations per registration of the registration manager alone (in-memory store)."""
    from lwm2m_server.events import EventBus
    from lwm2m_server.protocol.registration import RegistrationManager
    from lwm2m_server.store.repository import MemoryStore

    class NoStore(MemoryStore):
        async def save_registration(self, reg: object) -> None:  # keep only the manager's copy
            pass

    mgr = RegistrationManager(NoStore(), EventBus())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        await mgr.register([f"ep=mem-{i}", "lt=86400", "lwm2m=1.1", "b=U"], LINKS,
                           ("127.0.0.1", 10000 + i % 50000), object())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(mgr) == n
    return (after - before) / n


async def main(args: argparse.Namespace) -> None:
    from lwm2m_server.config import Settings
    from lwm2m_server.server import LwM2MServer

    print(f"clients: {args.clients} sockets in a separate load process; {args.duration:g} s per phase")
    ctx, port = await bare_server()
    bare = await run_load_process(port, args.clients, args.duration, None, "bare")
    await ctx.shutdown()  # type: ignore[attr-defined]
    print(f"bare aiocoap:  {bare['register_per_s']:8.0f} registrations/s  "
          f"{bare['update_per_s']:8.0f} updates/s  (errors {bare['errors']:.0f}; server CPU "
          f"{bare['cpu_us_per_register']:.0f} us/registration, {bare['cpu_us_per_update']:.0f} us/update)")

    with tempfile.TemporaryDirectory() as d:
        # The load clients answer no reads: the background device read after Register is off,
        # so both servers do the same work per request.
        settings = Settings(coap_host="127.0.0.1", coap_port=0, db_url=f"sqlite:///{d}/bench.db",
                            read_on_register=False)
        srv = LwM2MServer(settings)
        await srv.start()
        gc.collect()
        rss0 = rss_bytes()
        ours = await run_load_process(srv.coap_port, args.clients, args.duration, None, "lwm2m")
        print(f"LwM2MServer:   {ours['register_per_s']:8.0f} registrations/s  "
              f"{ours['update_per_s']:8.0f} updates/s  (errors {ours['errors']:.0f}; server CPU "
              f"{ours['cpu_us_per_register']:.0f} us/registration, {ours['cpu_us_per_update']:.0f} us/update;"
              " SQLite, group commit)")
        print(f"ratio:         {ours['register_per_s'] / bare['register_per_s']:8.2f}x registrations  "
              f"{ours['update_per_s'] / bare['update_per_s']:8.2f}x updates   (target >= 0.5x)")
        print(f"CPU ratio:     {bare['cpu_us_per_register'] / ours['cpu_us_per_register']:8.2f}x registrations  "
              f"{bare['cpu_us_per_update'] / ours['cpu_us_per_update']:8.2f}x updates   "
              "(operations per server CPU second, ours / bare)")
        have = len(srv.registrations)
        if args.devices > have:
            fill = await run_load_process(srv.coap_port, args.clients, 0, args.devices - have, "fill")
            print(f"filled to {len(srv.registrations)} registrations in {fill['seconds']:.1f} s "
                  f"(errors {fill['errors']:.0f})")
        await srv.store.flush()
        gc.collect()
        n = len(srv.registrations)
        rss1 = rss_bytes()
        print(f"memory:        {(rss1 - rss0) / n / 1024:8.2f} KiB RSS growth per registered device "
              f"at {n} registrations (whole server process; target < 10 KiB)")
        await srv.stop()
        srv.engine.dispose()
    per = await traced_bytes_per_registration(args.devices)
    print(f"memory:        {per / 1024:8.2f} KiB traced Python allocations per registration "
          f"(registration manager alone, {args.devices} registrations)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--load", type=int, help=argparse.SUPPRESS)
    p.add_argument("--total", type=int, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="b", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.load:
        res = asyncio.run(load(a.load, a.clients, a.duration, a.total, a.prefix))
        print(json.dumps(res))
    else:
        if a.quick:
            a.duration, a.devices = 2.0, 20_000
        asyncio.run(main(a))
