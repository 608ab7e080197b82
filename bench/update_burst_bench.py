"""Updates/s while a burst of Registers arrives, with the background read after Register on and off.

Starts ``lwm2m-server run`` as a subprocess on loopback (SQLite in a temporary folder) twice in the
same run: with ``LWM2M_READ_ON_REGISTER=true`` (the default) and ``=false``. Each time a load
process (raw UDP, no CoAP library) first registers ``--updaters`` devices that then send Updates
back to back, measures Updates/s for a few seconds before the burst, then registers ``--devices``
new devices as fast as the server takes them, one socket each. Of the new devices, a share
answers the server's background Read (2.05 with a SenML CBOR payload), a share never answers
(the server's request times out) and a share closes its socket right after its 2.01 (the
server's request draws an ICMP port-unreachable). Printed per run: Updates/s before, during and
right after the burst (``--after`` seconds), Update latency p50/p99, Registers/s of the burst and
server CPU; then the ratio on/off (target: on >= 0.9x off, during and after).

    python bench/update_burst_bench.py                       # 3,000 devices, 100 updaters
    python bench/update_burst_bench.py --devices 10000       # the issue's burst size (slow here)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registration_bench import LINKS, coap_message, parse_response  # noqa: E402
from tests.support.proc import free_port  # noqa: E402

# A minimal SenML CBOR answer to a Read of /3/0: [{-2: "/3/0/", 0: "0", 3: "bench"}].
SUMMARY = bytes.fromhex("81a3") + b"\x21\x65/3/0/" + b"\x00\x610" + b"\x03\x65bench"
TICK = 0.5  # seconds per bucket of the Updates/s time series


class _Device(asyncio.DatagramProtocol):
    """One simulated device's socket: matches answers to its requests; answers or ignores the
    server's requests according to ``answers``."""

    def __init__(self, answers: bool) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answers = answers
        self.waiting: dict[bytes, asyncio.Future[tuple[int, list[str]]]] = {}
        self.mid = random.getrandbits(16)
        self.reads = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t, code, mid, token, loc = parse_response(data)
        assert self.transport is not None
        if 1 <= code <= 31:  # a request from the server (its background Read)
            self.reads += 1
            if self.answers and t == 0:
                # ACK, 2.05, same mid and token, Content-Format 112 (option 12, length 1).
                head = bytes([0x60 | len(token), 0x45]) + struct.pack(">H", mid) + token
                self.transport.sendto(head + bytes([0xC1, 112, 0xFF]) + SUMMARY, addr)
            return
        if t == 0:  # a separate CON response: acknowledge it
            self.transport.sendto(bytes([0x60, 0]) + struct.pack(">H", mid), addr)
        if code == 0:
            return
        fut = self.waiting.pop(token, None)
        if fut is not None and not fut.done():
            fut.set_result((code, loc))

    async def call(self, addr: tuple[str, int], path: list[str], query: list[str],
                   payload: bytes) -> tuple[int, list[str]] | None:
        """A CON POST with CoAP's retransmissions cut to 3 tries 2 s apart; None if unanswered."""
        self.mid = (self.mid + 1) & 0xFFFF
        token = os.urandom(4)
        msg = coap_message(self.mid, token, path, query, payload)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[token] = fut
        for _ in range(3):
            assert self.transport is not None
            self.transport.sendto(msg, addr)
            try:
                return await asyncio.wait_for(asyncio.shield(fut), 2.0)
            except asyncio.TimeoutError:
                continue
        self.waiting.pop(token, None)
        return None


async def _socket(answers: bool) -> _Device:
    loop = asyncio.get_running_loop()
    _, dev = await loop.create_datagram_endpoint(lambda: _Device(answers), local_addr=("127.0.0.1", 0))
    return dev


