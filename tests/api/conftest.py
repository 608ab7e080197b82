"""Fixtures for the REST API tests: a real SQLite database, the app, tokens per scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from lwm2m_server.store.db import init_db, make_engine
from lwm2m_server.store.tokens import create_token


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    e = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    init_db(e)
    yield e
    e.dispose()


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    """One plaintext token per scope, plus "none" (a revoked one is made in the tests)."""
    return {scope: create_token(engine, f"t-{scope}", [scope])[1]
            for scope in ("read", "write", "deploy", "admin")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The app without an LwM2M server (tokens, health, metrics)."""
    app = create_app(Settings(environment="development"), server=None, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c
