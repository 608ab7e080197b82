"""The real process pieces for end-to-end tests: the Runner (LwM2M server on UDP + uvicorn on
TCP, both on 127.0.0.1 port 0) on SQLite or PostgreSQL, tokens per scope, an HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner
from lwm2m_server.store.tokens import create_token
from tests.support.lwm2m_client import LwM2MTestClient
from tests.support.postgres import temporary_database

@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at the end."""
    with temporary_database("lwm2m_e2e_") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"
        return
    url = request.getfixturevalue("pg_url")
    yield url
    # The next module starts from empty tables in the session's database.
    from sqlmodel import SQLModel

    from lwm2m_server.store.db import init_db, make_engine

    engine = make_engine(url)
    init_db(engine)
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


# Queue-mode devices count as awake this many seconds after their last message.
AWAKE_WINDOW = 1.0

DEVICE_VALUES = {"/3/0/0": "ACME", "/3/0/1": "tiny-1", "/3/0/9": 80, "/3/0/7/0": 3800,
                 "/3/0/7/1": 5000, "/3/0/13": 0, "/1/0/0": 1, "/1/0/1": 300, "/1/0/6": False,
                 "/1/0/7": "U"}


def e2e_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = dict(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1",
                                     http_port=0, db_url=db_url, request_timeout=2.0, log_level="warning",
                                     # tests count what a device receives: no background read
                                     read_on_register=False)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Stack:
    runner: Runner
    http: httpx.AsyncClient
    tokens: dict[str, str]

    @property
    def server(self):  # type: ignore[no-untyped-def]
        return self.runner.server

    @property
    def coap_port(self) -> int:
        assert self.runner.coap_port is not None
        return self.runner.coap_port

    def auth(self, scope: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}


async def start_stack(db_url: str, settings: dict[str, object] | None = None,
                      **server_options: object) -> Stack:
    runner = Runner(e2e_settings(db_url, **(settings or {})), expiry_interval=0.2, **server_options)
    await runner.start()
    tokens = {s: create_token(runner.server.engine, f"e2e-{s}", [s])[1]
              for s in ("read", "write", "deploy", "admin")}
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runner.http_port}", timeout=20)
    return Stack(runner, http, tokens)


async def stop_stack(stack: Stack) -> None:
    await stack.http.aclose()
    await stack.runner.stop()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def registered(stack: Stack, endpoint: str, values: dict[str, Any] | None = None, *,
                     asleep: bool = False, **options: Any) -> AsyncIterator[LwM2MTestClient]:
    """A test client registered as ``endpoint`` (stopped on exit); ``asleep``: it has gone to
    sleep (queue mode) and the server's awake window after its last message has passed."""
    client = LwM2MTestClient(endpoint, dict(values if values is not None else DEVICE_VALUES), **options)
    await client.start()
    try:
        resp = await client.register(stack.coap_port)
        assert str(resp.code).startswith("2.01"), resp
        if asleep:
            await client.sleep()
            await asyncio.sleep(AWAKE_WINDOW + 0.2)
        yield client
    finally:
        await client.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(db_url: str) -> AsyncIterator[Stack]:
    """Server + HTTP on loopback ports, one per test module and database (tests use their own
    endpoints); queue-mode devices count as asleep 1 s after they last spoke.

    Modules using it run their tests in the module's event loop:
    ``pytestmark = pytest.mark.asyncio(loop_scope="module")``."""
    s = await start_stack(db_url, awake_window=AWAKE_WINDOW)
    try:
        yield s
    finally:
        await stop_stack(s)
