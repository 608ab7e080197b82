"""API tokens: the table, creation, verification and revocation.

Only the SHA-256 of a token is stored (tokens are 256-bit random strings, so a plain hash is
enough; no salt or slow hash is needed). The plaintext is shown once, at creation.

A verified token is remembered in memory for ``VERIFIED_TTL`` seconds (:func:`cached_token`), so
a burst of REST calls does not look the same token up in the database each time. A revocation
in this process takes effect at once (:func:`revoke_token` forgets the token); one made by another
process sharing the database (the ``token revoke`` command, another server process) within
``VERIFIED_TTL`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

__all__ = [
    "ApiToken", "TokenError", "SCOPES", "TOKEN_PREFIX",
    "parse_scopes", "hash_token", "create_token", "verify_token", "cached_token", "list_tokens",
    "revoke_token", "VERIFIED_TTL",
]

SCOPES = ("read", "write", "deploy", "admin")
TOKEN_PREFIX = "lwm2m_"
# last_used is written at most this often per token, so reads do not turn into writes.
_LAST_USED_RESOLUTION = timedelta(seconds=30)
# Seconds a verified token is trusted without asking the database again: how late another
# process's revocation may be seen here.
VERIFIED_TTL = 2.0
# Per engine (tests and tools may hold several): token digest -> (expiry, monotonic; the row).
_verified: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, ApiToken]]] = weakref.WeakKeyDictionary()


class TokenError(ValueError):
    """A token request that cannot be carried out (bad name or scopes, unknown token)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every timestamp we store is UTC.
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


class ApiToken(SQLModel, table=True):
    """One API token: its hash, a display prefix, scopes and usage times."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=100)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    # The first characters of the token, to recognise it in listings.
    display_prefix: str = Field(max_length=16)
    scopes: str = Field(max_length=100)  # comma-separated, from SCOPES
    created_at: datetime = Field(default_factory=_utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """True when the token carries ``scope``; ``admin`` carries every scope."""
        have = self.scope_set
        return scope in have or "admin" in have

    def summary(self) -> dict[str, object]:
        """JSON-able description without the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.display_prefix,
            "scopes": sorted(self.scope_set, key=SCOPES.index),
            "created_at": _aware(self.created_at).isoformat() if self.created_at else None,  # type: ignore[union-attr]
            "last_used_at": _aware(self.last_used_at).isoformat() if self.last_used_at else None,  # type: ignore[union-attr]
            "revoked": self.revoked,
        }


def parse_scopes(scopes: str | Iterable[str]) -> list[str]:
    """Validated, de-duplicated scopes in canonical order; raises TokenError on unknown ones."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {s.strip().lower() for s in items if s.strip()}
    if not wanted:
        raise TokenError(f"at least one scope is needed (from {', '.join(SCOPES)})")
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in wanted]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, name: str, scopes: str | Iterable[str]) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the plaintext (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token name is 1 to 100 characters")
    scope_list = parse_scopes(scopes)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(plaintext),
                   display_prefix=plaintext[: len(TOKEN_PREFIX) + 6], scopes=",".join(scope_list))
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
    return row, plaintext


def cached_token(engine: Engine, plaintext: str) -> ApiToken | None:
    """The token for ``plaintext`` if :func:`verify_token` found it live less than
    ``VERIFIED_TTL`` seconds ago; None otherwise (then ask :func:`verify_token`). No I/O."""
    known = _verified.get(engine)
    if not known or not plaintext or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    entry = known.get(digest)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        known.pop(digest, None)
        return None
    return entry[1]


def _remember(engine: Engine, row: ApiToken) -> None:
    known = _verified.get(engine)
    if known is None:
        known = _verified.setdefault(engine, {})
    if len(known) > 10_000:  # only live tokens get here, but keep it bounded all the same
        now = time.monotonic()
        for digest in [d for d, (expiry, _) in known.items() if expiry < now]:
            known.pop(digest, None)
    known[row.token_hash] = (time.monotonic() + VERIFIED_TTL, row)


def _forget(engine: Engine, digest: str) -> None:
    known = _verified.get(engine)
    if known is not None:
        known.pop(digest, None)


def verify_token(engine: Engine, plaintext: str) -> ApiToken | None:
    """The live (not revoked) token for ``plaintext``, or None; records when it was last used.
    Always asks the database (and refreshes what :func:`cached_token` knows)."""
    if not plaintext or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    with Session(engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        # The index finds the row; compare the digests in constant time all the same.
        if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked:
            _forget(engine, digest)
            return None
        now = _utcnow()
        last = _aware(row.last_used_at)
        if last is None or now - last > _LAST_USED_RESOLUTION:
            row.last_used_at = now
            session.add(row)
            session.commit()
            session.refresh(row)
        session.expunge(row)
    _remember(engine, row)
    return row


def list_tokens(engine: Engine, include_revoked: bool = True) -> Sequence[ApiToken]:
    with Session(engine) as session:
        stmt = select(ApiToken).order_by(ApiToken.id)  # type: ignore[arg-type]
        if not include_revoked:
            stmt = stmt.where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
        rows = list(session.exec(stmt).all())
        for r in rows:
            session.expunge(r)
        return rows


def revoke_token(engine: Engine, ident: int | str) -> ApiToken:
    """Revoke the token with id ``ident`` (an int or digits) or, failing that, the one named ``ident``."""
    with Session(engine) as session:
        row: ApiToken | None = None
        if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
            row = session.get(ApiToken, int(ident))
        if row is None and isinstance(ident, str):
            rows = session.exec(select(ApiToken).where(ApiToken.name == ident,
                                                       ApiToken.revoked_at.is_(None))).all()  # type: ignore[union-attr]
            if len(rows) > 1:
                raise TokenError(f"{len(rows)} live tokens are named {ident!r}; revoke by id")
            row = rows[0] if rows else None
        if row is None:
            raise TokenError(f"no token with id or name {ident!r}")
        if row.revoked_at is None:
            row.revoked_at = _utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
        session.expunge(row)
    _forget(engine, row.token_hash)  # refused from the next request on, in this process
    return row
