"""Fuzz the CoAP endpoint of a real ``lwm2m-server run`` process for N minutes.

Random and mutated Register/Update/De-register/Send datagrams, Block1 abuse, undecodable option
values, unknown critical options and random bytes (tests/fuzz/harness.py, the same fuzzer the
test run uses for a few seconds). Prints datagrams sent, answers by code, tracebacks in the
server's log, whether the server survived, and its RSS at start, after a warm-up and at the end
(growth per million datagrams measured from the warm-up on).

    python bench/fuzz_coap.py --minutes 5 [--rate 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz.harness import CoapFuzzer  # noqa: E402
from tests.support.proc import free_port, rss_bytes  # noqa: E402

MIB = 1024 * 1024





def _wait_for_coap(port: int, timeout: float = 30.0) -> None:
    """Until the server answers a CoAP ping (an empty CON gets a Reset)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            s.sendto(b"\x40\x00\x12\x34", ("127.0.0.1", port))
            try:
                s.recvfrom(64)
                return
            except OSError:
                continue
    raise SystemExit("the server did not come up")


async def _fuzz(port: int, seconds: float, rate: float, seed: int, warmup: int,
                pid: int) -> tuple[CoapFuzzer, int, int]:
    fuzzer = CoapFuzzer(port, seed=seed)
    await fuzzer.run(count=warmup, rate=rate)
    rss_warm, sent_warm = rss_bytes(pid), fuzzer.stats.sent
    await fuzzer.run(seconds=seconds, rate=rate)
    fuzzer.close()
    return fuzzer, rss_warm, sent_warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=3000.0, help="datagrams per second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=100_000,
                    help="datagrams before the RSS baseline (the bounded caches fill up first)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fuzz-coap-"))
    coap_port, http_port = free_port(), free_port("tcp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LWM2M_ADMIN_TOKEN": secrets.token_urlsafe(32),
           "LWM2M_READ_ON_REGISTER": "false"}
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1",
         "--coap-port", str(coap_port), "--http-host", "127.0.0.1", "--http-port", str(http_port),
         "--db", f"sqlite:///{work / 'fuzz.db'}"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_coap(coap_port)
        rss_start = rss_bytes(server.pid)
        started = time.monotonic()
        fuzzer, rss_warm, sent_warm = asyncio.run(_fuzz(coap_port, args.minutes * 60, args.rate,
                                                        args.seed, args.warmup, server.pid))
        elapsed = time.monotonic() - started
        alive = server.poll() is None
        rss_end = rss_bytes(server.pid) if alive else 0
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    text = (work / "server.log").read_text(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    stats = fuzzer.stats
    measured = stats.sent - sent_warm
    growth = (rss_end - rss_warm) / MIB
    print(f"run: {elapsed:.0f} s, seed {args.seed}, target rate {args.rate:g}/s")
    print(f"datagrams sent: {stats.sent} ({stats.sent / elapsed:.0f}/s)")
    print("answers by code: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.answers.items())))
    print(f"answered: {sum(stats.answers.values())} ({sum(stats.answers.values()) / stats.sent:.1%})")
    print(f"server alive at the end: {'yes' if alive else 'NO (crash)'}")
    print(f"tracebacks logged: {tracebacks}; log size: {len(text.encode())} bytes")
    print(f"server RSS: start {rss_start / MIB:.1f} MiB, after {sent_warm} warm-up datagrams "
          f"{rss_warm / MIB:.1f} MiB, end {rss_end / MIB:.1f} MiB")
    if measured:
        print(f"RSS growth after warm-up: {growth:+.1f} MiB over {measured} datagrams = "
              f"{growth / measured * 1e6:+.1f} MiB per million datagrams")
    if not alive or tracebacks:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
