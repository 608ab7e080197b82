"""Fixtures for the server-core tests: a real LwM2MServer on 127.0.0.1 (free UDP port) over SQLite
or PostgreSQL, and test clients that talk to it over real UDP."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from lwm2m_server.config import Settings
from lwm2m_server.server import LwM2MServer
from tests.support.lwm2m_client import LwM2MTestClient

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def make_server(db_url: str, *, awake_window: float = 5.0, store: Any = None,
                **settings: Any) -> LwM2MServer:
    # The background read after Register is off unless a test asks for it: most tests count or
    # inspect the requests a device receives (tests/protocol/test_read_on_register.py turns it on).
    opts: dict[str, Any] = {"coap_host": "127.0.0.1", "coap_port": 0, "db_url": db_url,
                            "request_timeout": 3.0, "read_on_register": False}
    opts.update(settings)
    return LwM2MServer(Settings(**opts), expiry_interval=0.1, awake_window=awake_window, store=store)


@contextlib.asynccontextmanager
async def running(db_url: str, **kw: Any) -> AsyncIterator[LwM2MServer]:
    """A started server on ``db_url``, stopped (and its engine disposed) afterwards."""
    srv = make_server(db_url, **kw)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
        srv.engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/core.db"


@pytest.fixture
def pg_url() -> Any:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"lwm2m_core_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
async def server(sqlite_url: str) -> AsyncIterator[LwM2MServer]:
    async with running(sqlite_url) as srv:
        yield srv


ClientFactory = Callable[..., Awaitable[LwM2MTestClient]]


@pytest.fixture
async def clients() -> AsyncIterator[ClientFactory]:
    """``await clients("ep", {"/3/0/0": "x"}, lwm2m="1.0", ...)`` -> a started test client."""
    started: list[LwM2MTestClient] = []

    async def make(endpoint: str, values: dict[str, Any] | None = None, **kw: Any) -> LwM2MTestClient:
        c = LwM2MTestClient(endpoint, values if values is not None else DEVICE_VALUES, **kw)
        await c.start()
        started.append(c)
        return c

    yield make
    for c in started:
        await c.stop()


DEVICE_VALUES: dict[str, Any] = {
    "/1/0/0": 1, "/1/0/1": 300, "/1/0/7": "U",
    "/3/0/0": "ACME", "/3/0/1": "TinyML-1", "/3/0/9": 80, "/3/0/7/0": 3800, "/3/0/7/1": 5000,
    "/3/0/13": 1700000000,
}


def count_rows(db_url: str, table: str) -> int:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        eng.dispose()
