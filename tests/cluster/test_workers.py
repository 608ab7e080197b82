"""``lwm2m-server run --workers N``: a supervisor and N worker processes sharing the ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.cluster import (Cluster, Node, cluster_env, free_port, register_devices,
                                   running_cluster)

QUIET = {"LWM2M_READ_ON_REGISTER": "false"}


def _until(check: Callable[[], Any], what: str, c: Cluster, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not in {timeout:.0f} s\n{c.logs()}")


def _worker_pids(node: Node) -> dict[int, int]:
    """{worker index: pid} of the workers the supervisor started last, from its log."""
    pids: dict[int, int] = {}
    for rec in node.log_lines():
        msg = str(rec.get("message", ""))
        if rec.get("logger") == "lwm2m_server.supervisor" and " started (pid " in msg:
            index = int(msg.split()[1])
            pids[index] = int(msg.rsplit("pid ", 1)[1].rstrip(")"))
    return pids


def _serving(node: Node) -> set[int]:
    """Workers that announced their HTTP port (they serve: the supervisor counts them ready)."""
    return {int(r["worker"]) for r in node.log_lines() if r.get("logger") == "lwm2m_server.runner"
            and "HTTP listening" in str(r.get("message")) and "worker" in r}


def _coap_pids(port: int) -> set[int]:
    import re

    out = subprocess.run(["ss", "-Hlnpu", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_workers_are_refused_on_sqlite_with_exit_2(tmp_path: Path) -> None:
    got = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "run", "--workers", "2"],
                         capture_output=True, text=True, env=cluster_env(tmp_path / "data"),
                         timeout=60)
    assert got.returncode == 2
    assert ("error: --workers 2 needs PostgreSQL (--db postgresql+psycopg://...): "
            "SQLite serves one process") in got.stderr
    assert not (tmp_path / "data" / "lwm2m.db").exists()  # refused before creating anything


def test_workers_need_fixed_ports(tmp_path: Path) -> None:
    got = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "run", "--workers", "3",
                          "--db", "postgresql+psycopg://postgres@127.0.0.1:5432/none",
                          "--coap-port", "0"],
                         capture_output=True, text=True, env=cluster_env(tmp_path / "data"),
                         timeout=60)
    assert got.returncode == 2
    assert "--workers 3 needs fixed ports to share: --coap-port, --coaps-port is 0" in got.stderr


def test_two_workers_answer_http_and_share_coap(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 0, env=QUIET) as c:
        sup = c.start_node("--workers", "2", "--access-log", http_port=free_port("tcp"))
        pids = _until(lambda: len(_worker_pids(sup)) == 2 and _worker_pids(sup), "2 workers", c)
        _until(lambda: _coap_pids(c.coap_port) == set(pids.values()), "both on the CoAP port", c)
        _until(lambda: _serving(sup) == {1, 2}, "both on the HTTP port", c)
        devices = register_devices("127.0.0.1", c.coap_port, [f"w-{i}" for i in range(40)])
        for sock, _ in devices.values():
            sock.close()
        for _ in range(40):  # a new connection each: the kernel spreads them over the workers
            assert sup.get("/healthz")[0] == 200
        records = sup.log_lines()
        registered = {r.get("worker") for r in records if r.get("event") == "registered"}
        served = {r.get("worker") for r in records if r.get("logger") == "lwm2m_server.access"}
        assert registered == {1, 2}, c.logs()
        assert served == {1, 2}, c.logs()
        rows = c.sql("SELECT count(*), count(DISTINCT owner) FROM registration "
                     "WHERE endpoint LIKE 'w-%%'")
        assert rows[0] == (40, 2)


def test_supervisor_restarts_a_killed_worker_and_sigterm_stops_all(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 0, env=QUIET) as c:
        sup = c.start_node("--workers", "2", http_port=free_port("tcp"))
        pids = _until(lambda: len(_worker_pids(sup)) == 2 and _worker_pids(sup), "2 workers", c)
        _until(lambda: _serving(sup) == {1, 2}, "both serving", c)
        os.kill(pids[1], signal.SIGKILL)
        new = _until(lambda: _worker_pids(sup)[1] != pids[1] and _worker_pids(sup), "restart", c)
        assert new[2] == pids[2]
        assert any("worker 1 exited unexpectedly with signal 9" in str(r.get("message"))
                   and "(serving); restarting it in 0.5 s" in str(r.get("message"))
                   for r in sup.log_lines()), c.logs()
        _until(lambda: _coap_pids(c.coap_port) == set(new.values()), "new worker on CoAP", c)
        # The restarted worker serves: devices still land on both.
        devices = register_devices("127.0.0.1", c.coap_port, [f"r-{i}" for i in range(30)])
        for sock, _ in devices.values():
            sock.close()
        assert sup.stop(timeout=40) == 0, c.logs()
        assert all(_gone(pid) for pid in new.values()), c.logs()
        messages = [str(r.get("message")) for r in sup.log_lines()]
        assert "stopping 2 workers (SIGTERM)" in messages


def test_workers_that_keep_dying_at_start_make_run_exit_1(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 0, env=QUIET) as c:
        # An exclusive listener on the HTTP port: every worker's SO_REUSEPORT bind fails.
        blocker = socket.create_server(("127.0.0.1", 0))
        try:
            port = blocker.getsockname()[1]
            sup = c.start_node("--workers", "2", http_port=port, wait=False)
            code = sup.proc.wait(timeout=120)
        finally:
            blocker.close()
        assert code == 1, c.logs()
        text = sup.log_text()
        assert "cannot listen for HTTP on 127.0.0.1" in text
        assert "5 times in a row before it served; stopping the other workers" in text
        assert "restarting it in 0.5 s" in text and "restarting it in 1.0 s" in text


def test_killing_the_supervisor_takes_its_workers_down(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 0, env=QUIET) as c:
        sup = c.start_node("--workers", "2", http_port=free_port("tcp"))
        pids = _until(lambda: len(_worker_pids(sup)) == 2 and _worker_pids(sup), "2 workers", c)
        sup.kill()
        _until(lambda: all(_gone(p) for p in pids.values()), "workers gone", c, timeout=30)
