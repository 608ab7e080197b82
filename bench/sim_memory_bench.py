"""Benchmark: memory per simulated device (issue #19: < 20 KiB, so 10,000 devices fit).

For each device count, a fresh process builds a fleet (``lwm2m_server.sim.Fleet``, the example
model in slot A of every device), registers it with a minimal CoAP /rd responder (its own
process on 127.0.0.1), then runs one inference on every device (the Execute of /33100/0/8,
called on the device without CoAP). It prints the growth of its resident memory per device
after each step: built, registered, after the model run. A second fresh process does the same
under tracemalloc with at most ``--trace-count`` devices (default 2,000; tracemalloc slows a
10,000-device fleet down several times) and prints the Python heap per device (tracemalloc's own
bookkeeping inflates RSS, so it is not measured in the same process). The baseline, measured in the same run: a
fresh process that opens as many bare aiocoap contexts (one UDP socket each, no LwM2M) and
prints its RSS growth per context.

Costs paid once per process (imports, the wasmtime engine, compiling the model) are left out:
two devices are built, registered and run before the first measurement.

Usage: python bench/sim_memory_bench.py [--counts 2000,10000] [--repeat 3] [--trace-count 2000]
Needs clang and lld (the example model is compiled at start).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiocoap
import aiocoap.resource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lwm2m_server.model import Path as LwPath  # noqa: E402
from lwm2m_server.sim.fleet import Fleet, FleetConfig  # noqa: E402
from tests.support.proc import free_port, raise_fd_limit, rss_kib  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

RUN = LwPath.parse("/33100/0/8")
CHILD_TIMEOUT = 900  # seconds for one measuring process


class MiniRd(aiocoap.resource.Resource):
    """The registration sink: answers every Register with 2.01 and a new location."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.n += 1
        return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", f"x{self.n}"))


async def serve_mini_rd(port: int) -> None:
    site = aiocoap.resource.Site()
    site.add_resource(["rd"], MiniRd())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port), transports=["udp6"])
    print("ready", flush=True)
    await asyncio.Event().wait()





# --- the measuring processes ---------------------------------------------------------------
def _snapshot(trace: bool) -> int:
    gc.collect()
    if trace:
        return tracemalloc.get_traced_memory()[0] // 1024
    return rss_kib()


async def measure_fleet(server: str, count: int, model_path: str, state: str, trace: bool) -> dict:
    """Steps of one fleet: KiB (RSS, or Python heap with ``trace``) per device after each."""
    raise_fd_limit(count + 256)
    model = Path(model_path).read_bytes()
    jitter = min(10.0, count / 500)

    def fleet(prefix: str, n: int) -> Fleet:
        return Fleet(FleetConfig(server=server, count=n, prefix=prefix, state_dir=state,
                                 jitter=jitter if n > 2 else 0.1, initial_model=model,
                                 lifetime=600, seed=1))

    warm = fleet("warm-", 2)  # one-time costs: imports, engine, compiled module, first socket
    await warm.start()
    await warm.wait_registered(30)
    for d in warm.devices:
        d.execute(RUN, "")
    if trace:
        tracemalloc.start(1)
    at0 = _snapshot(trace)
    f = fleet("sim-", count)
    at_built = _snapshot(trace)
    t0 = time.monotonic()
    await f.start()
    # tracemalloc makes every allocation several times slower: the traced fleet gets longer.
    await f.wait_registered((60 + 2 * jitter) * (4 if trace else 1))
    took = time.monotonic() - t0
    await asyncio.sleep(1.0)  # let the last exchanges settle
    at_registered = _snapshot(trace)
    for d in f.devices:
        d.execute(RUN, "")
    at_run = _snapshot(trace)
    runs = sum(d.model.count for d in f.devices)
    out = {"built": (at_built - at0) / count, "registered": (at_registered - at_built) / count,
           "model_run": (at_run - at_registered) / count, "total": (at_run - at0) / count,
           "process_mib": rss_kib() / 1024, "register_s": took, "runs": runs}
    if trace:
        tracemalloc.stop()
    await f.stop(deregister=False)
    await warm.stop(deregister=False)
    return out


