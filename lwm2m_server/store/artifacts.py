"""Artifact metadata rows and upload ingestion (files themselves live in ``ota.store``).

``ingest_artifact`` is what ``POST /api/v1/artifacts`` and ``lwm2m-server artifact add`` call: it
streams the upload into the content-addressed folder, checks the file for its kind with
``ota.inspection`` and records the ``Artifact`` row only when every check passed. A refused or
failed upload leaves neither a file nor a row; an identical upload (same bytes, kind, name and
version) returns the existing row, and the same bytes with other fields are refused with the
existing row (409): nothing a caller sends is silently ignored.

On PostgreSQL the bytes also go into ``artifact_blob`` (``store.blobs``) in the transaction that
inserts the row, so every process on the database can serve the artifact.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from ota import version as ota_version
from ota.errors import OtaError
from ota.inspection import ARTIFACT_KINDS, detect_kind, inspect_artifact
from ota.keys import PublicKey
from ota.store import ArtifactStore, SizeLimitError

from .blobs import ArtifactBlob, share_blob, shares_blobs, write_blob

__all__ = [
    "Artifact", "ArtifactError", "IngestResult", "ARTIFACT_KINDS",
    "add_artifact", "get_artifact", "get_artifact_by_sha256", "list_artifacts", "ingest_artifact",
    "check_artifact", "share_stored_artifacts", "remove_unrecorded_files",
]

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_FREE_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ArtifactError(ValueError):
    """An artifact request that cannot be carried out; ``status`` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 400,
                 existing: Artifact | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.existing = existing  # the stored artifact a 409 refers to


class Artifact(SQLModel, table=True):
    """One stored artifact: firmware image, Wasm model or SOTA package, by content hash.

    ``meta`` (column ``metadata``) holds what the kind's checks found: MCUboot header fields,
    Wasm exports and memory pages, or the SOTA manifest.
    """

    __tablename__ = "artifact"
    # Ids are never used again after a delete (old deployments name the artifact by id).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=16)
    name: str = Field(max_length=128)
    version: str = Field(max_length=64)
    sha256: str = Field(max_length=64, unique=True, index=True)
    size: int
    created_at: datetime = Field(default_factory=_utcnow,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict,
                                 sa_column=Column("metadata", JSON, nullable=False))

    def summary(self) -> dict[str, Any]:
        """JSON form for the API and the CLI."""
        created = self.created_at
        if created.tzinfo is None:  # SQLite hands back naive datetimes; all are UTC
            created = created.replace(tzinfo=timezone.utc)
        return {"id": self.id, "kind": self.kind, "name": self.name, "version": self.version,
                "sha256": self.sha256, "size": self.size, "created_at": created.isoformat(),
                "metadata": self.meta}


@dataclass(frozen=True)
class IngestResult:
    """The artifact row and whether this upload created it (False: identical one existed)."""

    artifact: Artifact
    created: bool


def _check_fields(kind: str, name: str, version: str) -> None:
    if kind not in ARTIFACT_KINDS:
        raise ArtifactError(f"unknown artifact kind {kind!r}: use one of "
                            f"{', '.join(ARTIFACT_KINDS)}")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ArtifactError(f"artifact name {name!r}: 1-128 letters, digits, '.', '_', '+', '-'")
    if kind == "firmware":
        if not isinstance(version, str) or not _FREE_VERSION_RE.fullmatch(version):
            raise ArtifactError(f"firmware version {version!r}: 1-64 letters, digits, '.', '+', "
                                "'_', '-'")
    else:
        try:
            ota_version.parse(version)
        except ota_version.VersionError as e:
            raise ArtifactError(f"{kind} {e}") from None


def add_artifact(engine: Engine, *, kind: str, name: str, version: str, sha256: str, size: int,
                 metadata: dict[str, Any] | None = None) -> Artifact:
    """Record an artifact row; a row with the same SHA-256 is returned instead of a new one."""
    return _insert(engine, kind=kind, name=name, version=version, sha256=sha256, size=size,
                   metadata=metadata)[0]


