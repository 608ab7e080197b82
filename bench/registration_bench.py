"""Register and Update throughput and CPU of the LwM2M server core against bare aiocoap; memory.

One server process under many concurrent clients (UDP on 127.0.0.1; the load runs in a separate
process, one socket per virtual client, the same load generator for every server). For each round
it runs (1) a bare aiocoap server, an aiocoap ``Site`` whose resources answer POST /rd with 2.01
and Location-Path and POST /rd/<id> with 2.04, and (2) ``LwM2MServer`` on SQLite and on
PostgreSQL (a database of its own, created and dropped). Printed per run: Registers/s, Updates/s
and server CPU per operation (process CPU time, all threads, over the count); then min / median /
max over the rounds of the rates, of the ratio to bare aiocoap (target >= 0.8x) and of the
PostgreSQL / SQLite CPU. ``--profile`` adds a run per database under py-spy and prints where the
server's time went (bench/profile_summary.py). Then it fills a server to ``--devices``
registrations and prints the memory per registered device, as RSS growth of the server process
and as traced Python allocations of the registration manager alone (target < 10 KiB).

    python bench/registration_bench.py                          # 3 rounds of 5 s phases, 100,000 devices
    python bench/registration_bench.py --devices 0 --profile    # throughput and profile only
    python bench/registration_bench.py --quick                  # 1 round of 2 s phases, 20,000 devices
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")  # exclusive ports, as the server binds them
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lwm2m_server.coap.rawmsg import CON, encode_message, parse_message  # noqa: E402
from tests.support.proc import rss_bytes  # noqa: E402

LINKS = b'</>;rt="oma.lwm2m";ct=112,</1/0>,</3/0>,</4/0>,</5/0>,</9/0>,</33100/0>'


# --------------------------------------------------------------------------- minimal CoAP client
def coap_message(mid: int, token: bytes, path: list[str], query: list[str], payload: bytes,
                 code: int = 0x02) -> bytes:
    """A CON request (default POST) with Uri-Path, Content-Format 40 when there is a payload, Uri-Query."""
    opts: list[tuple[int, bytes]] = [(11, p.encode()) for p in path]
    if payload:
        opts.append((12, bytes([40])))
    opts += [(15, q.encode()) for q in query]
    return encode_message(CON, code, mid, token, opts, payload)


def parse_response(data: bytes) -> tuple[int, int, int, bytes, list[str]]:
    """(type, code, mid, token, location-path) of a CoAP message."""
    msg = parse_message(data)
    if msg is None:
        raise ValueError("not a CoAP message")
    return (msg.mtype, msg.code, msg.mid, msg.token,
            [v.decode() for n, v in msg.options if n == 8])


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[bytes, asyncio.Future[tuple[int, list[str]]]] = {}
        # Sequential message ids: a reused id within EXCHANGE_LIFETIME is a duplicate to the server.
        self.mid = random.getrandbits(16)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    separate = 0  # responses that came separately (after an empty ACK), all clients

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t, code, mid, token, loc = parse_response(data)
        if t == 0:  # a separate CON response: acknowledge it
            assert self.transport is not None
            self.transport.sendto(bytes([0x60, 0]) + struct.pack(">H", mid), addr)
            _Client.separate += 1
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
        out["separate_registers"] = _Client.separate
        print("phase", flush=True)  # tells the server side the update phase starts
        counter["n"] = 0
        _Client.separate = 0
        t0 = time.monotonic()
        await asyncio.gather(*(updater(k, c, t0 + duration) for k, c in enumerate(socks)))
        out["update_per_s"] = counter["n"] / (time.monotonic() - t0)
        out["updates"] = counter["n"]
        out["separate_updates"] = _Client.separate
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
    gc_time = [0.0, 0.0]  # seconds in the cycle collector: total, start of the current pass

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(on_gc)
    cpu0 = time.process_time()
    lines = []
    cpu_register = gc_register = 0.0
    try:
        async for raw in proc.stdout:
            line = raw.decode().strip()
            if line == "phase":
                cpu_register = time.process_time() - cpu0
                cpu0 = time.process_time()
                gc_register, gc_time[0] = gc_time[0], 0.0
            else:
                lines.append(line)
        cpu_update = time.process_time() - cpu0
    finally:
        gc.callbacks.remove(on_gc)
    await proc.wait()
    res: dict[str, float] = json.loads(lines[-1])
    if cpu_register:
        res["gc_share"] = (gc_register + gc_time[0]) / (cpu_register + cpu_update)
    # Server CPU seconds per operation (this process, all threads): steadier than rates on a busy
    # machine, since it does not depend on how much CPU the load process got.
    if res.get("registers"):
        res["cpu_us_per_register"] = cpu_register / res["registers"] * 1e6
    if res.get("updates"):
        res["cpu_us_per_update"] = cpu_update / res["updates"] * 1e6
    return res


# --------------------------------------------------------------------------- the servers
async def bare_server() -> tuple[object, int]:
    """The baseline: an aiocoap ``Site`` as its examples build one, POST /rd answering 2.01 with
    Location-Path rd/<n> and POST /rd/<id> answering 2.04."""
    from aiocoap import Code, Context, Message
    from aiocoap.resource import PathCapable, Resource, Site

    class Register(Resource):
        n = 0

        async def render_post(self, request: Message) -> Message:
            Register.n += 1
            return Message(code=Code.CREATED, location_path=("rd", str(Register.n)))

    class Update(Resource, PathCapable):
        async def render_post(self, request: Message) -> Message:
            return Message(code=Code.CHANGED)

    site = Site()
    site.add_resource(["rd"], Register())
    site.add_resource(["rd"], Update())  # a PathCapable resource at rd serves rd/<id>
    from lwm2m_server.coap.endpoint import bound_udp_port

    ctx = await Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    return ctx, bound_udp_port(ctx)


def pg_database(admin_url: str, name: str, create: bool) -> str:
    """Create (or drop) database ``name`` on the PostgreSQL of ``admin_url``; its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