async def measure_bare(count: int) -> dict:
    """RSS KiB per bare aiocoap context (one UDP socket each), the baseline."""
    raise_fd_limit(count + 256)
    warm = await aiocoap.Context.create_server_context(aiocoap.resource.Site(),
                                                       bind=("127.0.0.1", 0), transports=["udp6"])
    before = _snapshot(False)
    ctxs = [await aiocoap.Context.create_server_context(aiocoap.resource.Site(),
                                                        bind=("127.0.0.1", 0), transports=["udp6"])
            for _ in range(count)]
    per = (_snapshot(False) - before) / count
    for c in [warm, *ctxs]:
        await c.shutdown()
    return {"total": per}


def child(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    try:
        proc = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"measuring process ({' '.join(args[:2])}) did not finish within "
                         f"{CHILD_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise SystemExit(f"measuring process failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> str:
    return (f"min {min(values):6.1f}  median {statistics.median(values):6.1f}  "
            f"max {max(values):6.1f}")


def main(counts: list[int], repeat: int, trace_count: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="simmem-"))
    try:
        model = tmp / "classifier.wasm"
        build_example_model(tmp)
        port = free_port()
        sink = subprocess.Popen([sys.executable, __file__, "--mini-rd", str(port)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout is not None
            if sink.stdout.readline().strip() != "ready":
                raise SystemExit("the /rd sink did not start")
            server = f"coap://127.0.0.1:{port}"
            print(f"load: {os.getloadavg()[0]:.2f} (1 min average) on {os.cpu_count()} cores")
            for count in counts:
                totals: list[float] = []
                heaps: list[float] = []
                ratios: list[float] = []
                for i in range(repeat):
                    state = tmp / f"state-{count}-{i}"
                    rss = child("--fleet", str(count), server, str(model), str(state))
                    traced = min(count, trace_count)
                    heap = child("--fleet", str(traced), server, str(model), str(state) + "-t", "--trace")
                    bare = child("--bare", str(count))
                    ratio = rss["total"] / bare["total"] if bare["total"] > 0 else float("nan")
                    totals.append(rss["total"])
                    heaps.append(heap["total"])
                    ratios.append(ratio)
                    print(f"{count:6d} devices, run {i + 1}: RSS per device: built {rss['built']:5.1f}, "
                          f"registered {rss['registered']:5.1f}, model run {rss['model_run']:5.1f}, "
                          f"total {rss['total']:5.1f} KiB; Python heap (tracemalloc, {traced} devices) "
                          f"{heap['total']:5.1f} KiB; bare aiocoap context {bare['total']:4.1f} KiB "
                          f"(baseline), ratio {ratio:4.2f}; process {rss['process_mib']:6.1f} MiB; "
                          f"registered in {rss['register_s']:5.1f} s; {rss['runs']} model runs")
                    shutil.rmtree(state, ignore_errors=True)
                    shutil.rmtree(str(state) + "-t", ignore_errors=True)
                print(f"{count:6d} devices, {repeat} run(s): RSS KiB per device {summary(totals)}; "
                      f"Python heap KiB per device {summary(heaps)}; ratio to a bare aiocoap "
                      f"context {summary(ratios)}")
        finally:
            sink.terminate()
            sink.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def counts_arg(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--counts takes numbers separated by commas, got {text!r}") from None
    if not counts or any(c < 10 for c in counts):
        raise argparse.ArgumentTypeError("every count must be at least 10")
    return counts


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=counts_arg, default=[2000, 10000],
                    help="device counts, comma-separated (default 2000,10000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per count (min/median/max)")
    ap.add_argument("--trace-count", type=int, default=2000,
                    help="at most this many devices in the tracemalloc process (default 2000)")
    ap.add_argument("--mini-rd", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fleet", nargs=4, metavar=("COUNT", "SERVER", "MODEL", "STATE"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    if a.trace_count < 10:
        ap.error("--trace-count must be at least 10")
    if a.mini_rd:
        asyncio.run(serve_mini_rd(a.mini_rd))
    elif a.fleet:
        n, server, model_path, state = a.fleet
        print(json.dumps(asyncio.run(measure_fleet(server, int(n), model_path, state, a.trace))))
    elif a.bare:
        print(json.dumps(asyncio.run(measure_bare(a.bare))))
    else:
        main(a.counts, a.repeat, a.trace_count)
