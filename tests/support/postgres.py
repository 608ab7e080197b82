"""A throwaway PostgreSQL database on 127.0.0.1:5432 (trust auth) for tests that need one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """Create a database named ``prefix`` + random suffix, yield its SQLAlchemy URL, drop it.

    Skips the calling test when PostgreSQL is not reachable.
    """
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {e}")
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
