"""Database engine and schema creation (SQLModel on SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

__all__ = ["make_engine", "init_db", "TABLE_MODULES", "DEFAULT_DB_URL"]

DEFAULT_DB_URL = "sqlite:///./lwm2m.db"

# Every module that defines SQLModel tables; init_db imports them so create_all sees them all.
# Named, not imported here: the rollout service sits above the store and owns its own tables.
TABLE_MODULES = [
    "lwm2m_server.store.tables",     # registrations, values, events, queued requests
    "lwm2m_server.store.tokens",     # API tokens
    "lwm2m_server.store.artifacts",  # artifact metadata
    "lwm2m_server.store.blobs",      # artifact bytes (PostgreSQL: shared by every process)
    "lwm2m_server.rollout.tables",   # deployments and targets
    "lwm2m_server.store.credentials",  # device credentials, bootstrap configuration
    "lwm2m_server.cluster.tables",   # server processes, forwarded requests (PostgreSQL clusters)
]

# Columns added to existing tables after their first release: (table, column, SQL type, default).
# create_all makes new tables only, so an older database gets these with ALTER TABLE.
_ADDED_COLUMNS = [
    ("registration", "security", "VARCHAR(16)", "'none'"),
    ("registration", "owner", "VARCHAR(64)", None),
]


def make_engine(url: str = DEFAULT_DB_URL, **kwargs: object) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def init_db(engine: Engine) -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    with _schema_lock(engine):
        SQLModel.metadata.create_all(engine)
        _add_missing_columns(engine)


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, one process at a time creates the schema: cluster processes started
    together on an empty database would otherwise race in CREATE TABLE (duplicate type)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('lwm2m_server.init_db'))"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('lwm2m_server.init_db'))"))
            conn.commit()


def _add_missing_columns(engine: Engine) -> None:
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    for table, column, sql_type, default in _ADDED_COLUMNS:
        if table not in tables:
            continue
        if column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        constraint = f" NOT NULL DEFAULT {default}" if default is not None else ""
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}{constraint}"))
