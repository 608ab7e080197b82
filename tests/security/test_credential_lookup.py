"""Whether an endpoint has DM credentials, as the registration interface asks it for every
plain-CoAP Register and Update: answered from memory, never older than CACHE_SECONDS for a
change made elsewhere, at once for a change made through the same store, one query per check."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from lwm2m_server.security.keybox import KeyBox
from lwm2m_server.store import credentials as credentials_module
from lwm2m_server.store.credentials import CredentialStore
from lwm2m_server.store.db import init_db, make_engine
from tests.support.postgres import temporary_database

KEY = bytes(range(16))
BOX = KeyBox("s" * 8 + "0123456789abcdefghijklmnopqrstuv")


@pytest.fixture
def sqlite_db(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/creds.db"


@pytest.fixture
def pg_db() -> Iterator[str]:
    with temporary_database("lwm2m_creds_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_stores(request: pytest.FixtureRequest) -> Iterator[tuple[CredentialStore, CredentialStore, Any]]:
    """The server's store and another process's (the CLI's), on one database."""
    url = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    server_engine, cli_engine = make_engine(url), make_engine(url)
    init_db(server_engine)
    yield CredentialStore(server_engine, BOX), CredentialStore(cli_engine, BOX), server_engine
    server_engine.dispose()
    cli_engine.dispose()


async def test_a_change_made_elsewhere_shows_within_the_cache_time(two_stores, monkeypatch) -> None:
    monkeypatch.setattr(credentials_module, "CACHE_SECONDS", 0.2)
    server, cli, _ = two_stores
    assert await server.has_credentials_async("dev-a") is False
    cli.put("dev-a", "dev-a-id", KEY)
    await asyncio.sleep(0.3)
    assert await server.has_credentials_async("dev-a") is True
    assert await server.has_credentials_async("dev-b") is False
    cli.delete("dev-a")
    await asyncio.sleep(0.3)
    assert await server.has_credentials_async("dev-a") is False


async def test_a_replaced_credential_keeps_the_endpoint_listed(two_stores, monkeypatch) -> None:
    monkeypatch.setattr(credentials_module, "CACHE_SECONDS", 0.2)
    server, cli, _ = two_stores
    cli.put("dev-a", "dev-a-id", KEY)
    await asyncio.sleep(0.3)
    assert await server.has_credentials_async("dev-a") is True
    # Same count of DM credentials, one endpoint swapped for another: the set follows.
    cli.delete("dev-a")
    cli.put("dev-c", "dev-c-id", KEY)
    await asyncio.sleep(0.3)
    assert await server.has_credentials_async("dev-a") is False
    assert await server.has_credentials_async("dev-c") is True


async def test_a_change_through_the_same_store_counts_at_once(two_stores) -> None:
    server, _, _ = two_stores
    assert await server.has_credentials_async("dev-a") is False
    server.put("dev-a", "dev-a-id", KEY)
    assert await server.has_credentials_async("dev-a") is True
    server.delete("dev-a")
    assert await server.has_credentials_async("dev-a") is False


async def test_a_bootstrap_credential_is_no_dm_credential(two_stores) -> None:
    server, _, _ = two_stores
    server.put("dev-a", "dev-a-bs", KEY, "bootstrap")
    assert await server.has_credentials_async("dev-a") is False


async def test_many_lookups_cost_one_query_per_check(two_stores) -> None:
    server, _, engine = two_stores
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    answers = await asyncio.gather(*(server.has_credentials_async(f"dev-{i}") for i in range(500)))
    assert answers == [False] * 500
    # The first check reads the marker and the (empty) set; every other lookup is from memory.
    assert len(statements) == 2, statements
