"""`lwm2m-server run` as a real process on loopback ports with a temporary SQLite database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

READY = re.compile(r"CoAP on udp \S+ port (\d+), HTTP on \S+ port (\d+)")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lwm2m_server.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LWM2M_")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


def _start(db: str, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], int, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1", "--coap-port", "0",
         "--http-host", "127.0.0.1", "--http-port", "0", "--db", db, "--log-level", "warning", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 30
    lines = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = READY.search(line)
        if m:
            return proc, int(m.group(1)), int(m.group(2))
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


def test_run_serves_health_and_devices_with_a_token_from_the_cli(tmp_path: Path, env: dict[str, str]) -> None:
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    created = _cli("token", "create", "--name", "ci", "--scopes", "read", "--db", db, env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("lwm2m_") and "\n" not in token

    proc, coap_port, http_port = _start(db, env)
    try:
        assert coap_port > 0 and http_port > 0
        base = f"http://127.0.0.1:{http_port}"
        health = httpx.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["coap_port"] == coap_port
        devices = httpx.get(f"{base}/api/v1/devices", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
        assert devices.status_code == 200 and devices.json() == []
        assert httpx.get(f"{base}/api/v1/devices", timeout=10).status_code == 401
        listed = _cli("token", "list", "--json", "--db", db, env=env)
        assert '"last_used_at": "' in listed.stdout  # the server recorded the use
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "lwm2m-server: stopped" in out


def test_run_fails_clearly_when_the_http_port_is_taken(tmp_path: Path, env: dict[str, str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _cli("run", "--coap-host", "127.0.0.1", "--coap-port", "0", "--http-host", "127.0.0.1",
                 "--http-port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}", env=env)
    assert r.returncode == 1
    assert f"cannot listen for HTTP on 127.0.0.1:{port}" in r.stderr


def test_run_refuses_bad_flags_with_the_setting_named(tmp_path: Path, env: dict[str, str]) -> None:
    r = _cli("run", "--coap-port", "70000", "--db", f"sqlite:///{tmp_path / 'x.db'}", env=env)
    assert r.returncode == 2 and "coap_port" in r.stderr
    r = _cli("run", "--coap-host", "127.0.0.1", "--coap-port", "0", "--http-host", "127.0.0.1",
             "--http-port", "0", "--db", f"sqlite:///{tmp_path / 'x.db'}",
             "--objects", str(tmp_path / "missing"), env=env)
    assert r.returncode == 2 and "object definitions" in r.stderr and "not a directory" in r.stderr


def test_token_cli_refuses_unknown_scopes_and_revokes(tmp_path: Path, env: dict[str, str]) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    bad = _cli("token", "create", "--name", "x", "--scopes", "read,root", "--db", db, env=env)
    assert bad.returncode == 2 and "unknown scope(s) root" in bad.stderr and bad.stdout == ""
    assert _cli("token", "create", "--name", "x", "--db", db, env=env).returncode == 0
    assert _cli("token", "revoke", "x", "--db", db, env=env).returncode == 0
    listed = _cli("token", "list", "--all", "--db", db, env=env)
    assert "revoked" in listed.stdout
    assert _cli("token", "revoke", "nobody", "--db", db, env=env).returncode == 2
