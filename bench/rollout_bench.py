"""Benchmark: rollouts to a simulated fleet, and firmware downloads over CoAP Block2.

The server (CoAP, HTTP, rollout engine; SQLite in a temporary folder) runs in this process, so
its CPU time and the bytes its UDP socket sends can be measured; simulated devices run in
separate processes (`lwm2m-server simulate`). Prints:

1. Baseline: a bare aiocoap resource serving the SOTA package (aiocoap's own Block2 handling,
   1024-byte blocks), fetched by one client process with the simulator's download code, three
   times: this process's CPU seconds per MiB delivered (min/median/max).
2. SOTA rollout: N devices (default 1,000) get that 64 KiB SOTA package through Object 9 (pull
   over CoAP Block2, Install, Activate). Wall time from the deployment's creation until every
   target is done (goal < 60 s); the server's CPU seconds per MiB delivered (requests, events,
   database and blocks) over the baseline's median (goal <= 1.3x); the bytes the server sent to
   each device over the package size (goal <= 1.05; CoAP headers, the LwM2M requests and all
   blocks included); what the server did per device (requests by operation, notifications,
   events by kind); the reason of every target that did not succeed; and the CPU time of the
   simulated fleet's process beside the server's (which of the two sets the pace).
3. Firmware pull: a 512 KiB MCUboot image over CoAP Block2 with 1024-byte blocks, deployed to a
   few devices through Object 5: per-device download throughput and every failed target's
   reason; then the server's CPU seconds per MiB delivered for /fw against the bare aiocoap
   resource serving the same bytes, fetched by the same client process in the same run.

Usage: python bench/rollout_bench.py [--devices 1000] [--fw-devices 10] [--jitter 5] [--timeout 600]
Needs clang and lld (the example model is compiled at start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiocoap
import aiocoap.resource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam  # noqa: E402
from sqlmodel import select  # noqa: E402

from lwm2m_server.config import Settings  # noqa: E402
from lwm2m_server.metrics import NOTIFICATIONS, REQUESTS  # noqa: E402
from lwm2m_server.rollout import service  # noqa: E402
from lwm2m_server.rollout.state import FINAL_DEPLOYMENT_STATES  # noqa: E402
from lwm2m_server.rollout.tables import Deployment  # noqa: E402
from lwm2m_server.runner import Runner  # noqa: E402
from lwm2m_server.store.artifacts import ingest_artifact  # noqa: E402
from ota.keys import generate_private_key, public_key_of, public_key_pem  # noqa: E402
from ota.mcuboot import sign_image  # noqa: E402
from ota.sota import build_package  # noqa: E402
from tests.support.proc import free_port, process_cpu  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

KIB = 1024
SLOT = 64 * KIB


def pad_wasm(module: bytes, total: int) -> bytes:
    """``module`` grown to ``total`` bytes with a custom section (valid Wasm, ignored by runtimes)."""
    name = b"bench-padding"

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    for body_len in range(total - len(module) - 8, 0, -1):
        content = leb(len(name)) + name + b"\0" * (body_len - len(leb(len(name))) - len(name))
        section = b"\x00" + leb(len(content)) + content
        if len(module) + len(section) <= total:
            return module + section
    raise ValueError("cannot pad")


def server_udp_transport(runner: Runner) -> Any:
    ctx = runner.server._endpoint.context  # bench only: count what the server's socket sends
    for ri in ctx.request_interfaces:
        mi = getattr(getattr(ri, "token_interface", None), "message_interface", None)
        tr = getattr(mi, "transport", None)
        if tr is not None:
            return tr
    raise RuntimeError("no UDP transport")


class SendCounter:
    """Wraps the server socket's sendmsg (aiocoap's udp6 transport): bytes per (host, port)."""

    def __init__(self, transport: Any) -> None:
        self.per_addr: dict[tuple[str, int], int] = defaultdict(int)
        original = transport.sendmsg

        def sendmsg(data: bytes, ancdata: Any, flags: int, addr: Any) -> Any:
            host = str(addr[0])
            if host.startswith("::ffff:"):
                host = host[7:]
            self.per_addr[(host, int(addr[1]))] += len(data)
            return original(data, ancdata, flags, addr)
        transport.sendmsg = sendmsg

    def reset(self) -> None:
        self.per_addr.clear()


def start_fleet(tmp: Path, coap_port: int, count: int, prefix: str, pub: Path, model: Path,
                jitter: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lwm2m_server.cli", "simulate", "--server",
         f"coap://127.0.0.1:{coap_port}", "--count", str(count), "--prefix", prefix,
         "--state-dir", str(tmp / f"fleet-{prefix}"), "--trusted-key", str(pub),
         "--model", str(model), "--lifetime", "900", "--jitter", str(jitter)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_registered(runner: Runner, prefix: str, count: int, timeout: float) -> float:
    t0 = time.monotonic()
    while True:
        n = sum(1 for r in runner.server.registrations.list() if r.endpoint.startswith(prefix))
        if n >= count:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"only {n} of {count} devices registered in {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def run_deployment(runner: Runner, art_id: int, endpoints: list[str], *,
                         max_concurrent: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Create a deployment and wait until it is done: (wall seconds, its view with targets)."""
    engine = runner.server.engine
    t0 = time.monotonic()
    dep = service.create_deployment(engine, service.DeploymentSpec(
        artifact_id=art_id, endpoints=endpoints, max_concurrent=max_concurrent,
        failure_threshold=1.0, timeout=300, retries=2))
    runner.rollout.wake()
    done = (*FINAL_DEPLOYMENT_STATES, "paused", "cancelled")
    # The deployment's state alone, in Core: this process is the server, and polling the whole
    # view (counts per state, ORM) would add to the CPU time measured.
    state_of = select(Deployment.state).where(Deployment.id == bindparam("id"))  # type: ignore[arg-type]
    while True:
        with engine.connect() as conn:
            state = conn.execute(state_of, {"id": dep.id}).scalar_one()
        if state in done:
            return time.monotonic() - t0, service.deployment_view(engine, int(dep.id))  # type: ignore[arg-type]
        if time.monotonic() - t0 > timeout:
            view = service.deployment_view(engine, int(dep.id), with_targets=False)  # type: ignore[arg-type]
            raise SystemExit(f"deployment not done in {timeout:.0f} s: {view['counts']}")
        await asyncio.sleep(0.25)