class Database:
    """A fresh database per server run: SQLite in a temporary folder, or a PostgreSQL database
    created on the server of ``--pg-url`` and dropped afterwards."""

    def __init__(self, kind: str, pg_admin: str, tag: str) -> None:
        self.kind, self.pg_admin, self.tag = kind, pg_admin, tag
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            self._dir = tempfile.TemporaryDirectory()
            self.url = f"sqlite:///{self._dir.name}/bench.db"
        else:
            self.url = pg_database(self.pg_admin, f"lwm2m_bench_{os.getpid()}_{self.tag}", True)
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()
        else:
            pg_database(self.pg_admin, f"lwm2m_bench_{os.getpid()}_{self.tag}", False)


async def start_server(db_url: str) -> object:
    from lwm2m_server.config import Settings
    from lwm2m_server.server import LwM2MServer

    # The load clients answer no reads: the background device read after Register is off,
    # so both servers do the same work per request.
    settings = Settings(coap_host="127.0.0.1", coap_port=0, db_url=db_url, read_on_register=False)
    srv = LwM2MServer(settings)
    await srv.start()
    return srv


async def stop_server(srv: object) -> None:
    await srv.stop()  # type: ignore[attr-defined]
    srv.engine.dispose()  # type: ignore[attr-defined]


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


