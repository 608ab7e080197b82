"""nginx's UDP stream proxy in front of two ``run`` processes on different loopback addresses
(the set-up docs/scale.md describes for several hosts)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, free_port, register_devices, running_cluster

STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
QUIET = {"LWM2M_READ_ON_REGISTER": "false"}


def nginx_conf(workdir: Path, listen: str, backends: list[str]) -> str:
    """The config docs/scale.md shows, with its files in ``workdir`` (no daemon)."""
    lines = []
    if Path(STREAM_MODULE).exists():  # Debian: the stream module is a dynamic module
        lines.append(f"load_module {STREAM_MODULE};")
    if os.geteuid() == 0:
        lines.append("user root;")  # not "nobody": this test owns every file nginx touches
    servers = "\n".join(f"        server {b};" for b in backends)
    lines.append(f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 1024; }}
stream {{
    upstream lwm2m_coap {{
        # One device (address and source port) always reaches the same process. Devices of a
        # real fleet come from many addresses: hash $remote_addr consistent is enough there.
        hash $remote_addr$remote_port consistent;
{servers}
    }}
    server {{
        listen {listen} udp;
        proxy_pass lwm2m_coap;
        proxy_timeout 2h;  # longer than the device lifetimes: the session carries server requests
    }}
}}
""")
    return "\n".join(lines)


@contextmanager
def running_nginx(workdir: Path, listen: str, backends: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/test.sh installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_conf(workdir, listen, backends))
    base = [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (workdir / "nginx.pid").exists():
            assert proc.poll() is None, (workdir / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its worker
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_devices_register_through_nginx_and_spread_over_two_hosts(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", 2, coap_hosts=["127.0.0.2", "127.0.0.3"],
                         env=QUIET) as c:
        listen = f"127.0.0.1:{free_port('udp')}"
        backends = [f"127.0.0.2:{c.coap_port}", f"127.0.0.3:{c.coap_port}"]
        with running_nginx(tmp_path / "nginx", listen, backends):
            host, port = listen.rsplit(":", 1)
            devices = register_devices(host, int(port), [f"ngx-{i}" for i in range(40)])
            try:
                per_node = [n.metric("lwm2m_registrations_total", 'kind="register"')
                            for n in c.nodes]
                assert sum(per_node) == 40, c.logs()
                assert all(count > 0 for count in per_node), (per_node, c.logs())
                rows = c.sql("SELECT count(*), count(DISTINCT owner) FROM registration "
                             "WHERE endpoint LIKE 'ngx-%%'")
                assert rows[0] == (40, 2)
            finally:
                for sock, _ in devices.values():
                    sock.close()


SIM_COUNT = 16  # random source ports hashed over two backends: all on one is 2 in 2**16


def test_server_requests_reach_devices_back_through_nginx(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster", 2, coap_hosts=["127.0.0.2", "127.0.0.3"]) as c:
        listen = f"127.0.0.1:{free_port('udp')}"
        backends = [f"127.0.0.2:{c.coap_port}", f"127.0.0.3:{c.coap_port}"]
        with running_nginx(tmp_path / "nginx", listen, backends):
            sim = subprocess.Popen(
                [sys.executable, "-m", "lwm2m_server.cli", "simulate", "--server",
                 f"coap://{listen}", "--count", str(SIM_COUNT), "--prefix", "ngxsim-",
                 "--state-dir", str(tmp_path / "sim")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=c.env())
            try:
                names = [f"ngxsim-{i:04d}" for i in range(SIM_COUNT)]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    rows = c.sql("SELECT count(DISTINCT endpoint) FROM registration "
                                 "WHERE endpoint LIKE 'ngxsim-%%'")
                    if rows[0][0] == SIM_COUNT:
                        break
                    assert sim.poll() is None, "the simulator exited"
                    time.sleep(0.3)
                else:
                    raise AssertionError(
                        f"{SIM_COUNT} simulated devices did not register\n{c.logs()}")
                per_node = [n.metric("lwm2m_registrations_total", 'kind="register"')
                            for n in c.nodes]
                assert all(count > 0 for count in per_node), (per_node, c.logs())
                for name in names:  # from either process: the other forwards to the owner
                    for node in c.nodes:
                        status, body = node.get(f"/api/v1/devices/{name}/data/3/0/0", timeout=30)
                        assert status == 200, (name, node.index, body, c.logs())
                        assert isinstance(body, dict) and body["values"]["/3/0/0"], body
            finally:
                sim.send_signal(signal.SIGTERM)
                try:
                    sim.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    sim.kill()
                    sim.wait()