async def load(port: int, updaters: int, devices: int, lanes: int, before: float, after: float,
               silent: float, gone: float, prefix: str) -> dict[str, object]:
    """The load process: updaters, then the burst; returns the measured figures."""
    addr = ("127.0.0.1", port)
    ups: list[tuple[_Device, list[str]]] = []
    for k in range(updaters):
        dev = await _socket(True)
        r = await dev.call(addr, ["rd"], [f"ep={prefix}u{k}", "lt=86400", "lwm2m=1.1", "b=U"], LINKS)
        if r is None or r[0] != 0x41:
            raise SystemExit(f"updater {k} could not register: {r}")
        ups.append((dev, r[1]))
    await asyncio.sleep(1.0)  # their own background reads are done

    t_start = time.monotonic()
    stop = {"at": float("inf")}
    done_at: list[float] = []  # completion time of each Update
    latency: list[tuple[float, float]] = []  # (start time, seconds)
    failed = {"n": 0}

    async def updater(dev: _Device, loc: list[str]) -> None:
        while time.monotonic() < stop["at"]:
            t0 = time.monotonic()
            r = await dev.call(addr, loc, [], b"")
            t1 = time.monotonic()
            if r is not None and r[0] == 0x44:
                done_at.append(t1)
                latency.append((t0, t1 - t0))
            else:
                failed["n"] += 1

    tasks = [asyncio.ensure_future(updater(d, loc)) for d, loc in ups]
    await asyncio.sleep(before)
    burst_start = time.monotonic()
    counter = {"next": 0, "ok": 0, "lost": 0}
    kinds = {"answer": 0, "silent": 0, "gone": 0}
    keep: list[_Device] = []

    async def lane() -> None:
        while counter["next"] < devices:
            i = counter["next"]
            counter["next"] += 1
            x = (i * 0.6180339887) % 1.0  # spread the kinds evenly over the burst
            kind = "silent" if x < silent else "gone" if x < silent + gone else "answer"
            dev = await _socket(kind == "answer")
            r = await dev.call(addr, ["rd"], [f"ep={prefix}b{i}", "lt=86400", "lwm2m=1.1", "b=U"], LINKS)
            if r is None or r[0] != 0x41:
                counter["lost"] += 1
                assert dev.transport is not None
                dev.transport.close()
                continue
            counter["ok"] += 1
            kinds[kind] += 1
            if kind == "gone":
                assert dev.transport is not None
                dev.transport.close()  # the server's Read now draws ICMP port unreachable
            else:
                keep.append(dev)

    await asyncio.gather(*(lane() for _ in range(lanes)))
    burst_end = time.monotonic()
    await asyncio.sleep(after)
    stop["at"] = time.monotonic()
    end = stop["at"]
    await asyncio.gather(*tasks)

    def rate(a: float, b: float) -> float:
        return sum(1 for t in done_at if a <= t < b) / max(b - a, 1e-9)

    def pct(a: float, b: float, q: float) -> float:
        xs = sorted(s for t, s in latency if a <= t < b)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")

    series = [round(rate(t, t + TICK)) for t in
              (t_start + k * TICK for k in range(int((end - t_start) / TICK)))]
    for d in keep:
        assert d.transport is not None
        d.transport.close()
    for d, _ in ups:
        assert d.transport is not None
        d.transport.close()
    return {
        "before": rate(t_start, burst_start),
        "during": rate(burst_start, burst_end),
        "after": rate(burst_end, end),
        "p50_during": pct(burst_start, burst_end, 0.5), "p99_during": pct(burst_start, burst_end, 0.99),
        "p50_after": pct(burst_end, end, 0.5), "p99_after": pct(burst_end, end, 0.99),
        "burst_s": burst_end - burst_start, "registered": counter["ok"], "lost": counter["lost"],
        "kinds": kinds, "update_failures": failed["n"],
        "reads_answered": sum(d.reads for d in keep if d.answers),
        "series": series,
    }





