"""Artifact bytes in the database, so every process of a PostgreSQL cluster can serve them.

On PostgreSQL, ingestion writes an artifact's bytes into ``artifact_blob`` (1 MiB rows, keyed
by SHA-256 and part number) in the transaction that records its ``artifact`` row: a refused or
failed upload leaves neither. A process whose own artifact folder lacks a file fetches it from
here (``blob_fetcher``, handed to ``ota.store.ArtifactStore``), which keeps it only when its
SHA-256 matches. On SQLite (one process, one folder) the table stays empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Column, LargeBinary, delete, exists, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from ota.store import Fetch

__all__ = ["ArtifactBlob", "PART_SIZE", "shares_blobs", "write_blob", "has_blob",
           "blob_fetcher", "share_blob"]

PART_SIZE = 1024 * 1024


class ArtifactBlob(SQLModel, table=True):
    """One part (``PART_SIZE`` bytes, the last one shorter) of an artifact's bytes."""

    __tablename__ = "artifact_blob"

    sha256: str = Field(primary_key=True, max_length=64)
    part: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


def shares_blobs(engine: Engine) -> bool:
    """Whether artifact bytes go into the database too (PostgreSQL: several processes)."""
    return engine.dialect.name == "postgresql"


def write_blob(session: Session, sha256: str, path: Path) -> int:
    """Add the parts of the file at ``path`` to ``session``'s transaction; returns the size.

    Parts left under this SHA-256 without an artifact row (a row removed by hand) are replaced.
    """
    table = ArtifactBlob.__table__  # type: ignore[attr-defined]
    session.execute(delete(table).where(table.c.sha256 == sha256))
    size = 0
    with path.open("rb") as f:
        part = 0
        while chunk := f.read(PART_SIZE):
            session.execute(insert(table), [{"sha256": sha256, "part": part, "data": chunk}])
            size += len(chunk)
            part += 1
    return size


def has_blob(engine: Engine, sha256: str) -> bool:
    """Whether the database holds bytes for this SHA-256."""
    with Session(engine) as s:
        q = select(exists().where(ArtifactBlob.sha256 == sha256))  # type: ignore[arg-type]
        return bool(s.execute(q).scalar())


def _parts(engine: Engine, sha256: str) -> Iterator[bytes] | None:
    """The parts of one artifact, in order, streamed (one statement: one snapshot), or None."""
    conn: Connection = engine.connect()
    try:
        result = conn.execution_options(stream_results=True, yield_per=4).execute(
            select(ArtifactBlob.data)  # type: ignore[call-overload]
            .where(ArtifactBlob.sha256 == sha256).order_by(ArtifactBlob.part))
        first = result.fetchone()
    except BaseException:
        conn.close()
        raise
    if first is None:
        conn.close()
        return None

    def chunks() -> Iterator[bytes]:
        try:
            yield bytes(first[0])
            for row in result:
                yield bytes(row[0])
        finally:
            conn.close()
    return chunks()


def blob_fetcher(engine: Engine) -> Fetch | None:
    """The ``fetch`` for an ``ArtifactStore`` of a process on this database (None: SQLite)."""
    if not shares_blobs(engine):
        return None
    return lambda sha256: _parts(engine, sha256)


def share_blob(engine: Engine, sha256: str, path: Path) -> bool:
    """Write the bytes of a recorded artifact whose blob is missing; False when it was there."""
    if has_blob(engine, sha256):
        return False
    try:
        with Session(engine) as s:
            write_blob(s, sha256, path)
            s.commit()
    except IntegrityError:  # another process wrote it first
        return False
    return True
