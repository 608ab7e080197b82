"""The start-to-stop cycle of ``lwm2m-server run``: one asyncio loop running the LwM2M server
(aiocoap) and the HTTP app (uvicorn), stopped gracefully on SIGINT/SIGTERM.

Start order: bind the HTTP socket (fails fast on a busy port), start the LwM2M server (store,
restored registrations, CoAP bind), then serve HTTP. Stop order is the reverse: HTTP stops
taking requests, open streams end, the LwM2M server stops and flushes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from .app import create_app
from .config import Settings
from .model import ObjectRegistry

__all__ = ["Runner", "RunnerError", "run", "bind_http_socket"]

log = logging.getLogger(__name__)


class RunnerError(RuntimeError):
    """The process cannot start (busy port, bad database URL, bad object definitions)."""


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_http_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (``::`` also takes IPv4 where the OS allows).

    ``reuse_port``: SO_REUSEPORT, so that the processes of a cluster share the port; never for
    port 0 (such a bind may land on a port another server of the same user holds)."""
    from .coap.endpoint import shared_port

    reuse = shared_port(reuse_port, port)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise RunnerError(f"HTTP host {host!r}: {e.strerror}") from None
    family = infos[0][0]
    try:
        if family == socket.AF_INET6 and socket.has_dualstack_ipv6():
            sock = socket.create_server((host, port), family=family, dualstack_ipv6=True,
                                        reuse_port=reuse)
        else:
            sock = socket.create_server((host, port), family=family, reuse_port=reuse)
    except OSError as e:
        raise RunnerError(f"cannot listen for HTTP on {host}:{port}: {e.strerror}") from None
    # Accepted connections inherit this; without it small responses wait ~40 ms for the
    # client's delayed ACK (Nagle), because asyncio does not set it on sockets it did not create.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def rollout_target_counts(engine: Any) -> dict[str, float]:
    """Targets of running and paused deployments by state (for ``lwm2m_rollout_targets``)."""
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from .rollout.tables import Deployment, Target

    with Session(engine) as session:
        rows = session.exec(
            select(Target.state, func.count()).join(
                Deployment, col(Deployment.id) == col(Target.deployment_id))
            .where(col(Deployment.state).in_(("running", "paused")))
            .group_by(Target.state)).all()
    return {str(s): float(n) for s, n in rows}


class Runner:
    """Owns the LwM2M server and the HTTP server of one process.

    ``await start()`` then ``await stop()``, or ``await serve_forever()`` which also installs
    the signal handlers. ``coap_port`` and ``http_port`` are the bound ports (useful with 0).
    """

    def __init__(self, settings: Settings, *, registry: ObjectRegistry | None = None,
                 engine: Any = None, **server_options: Any) -> None:
        self.settings = settings
        self._registry = registry
        self._engine = engine
        self._server_options = server_options
        self.server: Any = None
        self.rollout: Any = None
        self.app: Any = None
        self.http: _HttpServer | None = None
        self.coap_port: int | None = None
        self.http_port: int | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._target_counts: Any = None

    async def start(self) -> None:
        from .server import LwM2MServer

        sock = bind_http_socket(self.settings.http_host, self.settings.http_port,
                                reuse_port=self.settings.shares_ports)
        try:
            self.server = LwM2MServer(self.settings, engine=self._engine, registry=self._registry,
                                      **self._server_options)
            try:
                await self.server.start()
            except OSError as e:
                raise RunnerError(f"cannot listen for CoAP on {self.settings.coap_host}:"
                                  f"{self.settings.coap_port}: {e.strerror or e}") from None
        except BaseException:
            sock.close()
            if self.server is not None:
                with contextlib.suppress(Exception):
                    await self.server.stop()
            raise
        self.coap_port = self.server.coap_port
        self.http_port = sock.getsockname()[1]
        self.app = create_app(self.settings, self.server)
        from .api.fw import install_rollout  # OTA: /fw downloads, rollout engine, webhooks
        from .logs import RequestIdMiddleware, log_event
        from .metrics import ROLLOUT_TARGETS, observe_rollout_event

        self.server.events.add_sink(log_event)
        self.server.events.add_sink(observe_rollout_event)
        engine = self.server.engine
        self._target_counts = lambda: rollout_target_counts(engine)
        ROLLOUT_TARGETS.set_function(self._target_counts)
        self.rollout = await install_rollout(self.app, self.server, self.settings, self.http_port)
        # uvicorn keeps its hands off logging (log_config=None): setup_logging owns the format.
        config = uvicorn.Config(RequestIdMiddleware(self.app, access=self.settings.access_log),
                                log_level=self.settings.log_level.lower(), lifespan="off",
                                access_log=False, timeout_graceful_shutdown=3,
                                server_header=False, log_config=None)
        self.http = _HttpServer(config)
        self._http_task = asyncio.create_task(self.http.serve(sockets=[sock]))
        while not self.http.started:
            if self._http_task.done():
                await self._http_task  # raises what stopped it
                raise RunnerError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        log.info("HTTP listening on %s port %s", self.settings.http_host, self.http_port)

    async def stop(self) -> None:
        """Stop HTTP (open event streams end), then the LwM2M server; safe to call twice."""
        if self.app is not None:
            self.app.state.shutting_down.set()
        if self.http is not None and self._http_task is not None:
            self.http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._http_task
            self._http_task = None
        if self.rollout is not None:
            await self.rollout.stop()
            self.rollout = None
        from .metrics import ROLLOUT_TARGETS

        ROLLOUT_TARGETS.clear_function(self._target_counts)
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start, announce the ports on stdout (and call ``on_ready``), run until
        SIGINT/SIGTERM, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            print(f"lwm2m-server: CoAP on udp {self.settings.coap_host} port {self.coap_port}, "
                  f"HTTP on {self.settings.http_host} port {self.http_port}, "
                  f"database {self.settings.db_url_redacted}", flush=True)
            if on_ready is not None:
                on_ready()
            assert self._http_task is not None
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait({stop_wait, self._http_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        print("lwm2m-server: stopped", flush=True)


def run(settings: Settings, on_ready: Callable[[], None] | None = None) -> int:
    """Run the server until a signal; the exit code (0, or 1 when it cannot start).
    ``on_ready`` is called once it serves (the ``--workers`` supervisor waits for it)."""
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(Runner(settings).serve_forever(on_ready))
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