def _insert(engine: Engine, *, kind: str, name: str, version: str, sha256: str, size: int,
            metadata: dict[str, Any] | None, blob: ArtifactStore | None = None
            ) -> tuple[Artifact, bool]:
    """The row and whether this call inserted it (False: a row with that SHA-256 existed).

    With ``blob``, that store's file goes into ``artifact_blob`` in the same transaction.
    """
    _check_fields(kind, name, version)
    row = Artifact(kind=kind, name=name, version=version, sha256=sha256, size=size,
                   meta=dict(metadata or {}))
    with Session(engine, expire_on_commit=False) as s:
        s.add(row)
        try:
            if blob is not None:
                # A concurrent upload of the same bytes holds the same part keys: this waits
                # for it and then fails like the row insert, so the loser finds its row.
                write_blob(s, sha256, blob.path(sha256))
            s.commit()
        except IntegrityError:
            s.rollback()
            existing = get_artifact_by_sha256(engine, sha256)
            if existing is None:
                raise
            return existing, False
        s.refresh(row)
        return row, True


def get_artifact(engine: Engine, artifact_id: int) -> Artifact | None:
    """The artifact with this id, or None."""
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Artifact, artifact_id)


def get_artifact_by_sha256(engine: Engine, sha256: str) -> Artifact | None:
    """The artifact with this content hash (lowercase hex), or None."""
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(select(Artifact).where(Artifact.sha256 == sha256.lower())).first()


def list_artifacts(engine: Engine, kind: str | None = None, *, limit: int = 1000,
                   offset: int = 0) -> list[Artifact]:
    """Artifacts, newest first, optionally of one kind."""
    with Session(engine, expire_on_commit=False) as s:
        q = select(Artifact)
        if kind is not None:
            q = q.where(Artifact.kind == kind)
        q = q.order_by(Artifact.id.desc()).offset(offset).limit(limit)  # type: ignore[union-attr]
        return list(s.exec(q).all())


def _check_key(kind: str, sota_public_key: PublicKey | None) -> None:
    if kind == "sota" and sota_public_key is None:
        raise ArtifactError("no SOTA public key is configured, so SOTA packages cannot be "
                            "verified: set LWM2M_SOTA_PUBLIC_KEY to the PEM public key that signs "
                            "them (lwm2m-server keys generate --public-out), or let the server "
                            "create keys/sota-signing.pub.pem in its data folder on start "
                            "(docs/models.md)", status=422)


def check_artifact(data: bytes, *, kind: str, name: str, version: str,
                   sota_public_key: PublicKey | None = None,
                   firmware_public_key: PublicKey | None = None, slot_size: int | None = None,
                   allowed_imports: Iterable[str] = frozenset()) -> dict[str, Any]:
    """The verdict on an upload, without keeping anything: the checks ``ingest_artifact`` makes
    (fields, kind, signature, hash, Wasm exports, SOTA version) and ``inspect_artifact``'s
    description (kind, size and sha256 included). ``ArtifactError`` (400, 422) when refused.

    The console shows it before the operator confirms the upload.
    """
    _check_fields(kind, name, version)
    _check_key(kind, sota_public_key)
    key = sota_public_key if kind == "sota" else firmware_public_key
    if kind == "firmware" and detect_kind(data) != "firmware":
        # A raw image may hold any bytes, but one that opens like a SOTA package or a Wasm
        # module is that (maybe tampered), not firmware: a device would flash it as such.
        found = detect_kind(data)
        raise ArtifactError(f"this file is a {'SOTA package' if found == 'sota' else 'Wasm module'}"
                            f", not a firmware image: upload it as kind={found}", status=422)
    try:
        meta = inspect_artifact(data, kind, public_key=key, slot_size=slot_size,
                                allowed_imports=allowed_imports)
    except OtaError as e:
        raise ArtifactError(f"{kind} check failed: {e}", status=422) from None
    if kind == "sota" and meta["manifest"]["version"] != version:
        raise ArtifactError(f"version {version!r} differs from the package manifest's "
                            f"{meta['manifest']['version']!r}", status=422)
    return meta


def _same_fields(existing: Artifact, kind: str, name: str, version: str) -> None:
    """Refuse (409, with the stored row) an upload of stored bytes under other fields."""
    differ = [f"{field} {mine!r} (stored: {theirs!r})" for field, mine, theirs in (
        ("kind", kind, existing.kind), ("name", name, existing.name),
        ("version", version, existing.version)) if mine != theirs]
    if differ:
        raise ArtifactError(f"these bytes are already stored as {existing.kind} artifact "
                            f"{existing.id} with other fields: {', '.join(differ)}; artifacts "
                            f"are stored by content, so one file has one kind, name and version",
                            status=409, existing=existing)