def _line(name: str, r: dict[str, float]) -> str:
    return (f"{name:<26}{r['register_per_s']:6.0f} Registers/s {r['update_per_s']:6.0f} Updates/s  "
            f"server CPU {r['cpu_us_per_register']:5.0f} us/Register {r['cpu_us_per_update']:5.0f} us/Update"
            f"  (GC {r.get('gc_share', 0) * 100:.0f}% of the CPU; separate responses "
            f"{r.get('separate_registers', 0):.0f} Register, {r.get('separate_updates', 0):.0f} Update;"
            f" errors {r['errors']:.0f})")


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """min / median / max."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


async def throughput(args: argparse.Namespace) -> None:
    """Bare aiocoap and the server on each database, ``--repeat`` rounds; then the ratios."""
    print(f"load: {args.clients} UDP clients in a separate process, {args.duration:g} s of Registers "
          f"then {args.duration:g} s of Updates per server; {args.repeat} round(s); "
          f"load average at start {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict[str, float]]] = {"bare": []}
    for db in args.db:
        runs[db] = []
    for rnd in range(args.repeat):
        ctx, port = await bare_server()
        r = await run_load_process(port, args.clients, args.duration, None, f"bare{rnd}-")
        await ctx.shutdown()  # type: ignore[attr-defined]
        runs["bare"].append(r)
        print(_line(f"[{rnd + 1}] bare aiocoap", r), flush=True)
        for db in args.db:
            with Database(db, args.pg_url, str(rnd)) as url:
                srv = await start_server(url)
                gc.collect()
                r = await run_load_process(srv.coap_port, args.clients, args.duration, None,  # type: ignore[attr-defined]
                                           f"{db}{rnd}-")
                await stop_server(srv)
            runs[db].append(r)
            print(_line(f"[{rnd + 1}] LwM2MServer {db}", r), flush=True)
    bare = runs["bare"]
    print(f"\nmin / median / max over {args.repeat} round(s); ratios per round against that round's "
          "bare aiocoap (target >= 0.8x)")
    print(f"{'bare aiocoap':<26}{_spread([r['register_per_s'] for r in bare], '{:.0f}')} Registers/s, "
          f"{_spread([r['update_per_s'] for r in bare], '{:.0f}')} Updates/s; CPU "
          f"{_spread([r['cpu_us_per_register'] for r in bare], '{:.0f}')} us/Register, "
          f"{_spread([r['cpu_us_per_update'] for r in bare], '{:.0f}')} us/Update")
    for db in args.db:
        ours = runs[db]
        print(f"{'LwM2MServer ' + db:<26}{_spread([r['register_per_s'] for r in ours], '{:.0f}')} Registers/s, "
              f"{_spread([r['update_per_s'] for r in ours], '{:.0f}')} Updates/s; CPU "
              f"{_spread([r['cpu_us_per_register'] for r in ours], '{:.0f}')} us/Register, "
              f"{_spread([r['cpu_us_per_update'] for r in ours], '{:.0f}')} us/Update")
        pairs = list(zip(ours, bare))
        print(f"  rate ratio            Register {_spread([o['register_per_s'] / b['register_per_s'] for o, b in pairs])}x"
              f"   Update {_spread([o['update_per_s'] / b['update_per_s'] for o, b in pairs])}x")
        print(f"  CPU ratio (bare/ours) Register {_spread([b['cpu_us_per_register'] / o['cpu_us_per_register'] for o, b in pairs])}x"
              f"   Update {_spread([b['cpu_us_per_update'] / o['cpu_us_per_update'] for o, b in pairs])}x")
    if "sqlite" in runs and "postgresql" in runs:
        pairs = list(zip(runs["postgresql"], runs["sqlite"]))
        print(f"PostgreSQL / SQLite CPU per Register {_spread([p['cpu_us_per_register'] / s['cpu_us_per_register'] for p, s in pairs])}x"
              f", per Update {_spread([p['cpu_us_per_update'] / s['cpu_us_per_update'] for p, s in pairs])}x")


async def profile(args: argparse.Namespace) -> None:
    """One more server run per database with py-spy sampling this process; where the time went."""
    from profile_summary import PySpy

    for db in args.db:
        with Database(db, args.pg_url, "profile") as url:
            srv = await start_server(url)
            spy = PySpy(os.getpid())
            with spy:
                await asyncio.sleep(0.5)  # py-spy attaching
                r = await run_load_process(srv.coap_port, args.clients, args.duration, None,  # type: ignore[attr-defined]
                                           f"prof-{db}-")
            await stop_server(srv)
        print(f"\nprofile, LwM2MServer {db} (Registers then Updates, under py-spy: "
              f"{r['register_per_s']:.0f} Registers/s, {r['update_per_s']:.0f} Updates/s)")
        print("\n".join("  " + line for line in spy.report()))


async def memory(args: argparse.Namespace) -> None:
    """Fill a server (SQLite) to ``--devices`` registrations; memory per registered device."""
    with Database("sqlite", args.pg_url, "memory") as url:
        srv = await start_server(url)
        gc.collect()
        rss0 = rss_bytes()
        fill = await run_load_process(srv.coap_port, args.clients, 0, args.devices, "fill")  # type: ignore[attr-defined]
        n = len(srv.registrations)  # type: ignore[attr-defined]
        print(f"\nfilled to {n} registrations in {fill['seconds']:.1f} s (errors {fill['errors']:.0f})")
        await srv.store.flush()  # type: ignore[attr-defined]
        gc.collect()
        rss1 = rss_bytes()
        print(f"memory:        {(rss1 - rss0) / n / 1024:8.2f} KiB RSS growth per registered device "
              f"at {n} registrations (whole server process; target < 10 KiB)")
        await stop_server(srv)
    per = await traced_bytes_per_registration(args.devices)
    print(f"memory:        {per / 1024:8.2f} KiB traced Python allocations per registration "
          f"(registration manager alone, {args.devices} registrations)")


async def main(args: argparse.Namespace) -> None:
    await throughput(args)
    if args.profile:
        await profile(args)
    if args.devices:
        await memory(args)


def _db_list(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("sqlite", "postgresql")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"--db takes sqlite and/or postgresql, got {text!r}")
    return kinds


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help="UDP clients of the load process")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per phase (Register, Update)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of bare + each database")
    p.add_argument("--db", type=_db_list, default=["sqlite", "postgresql"],
                   help="comma-separated: sqlite, postgresql (default both)")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="a PostgreSQL database to connect to; the bench creates and drops its own")
    p.add_argument("--profile", action="store_true", help="one more run per database under py-spy")
    p.add_argument("--devices", type=int, default=100_000, help="fill to this many for memory (0: skip)")
    p.add_argument("--quick", action="store_true", help="2 s phases, 1 round, 20,000 devices")
    p.add_argument("--load", type=int, help=argparse.SUPPRESS)
    p.add_argument("--total", type=int, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="b", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.load:
        res = asyncio.run(load(a.load, a.clients, a.duration, a.total, a.prefix))
        print(json.dumps(res))
    else:
        if a.quick:
            a.duration, a.devices, a.repeat = 2.0, 20_000, 1
        if a.repeat < 1 or a.duration <= 0 or a.clients < 1 or a.devices < 0:
            p.error("--repeat, --duration and --clients must be positive, --devices not negative")
        asyncio.run(main(a))