def print_unsuccessful(view: dict[str, Any]) -> None:
    """Every target that did not succeed, with its state and reason."""
    for t in view["targets"]:
        if t["state"] != "succeeded":
            print(f"  {t['endpoint']}: {t['state']} after {t['attempt'] + 1} attempt(s): "
                  f"{t['reason']}")


class Activity:
    """What the server did during a phase: requests to devices by operation, notifications,
    events by kind (counted from the metrics and an event sink)."""

    def __init__(self, runner: Runner) -> None:
        self.events: dict[str, int] = defaultdict(int)
        self.retries: list[str] = []  # "endpoint: reason" of every retry a target went through
        runner.server.events.add_sink(self._count)
        self._active = False
        self._requests0: dict[str, float] = {}
        self._notifications0 = 0.0

    def _count(self, ev: Any) -> None:
        if self._active:
            self.events[ev.kind] += 1
            if (ev.kind == "deployment_target" and ev.data.get("state") == "pending"
                    and ev.data.get("previous") != "pending"):
                self.retries.append(f"{ev.endpoint}: {ev.data.get('reason')}")

    @staticmethod
    def _requests() -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for labels, n in REQUESTS._values.items():  # bench only: a counter's raw values
            out[dict(labels)["operation"]] += n
        return out

    def start(self) -> None:
        self.events.clear()
        self.retries.clear()
        self._requests0 = self._requests()
        self._notifications0 = NOTIFICATIONS.value()
        self._active = True

    def per_device(self, devices: int) -> str:
        self._active = False
        now = self._requests()
        reqs = {op: now[op] - self._requests0.get(op, 0.0) for op in now}
        parts = [f"{op} {n / devices:.1f}" for op, n in sorted(reqs.items()) if n]
        notes = (NOTIFICATIONS.value() - self._notifications0) / devices
        evs = [f"{k} {n / devices:.1f}" for k, n in sorted(self.events.items())]
        return (f"requests: {', '.join(parts)}; notifications {notes:.1f}; "
                f"events: {', '.join(evs)}")