def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_receive_buffer_errors() -> int:
    """The host's count of UDP datagrams dropped for a full receive buffer (all sockets)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def one_run(args: argparse.Namespace, read_on_register: bool) -> dict[str, object]:
    """Start a server with the setting, drive it from the load process, stop it."""
    coap, http = free_port(), free_port("tcp")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, LWM2M_READ_ON_REGISTER=str(read_on_register).lower(), LWM2M_COAPS="false")
        log_path = os.path.join(d, "server.log")
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1",
                 "--coap-port", str(coap), "--http-host", "127.0.0.1", "--http-port", str(http),
                 "--data-dir", d, "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=2).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"server did not start:\n{open(log_path).read()}") from None
                    time.sleep(0.2)
            cpu0 = _cpu_seconds(server.pid)
            drops0 = udp_receive_buffer_errors()
            out = subprocess.run(
                [sys.executable, __file__, "--load", str(coap), "--updaters", str(args.updaters),
                 "--devices", str(args.devices), "--lanes", str(args.lanes), "--before", str(args.before),
                 "--after", str(args.after), "--silent", str(args.silent), "--gone", str(args.gone),
                 "--prefix", "on" if read_on_register else "off"],
                check=True, stdout=subprocess.PIPE, text=True).stdout
            res: dict[str, object] = json.loads(out.strip().splitlines()[-1])
            res["server_cpu_s"] = _cpu_seconds(server.pid) - cpu0
            res["drops"] = udp_receive_buffer_errors() - drops0
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with open(log_path, errors="replace") as f:
            lines = f.readlines()
        res["log_lines"] = len(lines)
        res["log_sample"] = lines[:3] + lines[-3:]
    return res


def main(args: argparse.Namespace) -> None:
    print(f"{args.devices} Registers in a burst ({args.lanes} at a time, one socket per device; "
          f"{args.silent:.0%} never answer the server, {args.gone:.0%} close their socket after 2.01), "
          f"{args.updaters} devices sending Updates back to back; server: `lwm2m-server run` "
          f"(SQLite), load: one other process; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict[str, object]]] = {"on": [], "off": []}
    for _ in range(args.repeat):
        for setting in args.order.split(","):
            r = one_run(args, setting == "on")
            results[setting].append(r)
            print(f"read on register {setting:>3}: Updates/s before {r['before']:7.0f}  during {r['during']:7.0f}  "
                  f"after {r['after']:7.0f} | Update p50/p99 during {r['p50_during']:.1f}/{r['p99_during']:.0f} ms, "
                  f"after {r['p50_after']:.1f}/{r['p99_after']:.0f} ms | burst {r['registered']} Registers in "
                  f"{r['burst_s']:.1f} s ({r['registered'] / r['burst_s']:.0f}/s, lost {r['lost']}) | "
                  f"server CPU {r['server_cpu_s']:.1f} s | Update failures {r['update_failures']} | "
                  f"server log lines {r['log_lines']} | UDP receive-buffer drops {r['drops']}", flush=True)
            if args.series:
                print(f"   Updates/s every {TICK} s: {r['series']}")
                print("   server log (first and last lines):", "".join(r["log_sample"]), sep="\n")
    pairs = list(zip(results["on"], results["off"]))
    if pairs:
        for phase in ("during", "after", "before"):
            ratios = sorted(on[phase] / off[phase] for on, off in pairs)  # type: ignore[operator]
            print(f"ratio on/off, Updates/s {phase:>6} the burst: min {ratios[0]:.2f}x  median "
                  f"{statistics.median(ratios):.2f}x  max {ratios[-1]:.2f}x  over {len(ratios)} pair(s)"
                  + ("  (target >= 0.9x)" if phase != "before" else "  (no background work yet)"))
        # During the burst the server's work splits between the Registers and the Updates (both
        # come from closed loops): how much goes to which varies from run to run, with either
        # setting. Their sum is the server's own rate.
        ratios = sorted((on["during"] + on["registered"] / on["burst_s"])  # type: ignore[operator]
                        / (off["during"] + off["registered"] / off["burst_s"]) for on, off in pairs)  # type: ignore[operator]
        print(f"ratio on/off, Updates/s + Registers/s during the burst: min {ratios[0]:.2f}x  median "
              f"{statistics.median(ratios):.2f}x  max {ratios[-1]:.2f}x")
        # The machine's other load drifts between runs: each run's rate over its own rate
        # before the burst takes that drift out.
        for phase in ("during", "after"):
            ratios = sorted((on[phase] / on["before"]) / (off[phase] / off["before"])  # type: ignore[operator]
                            for on, off in pairs)
            print(f"ratio on/off, each over its own rate before the burst, {phase:>6}: min {ratios[0]:.2f}x  "
                  f"median {statistics.median(ratios):.2f}x  max {ratios[-1]:.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=3000, help="Registers in the burst")
    p.add_argument("--updaters", type=int, default=100, help="devices sending Updates back to back")
    p.add_argument("--lanes", type=int, default=100, help="Registers in flight at a time")
    p.add_argument("--before", type=float, default=3.0, help="seconds of Updates before the burst")
    p.add_argument("--after", type=float, default=5.0, help="seconds of Updates measured after it")
    p.add_argument("--silent", type=float, default=0.2, help="share of devices that never answer")
    p.add_argument("--gone", type=float, default=0.2, help="share of devices gone after their 2.01")
    p.add_argument("--order", default="on,off", help="runs, in order (on, off or both)")
    p.add_argument("--repeat", type=int, default=1, help="run the on/off pair this many times")
    p.add_argument("--series", action="store_true", help="print Updates/s per half second")
    p.add_argument("--load", type=int, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="b", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.load:
        print(json.dumps(asyncio.run(load(a.load, a.updaters, a.devices, a.lanes, a.before, a.after,
                                          a.silent, a.gone, a.prefix))))
    else:
        main(a)
