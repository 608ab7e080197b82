"""REST Read round trip: p50/p99 of GET /api/v1/devices/{ep}/data/{path} against a registered
test client over real UDP and HTTP on 127.0.0.1, beside a direct ``server.devices.send`` Read
in the same process and run (the baseline: the same CoAP round trip without HTTP, auth, JSON).

The HTTP client runs in a process of its own (as a real REST caller would), so its CPU time is
not charged to the server's event loop; ``--same-process`` runs it in the server's loop instead.

    python bench/rest_bench.py [--requests 2000] [--concurrency 1] [--path /3/0/9] [--db URL]
                               [--client raw|httpx]

The caller's token is verified against the database once, then taken from the in-process cache
of verified tokens (store/tokens.py) for a couple of seconds at a time, as a real caller's is.

Prints figures; not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lwm2m_server.config import Settings  # noqa: E402
from lwm2m_server.model import Path as LwPath  # noqa: E402
from lwm2m_server.protocol.requests import ReadRequest  # noqa: E402
from lwm2m_server.runner import Runner  # noqa: E402
from lwm2m_server.store.tokens import create_token  # noqa: E402
from tests.support.lwm2m_client import LwM2MTestClient  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """(p50, p99, mean) in milliseconds."""
    s = sorted(samples)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return p(0.50), p(0.99), statistics.fmean(s) * 1000


async def timed(n: int, concurrency: int, one: object) -> tuple[list[float], float]:
    samples: list[float] = []
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = time.perf_counter()
            await one()  # type: ignore[operator]
            samples.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - t0


async def _raw_samples(base_url: str, url: str, token: str, n: int, concurrency: int) -> tuple[list[float], float]:
    """Keep-alive HTTP/1.1 over plain sockets: the round trip without an HTTP client library's
    own per-request work (a caller in another language or a lean client sees this)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET {url} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
               "\r\n").encode()
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)

    async def rest() -> None:
        reader, writer = await free.get()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        free.put_nowait((reader, writer))
        if status != b"200":
            raise SystemExit(f"REST read failed: {status.decode()} {body.decode(errors='replace')}")

    await timed(50, concurrency, rest)  # warm-up: format negotiation
    try:
        return await timed(n, concurrency, rest)
    finally:
        for _, w in conns:
            w.close()


async def _rest_samples(base_url: str, url: str, token: str, n: int, concurrency: int,
                        client: str = "raw") -> tuple[list[float], float]:
    if client == "raw":
        return await _raw_samples(base_url, url, token, n, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:

        async def rest() -> None:
            r = await http.get(url)
            if r.status_code != 200:
                raise SystemExit(f"REST read failed: {r.status_code} {r.text}")

        await timed(50, concurrency, rest)  # warm-up: connections, format negotiation
        return await timed(n, concurrency, rest)


def _rest_process(args: tuple[str, str, str, int, int, str], out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_rest_samples(*args)))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--path", default="/3/0/9")
    ap.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="raw: keep-alive HTTP/1.1 on plain sockets (default); httpx: httpx.AsyncClient")
    ap.add_argument("--same-process", action="store_true", help="run the HTTP client in the server's loop")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,
                            db_url=db, log_level="warning")
        runner = Runner(settings)
        await runner.start()
        client = LwM2MTestClient("bench-1", {"/3/0/0": "ACME", "/3/0/9": 80, "/1/0/1": 300})
        await client.start()
        await client.register(runner.coap_port)  # type: ignore[arg-type]
        _, token = create_token(runner.server.engine, "bench", ["read"])
        request = ReadRequest(LwPath.parse(args.path))

        async def direct() -> None:
            await runner.server.devices.send("bench-1", request)

        await timed(50, args.concurrency, direct)
        base, base_wall = await timed(args.requests, args.concurrency, direct)
        rest_args = (f"http://127.0.0.1:{runner.http_port}", f"/api/v1/devices/bench-1/data{args.path}",
                     token, args.requests, args.concurrency, args.client)
        if args.same_process:
            rest_s, rest_wall = await _rest_samples(*rest_args)
        else:
            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            proc = ctx.Process(target=_rest_process, args=(rest_args, out))
            proc.start()
            while True:  # keep serving while the other process drives HTTP
                try:
                    rest_s, rest_wall = await asyncio.to_thread(out.get, True, 1.0)
                    break
                except queue.Empty:
                    if proc.exitcode not in (None, 0):
                        raise SystemExit(f"the HTTP client process failed ({proc.exitcode})") from None
            proc.join()

        await client.stop()
        await runner.stop()

    b50, b99, bmean = percentiles(base)
    r50, r99, rmean = percentiles(rest_s)
    where = "server's process" if args.same_process else "own process"
    print(f"REST Read round trip, {args.requests} requests, concurrency {args.concurrency}, "
          f"path {args.path}, HTTP client ({args.client}) in its {where}")
    print(f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>9}")
    print(f"{'direct devices.send (base)':28} {b50:8.3f} {b99:8.3f} {bmean:8.3f} {len(base) / base_wall:9.0f}")
    print(f"{'REST GET data/{path}':28} {r50:8.3f} {r99:8.3f} {rmean:8.3f} {len(rest_s) / rest_wall:9.0f}")
    print(f"ratio REST/base: p50 {r50 / b50:.2f}x (target < 3x), p99 {r99 / b99:.2f}x, "
          f"throughput {(len(rest_s) / rest_wall) / (len(base) / base_wall):.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
