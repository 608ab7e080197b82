"""Benchmark: a fleet of simulated devices registered with and answering reads through the server.

Starts ``lwm2m-server run`` as a separate process on loopback ports (SQLite in a temporary
folder), then, in this process, a fleet of simulated devices (default 1,000) with jittered
start. Prints:

- time until every device is registered, against the server and against a minimal CoAP /rd
  responder in a process of its own (baseline measured in the same run), and their ratio;
- reads of /3/0 and a Run of the model (/33100/0/8) through the REST API for every device:
  successes and throughput;
- the simulator's resident memory per device, and its ratio to a bare aiocoap context (the
  baseline: one UDP socket, no LwM2M).

Usage: python bench/sim_fleet_bench.py [--count 1000] [--jitter 5]
Needs clang and lld (the example model is compiled at start).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiocoap
import aiocoap.resource
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lwm2m_server.sim.fleet import Fleet, FleetConfig  # noqa: E402
from tests.support.proc import free_port, raise_fd_limit, rss_kib  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402





class MiniRd(aiocoap.resource.Resource):
    """Baseline registrar: answers every Register with 2.01 and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.n += 1
        return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", f"x{self.n}"))


async def fleet_registration(uri: str, count: int, jitter: float, state: Path,
                             model: bytes) -> tuple[Fleet, float]:
    fleet = Fleet(FleetConfig(server=uri, count=count, state_dir=str(state), jitter=jitter,
                              initial_model=model, lifetime=600, seed=1))
    await fleet.start()
    try:
        took = await fleet.wait_registered(120 + jitter)
    except asyncio.TimeoutError:
        notes = [n for d in fleet.devices for n in d.notes][:5]
        raise SystemExit(f"only {fleet.registered()}/{count} registered with {uri}; {notes}") from None
    return fleet, took


async def serve_mini_rd(port: int) -> None:
    site = aiocoap.resource.Site()
    site.add_resource(["rd"], MiniRd())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    await asyncio.Event().wait()


async def baseline_contexts(count: int) -> float:
    """RSS KiB per bare aiocoap context (one UDP socket each)."""
    gc.collect()
    before = rss_kib()
    ctxs = [await aiocoap.Context.create_server_context(aiocoap.resource.Site(),
                                                        bind=("127.0.0.1", 0), transports=["udp6"])
            for _ in range(count)]
    gc.collect()
    per = (rss_kib() - before) / count
    for c in ctxs:
        await c.shutdown()
    return per


async def main(count: int, jitter: float) -> None:
    raise_fd_limit(4 * count + 256)
    tmp = Path(tempfile.mkdtemp(prefix="simbench-"))
    model = build_example_model(tmp)
    coap_port, http_port = free_port(), free_port("tcp")
    db = f"sqlite:///{tmp / 'server.db'}"
    exe = shutil.which("lwm2m-server") or "lwm2m-server"
    token = subprocess.run([exe, "token", "create", "--name", "bench", "--scopes", "read,write",
                            "--db", db], check=True, capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    server = subprocess.Popen(env=env, args=[exe, "run", "--coap-host", "127.0.0.1", "--coap-port", str(coap_port),
                               "--http-host", "127.0.0.1", "--http-port", str(http_port), "--db", db,
                               "--log-level", "warning"])
    try:
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        for _ in range(200):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)

        # The fleet against the server.
        # Baseline: a bare aiocoap context, measured in a fresh process.
        bare_kib = float(subprocess.run(
            [sys.executable, __file__, "--bare-contexts", str(min(count, 500))], env=env,
            check=True, capture_output=True, text=True).stdout.split()[-1])
        gc.collect()
        rss0 = rss_kib()
        fleet, took = await fleet_registration(f"coap://127.0.0.1:{coap_port}", count, jitter,
                                               tmp / "fleet", model)
        listed = len((await http.get("/api/v1/devices")).json())
        lat = sorted(d.registered_after or 0.0 for d in fleet.devices)

        sem = asyncio.Semaphore(50)
        ok_read = ok_run = 0

        async def one(ep: str) -> None:
            nonlocal ok_read, ok_run
            async with sem:
                r = await http.get(f"/api/v1/devices/{ep}/data/3/0")
                ok_read += r.status_code == 200
                r = await http.post(f"/api/v1/devices/{ep}/execute/33100/0/8")
                ok_run += r.status_code in (200, 204)

        t0 = time.monotonic()
        await asyncio.gather(*(one(d.endpoint) for d in fleet.devices))
        read_s = time.monotonic() - t0
        gc.collect()
        per_dev = (rss_kib() - rss0) / count
        inferences = sum(d.model.count for d in fleet.devices)

        print(f"devices                          {count} (start jitter {jitter:.1f} s)")
        print(f"registered via lwm2m-server      {took:7.2f} s   (server lists {listed})")
        print(f"Register round trip per device   median {lat[len(lat) // 2] * 1000:6.1f} ms, "
              f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:6.1f} ms")
        print(f"reads of /3/0 through REST       {ok_read}/{count} ok, {count / read_s:7.1f} dev/s "
              f"(read + run)")
        print(f"model runs through REST          {ok_run}/{count} ok, {inferences} inferences done")
        print(f"simulator memory per device      {per_dev:7.1f} KiB RSS")
        print(f"bare aiocoap context             {bare_kib:7.1f} KiB RSS (baseline)")
        print(f"ratio device / bare context      {per_dev / bare_kib if bare_kib > 0 else float('nan'):7.2f}")
        await fleet.stop(deregister=False)
        await http.aclose()
        del fleet
        # Baseline: registration against a minimal /rd responder in a process of its own.
        mport = free_port()
        mini = subprocess.Popen([sys.executable, __file__, "--mini-rd", str(mport)], env=env)
        try:
            await asyncio.sleep(1.0)
            base_fleet, base_took = await fleet_registration(f"coap://127.0.0.1:{mport}", count,
                                                             jitter, tmp / "base", model)
            await base_fleet.stop(deregister=False)
        finally:
            mini.terminate()
            mini.wait(10)
        print(f"registered via minimal /rd       {base_took:7.2f} s   (baseline)")
        print(f"ratio server / baseline          {took / base_took:7.2f}")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--jitter", type=float, default=5.0)
    ap.add_argument("--bare-contexts", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mini-rd", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mini_rd:
        asyncio.run(serve_mini_rd(a.mini_rd))
    if a.bare_contexts:
        print(asyncio.run(baseline_contexts(a.bare_contexts)))
        sys.exit(0)
    asyncio.run(main(a.count, a.jitter), debug=False)