def ingest_artifact(
    engine: Engine,
    store: ArtifactStore,
    source: BinaryIO | Iterable[bytes] | bytes,
    *,
    kind: str,
    name: str,
    version: str,
    sota_public_key: PublicKey | None = None,
    firmware_public_key: PublicKey | None = None,
    slot_size: int | None = None,
    allowed_imports: Iterable[str] = frozenset(),
    max_size: int | None = None,
) -> IngestResult:
    """Store, check and record one upload; ``ArtifactError`` (with an HTTP status) when refused.

    firmware: an MCUboot image must verify (signature too with ``firmware_public_key``), any other
    file is kept as a raw image. model: Wasm model checks. sota: ``verify_package`` with
    ``sota_public_key`` (required), and the package's version must equal ``version``.
    Status codes: 400 bad fields, 409 same content stored with another kind, name or version
    (``ArtifactError.existing`` is that row), 413 over the size limit, 422 the file fails its
    checks (a SOTA package or Wasm module uploaded as firmware, too).
    """
    _check_fields(kind, name, version)
    _check_key(kind, sota_public_key)
    try:
        blob = store.put(source, max_size=max_size)
    except SizeLimitError as e:
        raise ArtifactError(str(e), status=413) from None
    shared = shares_blobs(engine)
    try:
        existing = get_artifact_by_sha256(engine, blob.sha256)
        if existing is not None:
            _same_fields(existing, kind, name, version)
            if shared:  # recorded before blobs were shared, or its blob was removed for repair
                share_blob(engine, blob.sha256, store.path(blob.sha256))
            return IngestResult(existing, created=False)
        meta = check_artifact(store.read_bytes(blob.sha256), kind=kind, name=name,
                              version=version, sota_public_key=sota_public_key,
                              firmware_public_key=firmware_public_key, slot_size=slot_size,
                              allowed_imports=allowed_imports)
        for dup in ("kind", "size", "sha256"):
            meta.pop(dup, None)
        row, created = _insert(engine, kind=kind, name=name, version=version,
                               sha256=blob.sha256, size=blob.size, metadata=meta,
                               blob=store if shared else None)
        if not created:  # a concurrent upload of the same bytes won: same fields, or 409
            _same_fields(row, kind, name, version)
        return IngestResult(row, created=created)
    except BaseException:
        if blob.created and get_artifact_by_sha256(engine, blob.sha256) is None:
            store.delete(blob.sha256)
        raise


def remove_unrecorded_files(engine: Engine, store: ArtifactStore, *,
                            min_age: float = 600.0) -> int:
    """Remove the files of ``store`` that no artifact names (deleted while this process was not
    running, so it missed the event); returns how many. A file younger than ``min_age`` seconds
    stays: it may be an upload whose row is still being written."""
    with Session(engine) as s:
        recorded = set(s.exec(select(Artifact.sha256)).all())
    cutoff = time.time() - min_age
    removed = 0
    for sha in store.stored():
        path = store.path(sha)
        try:
            young = path.stat().st_mtime > cutoff
        except FileNotFoundError:
            continue
        if sha in recorded or young or get_artifact_by_sha256(engine, sha) is not None:
            continue  # (the last: uploaded just now)
        store.delete(sha)
        removed += 1
    if removed:
        log.info("removed %d file(s) of deleted artifacts from this process's folder", removed)
    return removed


def share_stored_artifacts(engine: Engine, store: ArtifactStore) -> int:
    """Copy into ``artifact_blob`` the artifacts recorded without bytes there whose files are in
    ``store`` (uploaded before blobs were shared); returns how many. Nothing on SQLite."""
    if not shares_blobs(engine):
        return 0
    with Session(engine) as s:
        blob = select(ArtifactBlob.sha256).where(  # type: ignore[call-overload]
            ArtifactBlob.sha256 == Artifact.sha256).exists()
        missing = s.exec(select(Artifact.sha256).where(~blob)).all()
    copied = 0
    for sha in missing:
        path = store.path(sha)
        if path.is_file() and share_blob(engine, sha, path):
            copied += 1
    if copied:
        log.info("copied %d artifact file(s) of this process's folder into the database", copied)
    return copied