FETCH_CLIENT = r"""
import asyncio, sys, time
import aiocoap
from lwm2m_server.sim.transfer import Faults, fetch_package
async def main(uri, n, rounds):
    ctx = await aiocoap.Context.create_client_context()
    t0 = time.monotonic()
    for _ in range(rounds):
        datas = await asyncio.gather(*(fetch_package(uri, ctx, 1 << 24, Faults()) for _ in range(n)))
    dt = time.monotonic() - t0
    print(len(datas[0]), dt)
    await ctx.shutdown()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


class WholeFile(aiocoap.resource.Resource):
    """Baseline: a plain aiocoap resource answering the whole file (aiocoap slices Block2)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.data)


async def cpu_per_mib(uri: str, size: int, clients: int, rounds: int) -> tuple[float, float]:
    """(server CPU s per MiB, seconds per download) while a client process fetches ``uri``."""
    cpu0 = time.process_time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FETCH_CLIENT, uri, str(clients), str(rounds),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await proc.communicate()
    cpu = time.process_time() - cpu0
    got, seconds = out.decode().split()
    assert int(got) == size, (got, size)
    mib = size * clients * rounds / (1 << 20)
    return cpu / mib, float(seconds) / rounds


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--fw-devices", type=int, default=10, help="0 skips the firmware pull")
    ap.add_argument("--max-concurrent", type=int, default=40)
    ap.add_argument("--jitter", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds the rollout may take before the bench gives up")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    fleets: list[subprocess.Popen[bytes]] = []
    runner: Runner | None = None
    try:
        key = generate_private_key("ed25519")
        pub = tmp / "sota.pub.pem"
        pub.write_bytes(public_key_pem(key))
        model = build_example_model(tmp)
        (tmp / "model.wasm").write_bytes(model)
        retrained = build_example_model(tmp, bias_shift=0.25)
        payload = pad_wasm(retrained, SLOT - 300)
        package = build_package(payload, name="classifier", version="2.0.0", private_key=key,
                                slot_size=SLOT)
        image = sign_image(os.urandom(512 * KIB - 0x200 - 64), None, version="3.0.0")

        settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1",
                            http_port=0, db_url=f"sqlite:///{tmp / 'bench.db'}",
                            artifacts_dir=tmp / "artifacts", log_level="warning",
                            request_timeout=10.0)
        runner = Runner(settings)
        await runner.start()
        counter = SendCounter(server_udp_transport(runner))
        activity = Activity(runner)
        engine = runner.server.engine
        store = runner.rollout.artifacts
        sota_id = int(ingest_artifact(engine, store, package, kind="sota", name="classifier",
                                      version="2.0.0", sota_public_key=public_key_of(key)).artifact.id)
        fw_id = int(ingest_artifact(engine, store, image, kind="firmware", name="app",
                                    version="3.0.0").artifact.id)

        # --- 1. baseline, 2. SOTA rollout to the fleet ------------------------------
        print(f"SOTA package: {len(package)} bytes (payload {len(payload)}); firmware image "
              f"{len(image)} bytes")
        fleets.append(start_fleet(tmp, int(runner.coap_port), args.devices, "sim-", pub,
                                  tmp / "model.wasm", args.jitter))
        reg_s = await wait_registered(runner, "sim-", args.devices, 120 + args.jitter)
        print(f"{args.devices} devices registered in {reg_s:.1f} s")
        endpoints = sorted(r.endpoint for r in runner.server.registrations.list()
                           if r.endpoint.startswith("sim-"))

        base_runs = await bare_cpu_per_mib(package, clients=32, rounds=4, runs=3)
        base = statistics.median(base_runs)
        print("\n== Baseline: bare aiocoap resource serving the SOTA package (aiocoap Block2, "
              "1024-byte blocks; 32 concurrent downloads x 4, one client process) ==")
        print(f"server CPU per MiB delivered, 3 runs: min {min(base_runs):.3f} s, median "
              f"{base:.3f} s, max {max(base_runs):.3f} s")

        activity.start()
        counter.reset()
        cpu0 = time.process_time()
        fleet_cpu0 = process_cpu(fleets[0].pid)
        wall, view = await run_deployment(runner, sota_id, endpoints,
                                          max_concurrent=args.max_concurrent,
                                          timeout=args.timeout)
        cpu = time.process_time() - cpu0
        fleet_cpu = process_cpu(fleets[0].pid) - fleet_cpu0
        ok = sum(1 for t in view["targets"] if t["state"] == "succeeded")
        ratios = []
        for e in endpoints:
            reg = runner.server.registrations.get(e)
            if reg is not None:
                ratios.append(counter.per_addr.get(tuple(reg.address), 0) / len(package))
        ratios.sort()
        per_mib = cpu / (len(package) * len(endpoints) / (1 << 20))
        print(f"\n== SOTA rollout to {len(endpoints)} devices (Object 9, pull over CoAP Block2, "
              f"install, activate; max {args.max_concurrent} at once) ==")
        print(f"targets succeeded: {ok}/{len(endpoints)} (deployment {view['state']})")
        print(f"rollout wall time for {len(endpoints)} devices: {wall:.1f} s   (goal < 60 s: "
              f"{'met' if wall < 60 and ok == len(endpoints) else 'NOT met'})")
        print(f"server CPU during the rollout: {cpu:.1f} s = {per_mib:.3f} s per MiB delivered; "
              f"bare aiocoap baseline (median) {base:.3f} s per MiB; ratio {per_mib / base:.2f}x   "
              f"(goal <= 1.3x: {'met' if per_mib <= 1.3 * base else 'NOT met'})")
        print(f"simulated fleet's CPU during the rollout (its own process): {fleet_cpu:.1f} s = "
              f"{fleet_cpu / wall:.0%} of one core over the wall time; the server's: "
              f"{cpu / wall:.0%}")
        print(f"bytes sent per device / package size: median {statistics.median(ratios):.4f}, "
              f"p95 {ratios[int(0.95 * (len(ratios) - 1))]:.4f}, max {ratios[-1]:.4f}   "
              f"(goal <= 1.05: {'met' if ratios[-1] <= 1.05 else 'NOT met'})")
        print(f"per device: {activity.per_device(len(endpoints))}")
        print(f"retries: {len(activity.retries)}")
        for line in activity.retries:
            print(f"  {line}")
        print_unsuccessful(view)
        for p in fleets:
            p.terminate()
        for p in fleets:
            p.wait(30)
        fleets.clear()

        # --- 3. firmware pull over CoAP Block2 --------------------------------------
        if args.fw_devices <= 0:
            return
        fleets.append(start_fleet(tmp, int(runner.coap_port), args.fw_devices, "fw-", pub,
                                  tmp / "model.wasm", 1.0))
        await wait_registered(runner, "fw-", args.fw_devices, 60)
        fw_eps = sorted(r.endpoint for r in runner.server.registrations.list()
                        if r.endpoint.startswith("fw-"))
        started: dict[str, float] = {}
        took: dict[str, float] = {}

        async def watch() -> None:
            async for ev in runner.server.events.subscribe():  # type: ignore[union-attr]
                if ev.kind != "deployment_target" or ev.endpoint not in fw_eps:
                    continue
                when = ev.time.timestamp()  # when it happened, not when we got to it
                if ev.data.get("step") == "sent" and ev.endpoint not in started:
                    started[ev.endpoint] = when
                if ev.data.get("state") == "transferred" and ev.endpoint in started:
                    took.setdefault(ev.endpoint, when - started[ev.endpoint])
        watcher = asyncio.create_task(watch())
        cpu0 = time.process_time()
        wall, view = await run_deployment(runner, fw_id, fw_eps, max_concurrent=len(fw_eps),
                                          timeout=300)
        cpu_fleet = time.process_time() - cpu0
        watcher.cancel()
        ok = sum(1 for t in view["targets"] if t["state"] == "succeeded")
        print(f"\n== Firmware pull (Object 5, 512 KiB, CoAP Block2, 1024-byte blocks), "
              f"{len(fw_eps)} devices at once ==")
        print(f"targets succeeded: {ok}/{len(fw_eps)} in {wall:.1f} s")
        if took:
            rates = sorted(len(image) / (1 << 10) / s for s in took.values())
            print(f"per-device download throughput: median {statistics.median(rates):.0f} KiB/s, "
                  f"min {rates[0]:.0f} KiB/s")
        print(f"server CPU during the deployment: {cpu_fleet:.2f} s = "
              f"{cpu_fleet / (len(image) * len(fw_eps) / (1 << 20)):.3f} s per MiB delivered")
        print_unsuccessful(view)
        for p in fleets:
            p.terminate()
        for p in fleets:
            p.wait(30)
        fleets.clear()

        # Same bytes, same client, our /fw against a bare aiocoap resource (baseline),
        # alternated three times.
        sha = view["sha256"]
        site = aiocoap.resource.Site()
        site.add_resource(["fw"], WholeFile(image))
        port, bare = await bare_server(site)
        ours_runs, base_runs = [], []
        try:
            for _ in range(3):
                ours_runs.append(await cpu_per_mib(
                    f"coap://127.0.0.1:{runner.coap_port}/fw/{sha}", len(image), 4, 2))
                base_runs.append(await cpu_per_mib(f"coap://127.0.0.1:{port}/fw", len(image), 4, 2))
        finally:
            await bare.shutdown()
        print("\n== /fw against a bare aiocoap resource (512 KiB, 4 concurrent downloads x 2, one "
              "client process, 3 alternated runs: min / median / max) ==")
        for name, runs in (("/fw", ours_runs), ("bare", base_runs)):
            cpus = sorted(c for c, _ in runs)
            rates = sorted(len(image) / KIB / t for _, t in runs)
            print(f"{name + ':':6}{cpus[0]:.3f} / {cpus[1]:.3f} / {cpus[2]:.3f} server CPU s/MiB; "
                  f"{rates[0]:.0f} / {rates[1]:.0f} / {rates[2]:.0f} KiB/s per download")
        ours_cpu = statistics.median(c for c, _ in ours_runs)
        base_cpu = statistics.median(c for c, _ in base_runs)
        ours_s = statistics.median(t for _, t in ours_runs)
        base_s = statistics.median(t for _, t in base_runs)
        print(f"ratio /fw / bare (medians): CPU {ours_cpu / base_cpu:.2f}x, throughput "
              f"{base_s / ours_s:.2f}x")
    finally:
        for p in fleets:
            p.kill()
        if runner is not None:
            await runner.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def bare_cpu_per_mib(data: bytes, *, clients: int, rounds: int, runs: int) -> list[float]:
    """Server CPU s per MiB of a bare aiocoap resource serving ``data``, ``runs`` times."""
    site = aiocoap.resource.Site()
    site.add_resource(["fw"], WholeFile(data))
    port, bare = await bare_server(site)
    try:
        return [(await cpu_per_mib(f"coap://127.0.0.1:{port}/fw", len(data), clients, rounds))[0]
                for _ in range(runs)]
    finally:
        await bare.shutdown()





async def bare_server(site: aiocoap.resource.Site) -> tuple[int, aiocoap.Context]:
    """A plain aiocoap server context on a free port (aiocoap binds that port for TCP too, and a
    port free for UDP may be taken for TCP: try another one then)."""
    for _ in range(20):
        port = free_port()
        try:
            return port, await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
        except OSError:
            continue
    raise SystemExit("no free port for the baseline server")


if __name__ == "__main__":
    asyncio.run(main())
