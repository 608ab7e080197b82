"""Registrations/s and Updates/s of 1, 2 and 4 ``lwm2m-server run`` processes on PostgreSQL
sharing one CoAP port (SO_REUSEPORT), beside a bare aiocoap server and a raw asyncio UDP
responder answering the same requests, with the same load generator, in the same run.

The load is registration_bench.py's generator: a separate process with ``--clients`` UDP
sockets (one source port each, so the kernel spreads them over the processes sharing the port)
that first registers for ``--duration`` s, then sends Updates to the registrations it made.
Every configuration runs ``--repeat`` times, interleaved; printed: min/median/max of each
figure and of the ratios 1 process / bare aiocoap, 2 / 1 and 4 / 1 (the issue's targets:
>= 0.8x and >= 1.6x). Then one more pass of ``--profile-procs`` processes under py-spy (when
installed; else cProfile) prints where each process spends its time, and one process is filled
to ``--devices`` registrations to print the memory per registered device (RSS growth of that
process; target < 10 KiB).

Needs PostgreSQL (``--pg``, default the test server on 127.0.0.1:5432, trust auth): each
configuration gets a fresh database, dropped at the end.

    python bench/cluster_bench.py                       # 3 x (5 s phases), 100,000 devices
    python bench/cluster_bench.py --quick               # 1 x (2 s phases), 10,000 devices
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registration_bench import bare_server, run_load_process  # noqa: E402

from tests.support.proc import free_port  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
SERVER_ENV = {"LWM2M_READ_ON_REGISTER": "false",  # the load clients answer no reads
              "LWM2M_COAPS": "false", "LWM2M_LOG_LEVEL": "warning"}


# --------------------------------------------------------------------------- raw responder
class RawResponder(asyncio.DatagramProtocol):
    """Answers a CON POST /rd with a prebuilt piggybacked 2.01 (Location-Path rd/x) and any
    other CON request with a prebuilt 2.04: only the message id and token are filled in."""

    LOCATION = bytes([0x82]) + b"rd" + bytes([0x01]) + b"x"  # Location-Path rd, x

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 4 or data[0] >> 6 != 1 or (data[0] >> 4) & 3 != 0:
            return  # not a CON request
        tkl = data[0] & 0x0F
        mid_token = data[2:4 + tkl]
        if self._is_register(data, 4 + tkl):
            self.transport.sendto(bytes([0x60 | tkl, 0x41]) + mid_token + self.LOCATION, addr)
        else:
            self.transport.sendto(bytes([0x60 | tkl, 0x44]) + mid_token, addr)

    @staticmethod
    def _is_register(data: bytes, i: int) -> bool:
        """The first option is Uri-Path "rd" and the next is not another Uri-Path."""
        if i + 3 > len(data) or data[i] != 0xB2 or data[i + 1:i + 3] != b"rd":
            return False
        return i + 3 >= len(data) or data[i + 3] >> 4 != 0 or data[i + 3] == 0xFF


async def raw_server() -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(RawResponder, local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("socket").getsockname()[1]


# --------------------------------------------------------------------------- run processes
@contextmanager
def database(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"cluster_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            host = dict(p.split("=", 1) for p in admin_dsn.split())
            yield (f"postgresql+psycopg://{host.get('user', 'postgres')}@{host.get('host')}:"
                   f"{host.get('port', '5432')}/{name}")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Processes:
    """``count`` run processes on one CoAP port and one database."""

    coap_port: int
    db_url: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    http_ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def registered(self) -> list[int]:
        out = []
        for port in self.http_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                out.append(int(json.load(r).get("registered_devices", 0)))
        return out

    def owned(self) -> list[int]:
        """Registrations each process owns (received), largest first (from the database)."""
        import psycopg

        dsn = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT count(*) FROM registration GROUP BY owner").fetchall()
        return sorted((int(n) for (n,) in rows), reverse=True)

    def rss(self, i: int) -> int:
        with open(f"/proc/{self.procs[i].pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _prepare(workdir: Path, db_url: str) -> None:
    env = {**os.environ, "LWM2M_DATA_DIR": str(workdir), **SERVER_ENV}
    subprocess.run([sys.executable, "-c",
                    "import sys\nfrom lwm2m_server.config import Settings\n"
                    "from lwm2m_server.datadir import prepare_server_data\n"
                    "prepare_server_data(Settings(db_url=sys.argv[1]))\n", db_url],
                   check=True, env=env, capture_output=True)


class PortTaken(RuntimeError):
    """The free port picked was taken by another program before the processes bound it."""


@contextmanager
def run_processes(count: int, db_url: str, workdir: Path, *, cprofile: bool = False) -> Iterator[Processes]:
    """``count`` processes on a free port (another one when a program took it meanwhile)."""
    workdir.mkdir(parents=True, exist_ok=True)
    _prepare(workdir, db_url)
    for attempt in range(3):
        try:
            with _start_processes(count, db_url, workdir, cprofile) as ps:
                yield ps
                return
        except PortTaken:
            if attempt == 2:
                raise
            print("  (the port was taken meanwhile; again with another)", flush=True)


@contextmanager
def _start_processes(count: int, db_url: str, workdir: Path, cprofile: bool) -> Iterator[Processes]:
    ps = Processes(free_port(), db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWM2M_")}
    env.update(LWM2M_DATA_DIR=str(workdir), **SERVER_ENV)
    try:
        for i in range(count):
            http = free_port("tcp")
            prof = (["-m", "cProfile", "-o", str(workdir / f"proc{i}.pstats")] if cprofile else [])
            args = [sys.executable, *prof, "-m", "lwm2m_server.cli", "run", "--coap-host",
                    "127.0.0.1", "--coap-port", str(ps.coap_port), "--http-host", "127.0.0.1",
                    "--http-port", str(http), "--db", db_url]
            log = workdir / f"proc{i}.log"
            with open(log, "wb") as out:
                ps.procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env))
            ps.http_ports.append(http)
            ps.logs.append(log)
        for i, port in enumerate(ps.http_ports):
            deadline = time.monotonic() + 90
            while True:
                if ps.procs[i].poll() is not None:
                    text = ps.logs[i].read_text()
                    if "Address already in use" in text:
                        raise PortTaken(text)
                    raise RuntimeError(f"process {i} exited:\n{text}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"process {i} did not start:\n{ps.logs[i].read_text()}")
                    time.sleep(0.1)
        yield ps
    finally:
        for p in ps.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in ps.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------- profiles
def _frame_name(frame: str) -> str:
    """'handle (lwm2m_server/coap/site.py:123)' -> 'handle (coap/site.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3", "lwm2m_server/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


