"""DTLS cost of the server: handshakes/s, registrations/s over DTLS beside plain CoAP, and memory
per DTLS session.

The server (``LwM2MServer`` with its SQLite store and the coaps listener) runs in a child
process; the load runs here, one UDP socket per virtual device, ``--concurrency`` in flight.
Prints, in the same run:

1. plain CoAP registrations/s (the baseline);
2. DTLS-PSK handshakes/s (TLS_PSK_WITH_AES_128_CCM_8, a full handshake with cookie exchange);
3. DTLS registrations/s, handshake included (a device's first registration), and registrations/s
   on established sessions (re-registering), each with its ratio to the baseline;
4. memory per DTLS session: RSS growth of the server process over ``--sessions`` established
   sessions (default 10,000), divided by their count.

    python bench/dtls_bench.py                    # full run (about a minute)
    python bench/dtls_bench.py --quick            # 500 devices, 2,000 sessions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from typing import Any

os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lwm2m_server.coap.rawmsg import CON, encode_message  # noqa: E402
from tests.support.proc import raise_fd_limit, rss_kib  # noqa: E402

LINKS = b'</>;rt="oma.lwm2m";ct=112,</1/0>,</3/0>,</4/0>,</5/0>,</9/0>,</33100/0>'
KEY = bytes(range(16))
SESSION_IDENTITY = "bench-session"


def coap_register(mid: int, endpoint: str) -> bytes:
    """A CON POST /rd?ep=..&lt=300&lwm2m=1.1 with a link-format payload."""
    options = [(11, b"rd"), (12, bytes([40]))]
    options += [(15, q.encode()) for q in (f"ep={endpoint}", "lt=300", "lwm2m=1.1")]
    return encode_message(CON, 0x02, mid & 0xFFFF, mid.to_bytes(4, "big"), options, LINKS)


# --------------------------------------------------------------------------- server child
def serve(db_url: str, secret: str) -> None:
    """Child process: run the server, print its ports, stop on stdin EOF."""
    from lwm2m_server.config import Settings
    from lwm2m_server.server import LwM2MServer

    async def main() -> None:
        settings = Settings(coap_host="127.0.0.1", coap_port=0, coaps_port=0, db_url=db_url,
                            secret_key=secret, read_on_register=False, log_level="error")
        server = LwM2MServer(settings)
        await server.start()
        print(f"{server.coap_port} {server.coaps_port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await server.stop()

    import logging
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())


def provision(db_url: str, secret: str, count: int) -> None:
    """One DM credential per bench endpoint plus the shared session identity, in one transaction."""
    from datetime import datetime

    from sqlalchemy import insert

    from lwm2m_server.security.keybox import KeyBox
    from lwm2m_server.store.credentials import DeviceCredentialRow
    from lwm2m_server.store.db import init_db, make_engine

    engine = make_engine(db_url)
    init_db(engine)
    box = KeyBox(secret)
    now = datetime.now(UTC)
    rows = [{"endpoint": f"dtls-{i}", "purpose": "dm", "psk_identity": f"id-{i}", "created_at": now,
             "sealed_key": box.seal(KEY, f"dtls-{i}", "dm", f"id-{i}")} for i in range(count)]
    rows.append({"endpoint": "bench-sessions", "purpose": "dm", "psk_identity": SESSION_IDENTITY,
                 "created_at": now,
                 "sealed_key": box.seal(KEY, "bench-sessions", "dm", SESSION_IDENTITY)})
    with engine.begin() as conn:
        conn.execute(insert(DeviceCredentialRow.__table__), rows)  # type: ignore[attr-defined]
    engine.dispose()


# --------------------------------------------------------------------------- clients
class PlainClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # An empty ACK (code 0.00) announces a separate response: wait for that one.
        if len(data) > 1 and data[1] != 0 and not self.answer.done():
            self.answer.set_result(data)


class DtlsClient(asyncio.DatagramProtocol):
    """A DTLS-PSK client over DTLSSocket (tinydtls), the library the simulator uses too."""

    def __init__(self, identity: str) -> None:
        loop = asyncio.get_running_loop()
        self.identity = identity.encode()
        self.connected: asyncio.Future[None] = loop.create_future()
        self.answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: Any) -> None:
        from DTLSSocket import dtls

        self.transport = transport
        self.dtls = dtls.DTLS(read=self._read, write=self._write, event=self._event,
                              pskId=self.identity, pskStore={self.identity: KEY})
        self.conn = self.dtls.connect("::1", 1234)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.dtls.handleMessage(self.conn, data)

    def _write(self, _addr: Any, data: bytes) -> int:
        self.transport.sendto(data)
        return len(data)

    def _read(self, _addr: Any, data: bytes) -> int:
        if len(data) > 1 and data[1] != 0 and self.answer is not None and not self.answer.done():
            self.answer.set_result(data)
        return len(data)

    def _event(self, level: int, code: int) -> None:
        if code == 0x01DE and not self.connected.done():
            self.connected.set_result(None)
        elif level == 2 and not self.connected.done():
            self.connected.set_exception(RuntimeError(f"DTLS alert {code}"))

    async def request(self, data: bytes, timeout: float) -> bytes:
        """Send a CON request; resend it (same message id) every 2 s until answered."""
        self.answer = asyncio.get_running_loop().create_future()
        return await _with_resends(lambda: self.dtls.write(self.conn, data), self.answer, timeout)

    async def handshake(self, timeout: float) -> None:
        """Wait for the handshake, driving tinydtls' retransmissions (lost flights are resent)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.connected.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.connected), 0.5)
            except TimeoutError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                self.dtls.checkRetransmit()
        self.connected.result()


