"""Port sharing: cluster processes (PostgreSQL) share CoAP, CoAPS and HTTP ports on one host
through SO_REUSEPORT; SQLite servers and port 0 keep exclusive ports."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cluster import cluster_env, free_port, register_devices, running_cluster

QUIET = {"LWM2M_READ_ON_REGISTER": "false"}  # test devices answer nothing but their Register


def test_two_postgres_processes_share_the_coap_port_and_both_take_devices(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 2, env=QUIET) as c:
        names = [f"share-{i}" for i in range(40)]
        devices = register_devices("127.0.0.1", c.coap_port, names)
        try:
            per_node = [n.metric("lwm2m_registrations_total", 'kind="register"') for n in c.nodes]
            # The kernel hashes each source port to one socket: 40 devices land on both.
            assert sum(per_node) == 40, c.logs()
            assert all(count > 0 for count in per_node), (per_node, c.logs())
            rows = c.sql("SELECT count(*), count(DISTINCT owner) FROM registration "
                         "WHERE endpoint LIKE 'share-%%'")
            assert rows[0] == (40, 2)  # each registration owned by the process that took it
        finally:
            for sock, _ in devices.values():
                sock.close()


def _listening_pids(proto: str, port: int) -> set[int]:
    """Pids of the processes with a socket bound to ``port`` (``proto`` "u" or "t"), from ss."""
    out = subprocess.run(["ss", "-Hlnp" + proto, f"sport = :{port}"], capture_output=True,
                         text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def test_cluster_processes_bind_coaps_and_http_with_reuseport(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 2, env=QUIET) as c:
        # Two more that share one fixed HTTP port (the first's /healthz answers for both, so
        # wait for the sockets themselves).
        http = free_port("tcp")
        a = c.start_node(http_port=http)
        b = c.start_node(http_port=http)
        pids = {n.pid for n in c.nodes}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (_listening_pids("t", http) == {a.pid, b.pid}
                    and _listening_pids("u", c.coaps_port) == pids
                    and _listening_pids("u", c.coap_port) == pids):
                break
            assert b.alive(), c.logs()
            time.sleep(0.2)
        else:
            raise AssertionError(f"not every process holds the shared ports:\n{c.logs()}")


def _run_sqlite(tmp_path: Path, name: str, coap_port: int) -> subprocess.Popen[str]:
    data = tmp_path / name
    return subprocess.Popen(
        [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1",
         "--coap-port", str(coap_port), "--coaps-port", "0", "--http-host", "127.0.0.1",
         "--http-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster_env(data))


def test_two_sqlite_servers_on_one_port_still_fail_with_port_in_use(tmp_path: Path) -> None:
    port = free_port("udp")
    first = _run_sqlite(tmp_path, "a", port)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()  # the ready line
        assert f"port {port}" in line, first.stderr.read() if first.stderr else ""
        second = _run_sqlite(tmp_path, "b", port)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"cannot listen for CoAP on 127.0.0.1:{port}: Address already in use" in err
    finally:
        first.terminate()
        first.wait(timeout=20)


def test_a_port_0_cluster_bind_stays_exclusive() -> None:
    from lwm2m_server.coap.endpoint import shared_port
    from lwm2m_server.runner import bind_http_socket

    assert shared_port(True, 5683) and not shared_port(True, 0) and not shared_port(False, 5683)
    sock = bind_http_socket("127.0.0.1", 0, reuse_port=True)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        sock.close()
    sock = bind_http_socket("127.0.0.1", free_port("tcp"), reuse_port=True)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        sock.close()
