"""Several real ``lwm2m-server run`` processes on one fresh PostgreSQL database (a cluster).

Use :func:`running_cluster` (a context manager) or the ``cluster`` fixture factory of
``tests/cluster/conftest.py``::

    with running_cluster(tmp_path, 2) as c:   # two processes sharing one CoAP port
        c.nodes[0].get("/healthz")
        c.kill(1)                             # kill -9 the second one
        c.start_node()                        # and start a third

Every process shares the database, the data folder (keys, artifacts), the CoAP and CoAPS ports
(SO_REUSEPORT: on PostgreSQL every process is a cluster node) and has its own HTTP port. Their
output (JSON logs) goes to one file per process; :meth:`Cluster.logs` gathers them for failure
messages. Skips the test when PostgreSQL on 127.0.0.1:5432 is not reachable.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .postgres import temporary_database
from .proc import free_port

__all__ = ["Cluster", "Node", "running_cluster", "free_port", "cluster_env", "http_json",
           "register_devices"]

START_TIMEOUT = 60.0  # seconds for a process to answer /healthz (a busy 2-core machine)


def cluster_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without LWM2M_* settings, with the cluster's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWM2M_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["LWM2M_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def http_json(url: str, *, token: str | None = None, method: str = "GET", body: Any = None,
              timeout: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one HTTP request; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Node:
    """One ``run`` process (with ``--workers N``: its supervisor) and its HTTP port."""

    index: int
    proc: subprocess.Popen[bytes]
    http_port: int
    log_path: Path
    args: list[str]
    token: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        """GET ``path`` on this process's HTTP port with the cluster's admin token."""
        return http_json(self.url + path, token=self.token, **kw)

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return http_json(self.url + path, token=self.token, method=method, body=body, **kw)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        """The process's JSON log records so far (other lines skipped)."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def metric(self, name: str, labels: str = "") -> float:
        """One sample of this process's /metrics (``labels`` as printed: 'kind="register"'); 0 if absent."""
        status, text = http_json(self.url + "/metrics")
        assert status == 200, text
        want = f"{name}{{{labels}}}" if labels else name
        for line in str(text).splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait until GET /healthz answers 200; AssertionError (with the log) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"node {self.index} exited with {self.proc.returncode} "
                                     f"while starting:\n{self.log_text()}")
            try:
                status, body = http_json(self.url + "/healthz", timeout=2)
            except OSError:
                status, body = 0, None
            if status == 200:
                return body  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"node {self.index} did not answer /healthz in {timeout:.0f} s:\n"
                             f"{self.log_text()}")

    def kill(self) -> None:
        """kill -9 (the process only; a supervisor's workers are left behind)."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@dataclass
class Cluster:
    """Processes sharing one database, data folder and CoAP/CoAPS ports (see the module doc)."""

    workdir: Path
    db_url: str
    coap_port: int
    coaps_port: int
    token: str
    log_format: str = "json"
    extra_env: dict[str, str] = field(default_factory=dict)  # LWM2M_* settings for every node
    nodes: list[Node] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def coap_url(self) -> str:
        return f"coap://127.0.0.1:{self.coap_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return cluster_env(self.data_dir, **{**self.extra_env, **extra})

    def start_node(self, *extra_args: str, coap_host: str = "127.0.0.1", http_port: int | None = None,
                   env: dict[str, str] | None = None, wait: bool = True) -> Node:
        """Start one more ``run`` process (``extra_args`` appended to its flags); waits for /healthz
        unless ``wait`` is False. ``http_port`` None picks a free one."""
        index = len(self.nodes)
        port = http_port if http_port is not None else free_port("tcp")
        args = [sys.executable, "-m", "lwm2m_server.cli", "run", "--coap-host", coap_host,
                "--coap-port", str(self.coap_port), "--coaps-port", str(self.coaps_port),
                "--http-host", "127.0.0.1", "--http-port", str(port), "--db", self.db_url,
                "--log-format", self.log_format, *extra_args]
        log_path = self.workdir / f"node{index}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                    env=env if env is not None else self.env(), cwd=self.workdir)
        node = Node(index, proc, port, log_path, args, self.token)
        self.nodes.append(node)
        if wait:
            node.wait_healthy()
        return node

    def kill(self, index: int) -> Node:
        """kill -9 node ``index``."""
        node = self.nodes[index]
        node.kill()
        return node

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.alive()]

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every live process at once, SIGKILL what is left after ``timeout``."""
        for n in self.nodes:
            if n.alive():
                n.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            try:
                n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()

    def logs(self) -> str:
        """Every process's output, one section each (for assertion messages)."""
        return "\n".join(f"----- node {n.index} (pid {n.pid}, {' '.join(n.args[3:])}) -----\n"
                         f"{n.log_text()}" for n in self.nodes)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one SQL query on the cluster's database (psycopg, autocommit)."""
        import psycopg

        dsn = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return list(cur.fetchall()) if cur.description else []

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``lwm2m-server ARGS`` as a process with the cluster's data folder."""
        return subprocess.run([sys.executable, "-m", "lwm2m_server.cli", *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env(),
                              cwd=self.workdir, check=False)


def _prepare(workdir: Path, db_url: str) -> str:
    """Schema, data folder (keys, default model) and an admin token, before any process starts
    (processes started together must not race in creating the same files)."""
    env = cluster_env(workdir / "data")
    made = subprocess.run([sys.executable, "-c",
                           "import sys\n"
                           "from lwm2m_server.config import Settings\n"
                           "from lwm2m_server.datadir import prepare_server_data\n"
                           "prepare_server_data(Settings(db_url=sys.argv[1]))\n", db_url],
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
    if made.returncode != 0:
        raise AssertionError(f"preparing the data folder failed:\n{made.stderr}")
    made = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "token", "create", "--name",
                           "cluster-tests", "--scopes", "admin", "--db", db_url],
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
    if made.returncode != 0:
        raise AssertionError(f"token create failed:\n{made.stderr}")
    return made.stdout.strip()


@contextmanager
def running_cluster(workdir: Path, count: int = 2, *, args: Sequence[str] = (),
                    coap_hosts: Sequence[str] = (), log_format: str = "json",
                    env: dict[str, str] | None = None, stop_timeout: float = 20.0) -> Iterator[Cluster]:
    """A fresh database and ``count`` processes (each with ``args``) sharing one CoAP port.

    ``coap_hosts`` gives node i the CoAP bind address ``coap_hosts[i]`` (default 127.0.0.1);
    ``env`` adds LWM2M_* settings to every node (e.g. ``{"LWM2M_READ_ON_REGISTER": "false"}``).
    The processes are stopped (SIGTERM, then SIGKILL) and the database dropped at the end.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with temporary_database("cluster_") as db_url:
        token = _prepare(workdir, db_url)
        for attempt in range(3):
            c = Cluster(workdir, db_url, free_port("udp"), free_port("udp"), token, log_format,
                        dict(env or {}))
            try:
                for i in range(count):
                    host = coap_hosts[i] if i < len(coap_hosts) else "127.0.0.1"
                    c.start_node(*args, coap_host=host, wait=False)
                for n in c.nodes:
                    n.wait_healthy()
            except AssertionError as e:
                c.stop(stop_timeout)
                # Another program took a port picked as free before the processes bound it.
                if "Address already in use" in str(e) and attempt < 2:
                    for n in c.nodes:
                        n.log_path.rename(n.log_path.with_suffix(f".try{attempt}.log"))
                    continue
                raise
            break
        try:
            yield c
        finally:
            c.stop(stop_timeout)


def register_devices(host: str, port: int, names: Sequence[str], *, lifetime: int = 300,
                     timeout: float = 10.0) -> dict[str, tuple[socket.socket, str]]:
    """Register each endpoint in ``names`` from a UDP socket of its own (its own source port, so
    SO_REUSEPORT or a balancer spreads them); {name: (socket, location)}. The sockets stay open
    (the caller closes them); AssertionError when a Register is not answered 2.01."""
    from aiocoap import Code, Message
    from aiocoap.numbers.types import Type

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out: dict[str, tuple[socket.socket, str]] = {}
    for i, name in enumerate(names):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        sock.settimeout(1.0)
        msg = Message(code=Code.POST, uri_path=("rd",),
                      uri_query=[f"ep={name}", f"lt={lifetime}", "lwm2m=1.1", "b=U"],
                      payload=b"</1/0>,</3/0>")
        msg.opt.content_format = 40
        msg.mtype, msg.mid, msg.token = Type.CON, (0x1000 + i) & 0xFFFF, os.urandom(4)
        datagram = msg.encode()
        deadline = time.monotonic() + timeout
        answer, acked = None, False
        while answer is None and time.monotonic() < deadline:
            if not acked:
                sock.sendto(datagram, (host, port))
            try:
                while answer is None:
                    got = Message.decode(sock.recv(2048))
                    if got.mtype == Type.ACK and got.mid == msg.mid and got.code == Code.EMPTY:
                        acked = True  # a separate response follows
                    elif got.token == msg.token and got.code.is_response():
                        answer = got
                        if got.mtype == Type.CON:
                            ack = Message(code=Code.EMPTY)
                            ack.mtype, ack.mid = Type.ACK, got.mid
                            sock.sendto(ack.encode(), (host, port))
            except (TimeoutError, socket.timeout):
                continue
        if answer is None or answer.code != Code.CREATED:
            sock.close()
            raise AssertionError(f"Register of {name} got {answer.code if answer else 'no answer'}")
        out[name] = (sock, "/" + "/".join(answer.opt.location_path))
    return out