async def _with_resends(send: Any, answer: asyncio.Future[bytes], timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        send()
        try:
            return await asyncio.wait_for(asyncio.shield(answer), min(2.0, deadline - loop.time()))
        except TimeoutError:
            if loop.time() >= deadline:
                raise


async def run_all(n: int, concurrency: int, one: Any) -> tuple[float, int]:
    """Run ``one(i)`` for i < n with ``concurrency`` in flight; (seconds, failures)."""
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def guarded(i: int) -> None:
        nonlocal failures
        async with sem:
            try:
                await one(i)
            except Exception:  # noqa: BLE001 - counted and printed
                failures += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(n)))
    return time.perf_counter() - t0, failures


async def load(coap: int, coaps: int, n: int, sessions: int, concurrency: int, pid: int) -> None:
    loop = asyncio.get_running_loop()
    server_plain, server_dtls = ("127.0.0.1", coap), ("127.0.0.1", coaps)

    async def plain_register(i: int) -> None:
        t, p = await loop.create_datagram_endpoint(PlainClient, remote_addr=server_plain)
        try:
            msg = coap_register(i + 1, f"plain-{i}")
            answer = await _with_resends(lambda: t.sendto(msg), p.answer, 20)
            assert answer[1] == 0x41, f"answer code {answer[1]:#x}"  # 2.01
        finally:
            t.close()

    async def handshake(identity: str, keep: list[Any] | None) -> DtlsClient:
        t, p = await loop.create_datagram_endpoint(lambda: DtlsClient(identity), remote_addr=server_dtls)
        try:
            await p.handshake(20)
        except BaseException:
            t.close()
            raise
        if keep is not None:
            keep.append((t, p))
        return p

    kept: list[Any] = []

    async def dtls_handshake(i: int) -> None:
        await handshake(SESSION_IDENTITY, kept)

    async def dtls_register(i: int) -> None:
        p = await handshake(f"id-{i}", kept)
        answer = await p.request(coap_register(i + 1, f"dtls-{i}"), 20)
        assert answer[1] == 0x41, f"answer code {answer[1]:#x}"

    async def dtls_reregister(i: int) -> None:
        _, p = kept[i]
        answer = await p.request(coap_register(100000 + i, f"dtls-{i}"), 20)
        assert answer[1] == 0x41, f"answer code {answer[1]:#x}"

    def close_kept() -> None:
        for t, _ in kept:
            t.close()
        kept.clear()

    await run_all(min(n, 200), concurrency, plain_register)  # warm-up (imports, caches, pages)
    secs, fail = await run_all(n, concurrency, plain_register)
    base = n / secs
    print(f"plain CoAP registrations/s:        {base:9.0f}   ({n} devices, {fail} failed)")
    secs, fail = await run_all(n, concurrency, dtls_handshake)
    close_kept()
    print(f"DTLS-PSK handshakes/s:             {n / secs:9.0f}   ({n} handshakes, {fail} failed)")
    secs, fail = await run_all(n, concurrency, dtls_register)
    rate = n / secs
    print(f"DTLS registrations/s (+handshake): {rate:9.0f}   {rate / base:5.2f}x plain   ({fail} failed)")
    ok = len(kept)
    secs, fail = await run_all(ok, concurrency, dtls_reregister)
    rate = ok / secs
    print(f"DTLS registrations/s (session up): {rate:9.0f}   {rate / base:5.2f}x plain   ({fail} failed; "
          "the plain figure includes opening a socket per device, this one does not)")
    close_kept()

    # Memory: the server's sessions from the phases above are idle now; settle, then measure.
    await asyncio.sleep(1.0)
    before = rss_kib(pid)
    secs, fail = await run_all(sessions, concurrency, dtls_handshake)
    await asyncio.sleep(1.0)
    after = rss_kib(pid)
    made = sessions - fail
    print(f"memory per DTLS session:           {(after - before) * 1024 / max(made, 1):9.0f} bytes "
          f"(server RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB over {made} sessions, "
          f"{made / secs:.0f} handshakes/s while filling)")
    close_kept()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000, help="devices per throughput phase")
    ap.add_argument("--sessions", type=int, default=10000, help="DTLS sessions for the memory figure")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="500 devices, 2,000 sessions")
    ap.add_argument("--serve", nargs=2, metavar=("DB_URL", "SECRET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    if args.quick:
        args.devices, args.sessions = 500, 2000
    raise_fd_limit(args.sessions + 1024)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        secret = secrets.token_urlsafe(32)
        provision(db_url, secret, args.devices)
        child = subprocess.Popen([sys.executable, __file__, "--serve", db_url, secret],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            coap, coaps = (int(x) for x in child.stdout.readline().split())
            print(f"server pid {child.pid}: coap {coap}, coaps {coaps}; {args.devices} devices per "
                  f"phase, {args.concurrency} in flight")
            asyncio.run(load(coap, coaps, args.devices, args.sessions, args.concurrency, child.pid))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
