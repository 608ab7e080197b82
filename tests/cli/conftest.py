"""A real ``lwm2m-server run`` process on loopback ports with simulated devices, and the CLI run
as a process against it from an empty folder (no database file shared with the server)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

READY = re.compile(r"CoAP on udp \S+ port (\d+), HTTP on \S+ port (\d+)")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without LWM2M_* settings, with a config folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWM2M_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def server_env(workdir: Path) -> dict[str, str]:
    """The environment of the server's host: its data folder inside the test's folder."""
    return clean_env(LWM2M_DATA_DIR=str(workdir / "data"))


@dataclass
class Server:
    """The server process, its ports, an admin token and its log file (JSON lines)."""

    proc: subprocess.Popen[str]
    coap_port: int
    http_port: int
    token: str
    log: Path
    workdir: Path
    others: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{"LWM2M_SERVER_URL": self.url, "LWM2M_TOKEN": self.token,
                            "XDG_CONFIG_HOME": str(self.workdir / "config"), **extra})

    def cli(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``lwm2m-server ARGS`` as a process in an empty folder of its own."""
        return subprocess.run([sys.executable, "-m", "lwm2m_server.cli", *args],
                              capture_output=True, text=True, timeout=timeout,
                              env=self.env() if env is None else env, cwd=self.workdir / "ci",
                              check=False)

    def log_lines(self) -> list[dict[str, object]]:
        """The server's log so far, one JSON object a line."""
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.startswith("{")]

    def simulate(self, count: int, prefix: str, *extra: str) -> subprocess.Popen[str]:
        """Simulated devices (``lwm2m-server simulate``) against this server."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "lwm2m_server.cli", "simulate", "--server",
             f"coap://127.0.0.1:{self.coap_port}", "--count", str(count), "--prefix", prefix,
             "--state-dir", str(self.workdir / f"sim-{prefix}"), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            env=server_env(self.workdir))
        self.others.append(proc)
        return proc

    def wait_for_devices(self, names: set[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.cli("devices", "list", "--online", "--json")
            if got.returncode == 0 and names <= {d["endpoint"] for d in json.loads(got.stdout)}:
                return
            time.sleep(0.3)
        raise AssertionError(f"devices {sorted(names)} did not register")


def start_server(workdir: Path) -> Server:
    """Token first (on the server's database), then the server with JSON logs and access log."""
    (workdir / "ci").mkdir(parents=True)
    db = f"sqlite:///{workdir / 'server.db'}"
    made = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "token", "create", "--name",
                           "ci", "--scopes", "admin", "--db", db], capture_output=True, text=True,
                          env=server_env(workdir), cwd=workdir, check=True)
    token = made.stdout.strip()
    log = workdir / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", "127.0.0.1",
             "--coap-port", "0", "--http-host", "127.0.0.1", "--http-port", "0", "--db", db,
             "--log-format", "json", "--access-log"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=server_env(workdir), cwd=workdir)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = READY.search(line)
        if m:
            return Server(proc, int(m.group(1)), int(m.group(2)), token, log, workdir)
        if not line:
            break
    proc.kill()
    raise AssertionError("server did not start:\n" + log.read_text())


def stop_server(server: Server) -> None:
    for p in [*server.others, server.proc]:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in [*server.others, server.proc]:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("remote"))
    try:
        yield srv
    finally:
        stop_server(srv)