# The main thread's entry frames: in every event-loop sample, so not worth a line of their own.
_ENTRY_FRAMES = {"<module> (cli.py)", "main (cli.py)", "_run (commands/run.py)", "run (runner.py)"}


def summarize_pyspy(raw: str, top: int) -> list[str]:
    """Top self-time leaf functions and top inclusive lwm2m_server functions of collapsed stacks."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = main = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        self_t[_frame_name(frames[-1])] += count
        names = {_frame_name(f) for f in frames if "lwm2m_server/" in f}
        if names & _ENTRY_FRAMES:
            main += count
        for name in names - _ENTRY_FRAMES:
            incl[name] += count
    if not total:
        return ["    (no samples)"]
    out = [f"    {total} samples, {100 * main / total:.0f}% of them in the main thread (the event "
           "loop), the rest in worker threads (database calls); self time:"]
    out += [f"      {100 * c / total:5.1f}%  {name}" for name, c in self_t.most_common(top)]
    out.append("    inclusive, lwm2m_server functions:")
    out += [f"      {100 * c / total:5.1f}%  {name}" for name, c in incl.most_common(top)]
    return out


def summarize_cprofile(path: Path, top: int) -> list[str]:
    import io
    import pstats

    buf = io.StringIO()
    st = pstats.Stats(str(path), stream=buf)
    st.sort_stats("tottime").print_stats(top)
    return ["    " + line for line in buf.getvalue().splitlines() if line.strip()][-top - 1:]


# --------------------------------------------------------------------------- main
@dataclass
class Figures:
    reg: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    upd: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))


def _mmm(values: list[float], fmt: str = "8.0f") -> str:
    if not values:
        return "n/a"
    return (f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}")


async def measure(name: str, port: int, args: argparse.Namespace, figs: Figures,
                  spread: list[int] | None = None) -> dict[str, float]:
    res = await run_load_process(port, args.clients, args.duration, None, f"{name}-")
    figs.reg[name].append(res["register_per_s"])
    figs.upd[name].append(res["update_per_s"])
    extra = f"  per process {spread}" if spread else ""
    print(f"  {name:<12} {res['register_per_s']:8.0f} registrations/s {res['update_per_s']:8.0f} "
          f"updates/s  (errors {res['errors']:.0f}){extra}", flush=True)
    return res


async def one_round(args: argparse.Namespace, figs: Figures, workroot: Path) -> None:
    transport, port = await raw_server()
    await measure("raw asyncio", port, args, figs)
    transport.close()
    ctx, port = await bare_server()
    await measure("bare aiocoap", port, args, figs)
    await ctx.shutdown()  # type: ignore[attr-defined]
    for count in args.procs:
        with database(args.pg) as db_url, \
                run_processes(count, db_url, workroot / f"p{count}-{uuid.uuid4().hex[:6]}") as ps:
            name = f"{count} process" + ("es" if count > 1 else "")
            res = await run_load_process(ps.coap_port, args.clients, args.duration, None, "c-")
            figs.reg[name].append(res["register_per_s"])
            figs.upd[name].append(res["update_per_s"])
            print(f"  {name:<12} {res['register_per_s']:8.0f} registrations/s "
                  f"{res['update_per_s']:8.0f} updates/s  (errors {res['errors']:.0f}; "
                  f"registrations owned per process {ps.owned()})", flush=True)


async def profile_pass(args: argparse.Namespace, workroot: Path) -> None:
    count = args.profile_procs
    pyspy = shutil.which("py-spy")
    how = "py-spy record --format raw --nonblocking" if pyspy else "python -m cProfile"
    print(f"\nprofile: {count} processes under load ({how}; figures of this pass not counted)")
    with database(args.pg) as db_url:
        workdir = workroot / "profile"
        with run_processes(count, db_url, workdir, cprofile=not pyspy) as ps:
            spies = []
            if pyspy:
                for i, p in enumerate(ps.procs):
                    out = workdir / f"proc{i}.raw"
                    spies.append((out, subprocess.Popen(
                        [pyspy, "record", "--pid", str(p.pid), "--format", "raw", "--nonblocking",
                         "--rate", "50", "--duration", str(int(2 * args.duration) + 1), "-o", str(out)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            res = await run_load_process(ps.coap_port, args.clients, args.duration, None, "prof-")
            print(f"  {res['register_per_s']:.0f} registrations/s, {res['update_per_s']:.0f} "
                  f"updates/s while profiled; registrations owned per process {ps.owned()}")
            for _, spy in spies:
                spy.wait(timeout=120)
        # cProfile writes its file when the process exits (after the with block).
        for i in range(count):
            print(f"  process {i}:")
            if pyspy:
                raw = workdir / f"proc{i}.raw"
                lines = summarize_pyspy(raw.read_text() if raw.exists() else "", args.top)
            else:
                lines = summarize_cprofile(workdir / f"proc{i}.pstats", args.top)
            print("\n".join(lines))


async def memory_pass(args: argparse.Namespace, workroot: Path) -> None:
    print(f"\nmemory: one process filled to {args.devices} registrations")
    with database(args.pg) as db_url, run_processes(1, db_url, workroot / "memory") as ps:
        warm = await run_load_process(ps.coap_port, args.clients, 0, 1000, "warm-")
        n0 = ps.registered()[0]
        rss0 = ps.rss(0)
        fill = await run_load_process(ps.coap_port, args.clients, 0, args.devices - n0, "fill-")
        await asyncio.sleep(2)  # the store's batch writes settle
        n1 = ps.registered()[0]
        rss1 = ps.rss(0)
        print(f"  warm-up {warm['registered']:.0f}, then {fill['registered']:.0f} registrations in "
              f"{fill['seconds']:.1f} s ({fill['registered'] / fill['seconds']:.0f}/s, errors "
              f"{fill['errors']:.0f}); the process holds {n1}")
        print(f"  {(rss1 - rss0) / max(1, n1 - n0) / 1024:.2f} KiB RSS growth per registered device "
              f"({(rss0 / 2**20):.0f} MiB -> {(rss1 / 2**20):.0f} MiB; target < 10 KiB)")


async def main(args: argparse.Namespace) -> None:
    print(f"load: registration_bench.py's generator, {args.clients} sockets in one separate "
          f"process, {args.duration:g} s register phase then {args.duration:g} s update phase; "
          f"{args.repeat} round(s); {os.cpu_count()} CPUs; run processes on PostgreSQL "
          f"(READ_ON_REGISTER=false, CoAPS off)", flush=True)
    figs = Figures()
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as d:
        root = Path(d)
        for r in range(args.repeat):
            print(f"round {r + 1}:", flush=True)
            await one_round(args, figs, root)
        print("\nmin / median / max over rounds:")
        for name in figs.reg:
            print(f"  {name:<12} {_mmm(figs.reg[name])} registrations/s   "
                  f"{_mmm(figs.upd[name])} updates/s")

        def ratio(a: str, b: str, what: dict[str, list[float]]) -> list[float]:
            return [x / y for x, y in zip(what[a], what[b]) if y]

        pairs = [("1 process", "bare aiocoap", "target >= 0.8x"),
                 ("2 processes", "1 process", "target >= 1.6x"),
                 ("4 processes", "1 process", "")]
        print("ratios (per round, min / median / max):")
        for a, b, target in pairs:
            if a in figs.reg and b in figs.reg:
                print(f"  {a} / {b}: registrations {_mmm(ratio(a, b, figs.reg), '.2f')}, updates "
                      f"{_mmm(ratio(a, b, figs.upd), '.2f')}  {target}")
        if args.profile_procs:
            await profile_pass(args, root)
        if args.devices:
            await memory_pass(args, root)


def _counts(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want comma-separated process counts such as 1,2,4, "
                                         f"got {text!r}") from None


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=200, help="load sockets (default 200)")
    p.add_argument("--duration", type=float, default=None, help="seconds per phase (default 5)")
    p.add_argument("--repeat", type=int, default=None, help="rounds (default 3)")
    p.add_argument("--procs", type=_counts, default=[1, 2, 4],
                   help="process counts (default 1,2,4)")
    p.add_argument("--profile-procs", type=int, default=2, help="processes in the profiled pass "
                   "(0: none; default 2)")
    p.add_argument("--top", type=int, default=8, help="profile entries per process (default 8)")
    p.add_argument("--devices", type=int, default=None,
                   help="registrations for the memory figure (0: skip; default 100,000)")
    p.add_argument("--pg", default=PG_ADMIN, help="libpq DSN of a database to create the "
                   "bench databases from (default: postgres on 127.0.0.1:5432, trust)")
    p.add_argument("--quick", action="store_true", help="1 round, 2 s phases, 10,000 devices "
                   "(where not given)")
    a = p.parse_args()
    for name, full, quick in (("repeat", 3, 1), ("duration", 5.0, 2.0), ("devices", 100_000, 10_000)):
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    if a.repeat < 1 or a.duration <= 0 or a.clients < 1 or any(n < 1 for n in a.procs):
        p.error("--repeat, --duration, --clients and --procs must be positive")
    if a.devices < 0 or a.profile_procs < 0:
        p.error("--devices and --profile-procs must be 0 or more")
    asyncio.run(main(a))
