"""Device credentials and bootstrap configuration: the tables and their queries.

A credential is a PSK identity and key for one endpoint and one purpose: ``dm`` (registering with
this server) or ``bootstrap`` (talking to its bootstrap server). Identities are unique across
both. Keys are stored sealed by :class:`~lwm2m_server.security.keybox.KeyBox`; summaries never
carry them. Lookups by identity run inside the DTLS handshake (synchronously), so they go
through a short-lived cache; a change made in this process clears it at once, one made by
another process (the CLI) shows within ``CACHE_SECONDS``. Whether an endpoint has DM credentials
is asked for every plain-CoAP Register and Update: the event loop answers it from the set of such
endpoints, checked against the database at most every ``CACHE_SECONDS`` with one aggregate
query (no query per device).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, LargeBinary, Text, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from ..security.keybox import KeyBox

__all__ = [
    "CACHE_SECONDS",
    "DEFAULT_TEMPLATE",
    "PURPOSES",
    "BootstrapConfigRow",
    "Credential",
    "CredentialError",
    "CredentialStore",
    "DeviceCredentialRow",
]

PURPOSES = ("dm", "bootstrap")
DEFAULT_TEMPLATE = "*"  # the bootstrap configuration of endpoints that have none of their own
CACHE_SECONDS = 2.0
_MIN_KEY, _MAX_KEY = 16, 64  # bytes: no weaker than the suite's AES-128; tinydtls takes up to 64
_IDENTITY = re.compile(r"^[\x21-\x7e]{1,128}$")


class CredentialError(ValueError):
    """A credential or bootstrap request that cannot be carried out; the message says why."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeviceCredentialRow(SQLModel, table=True):
    """One endpoint's PSK for one purpose; the key sealed with the server secret."""

    __tablename__ = "device_credential"

    endpoint: str = Field(primary_key=True, max_length=255)
    purpose: str = Field(primary_key=True, max_length=16)
    psk_identity: str = Field(unique=True, index=True, max_length=128)
    sealed_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=_utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class BootstrapConfigRow(SQLModel, table=True):
    """What the bootstrap server writes to one endpoint (or, under ``*``, to any endpoint)."""

    __tablename__ = "bootstrap_config"

    name: str = Field(primary_key=True, max_length=255)
    config: str = Field(sa_column=Column(Text, nullable=False))  # JSON, see bootstrap_config()
    updated_at: datetime = Field(default_factory=_utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential with its key in the clear (only inside the server process)."""

    endpoint: str
    purpose: str
    psk_identity: str
    key: bytes


def check_psk(identity: str, key: bytes) -> None:
    """CredentialError unless ``identity`` is printable ASCII (1..128) and ``key`` 16..64 bytes."""
    if not _IDENTITY.match(identity):
        raise CredentialError("PSK identity must be 1..128 printable ASCII characters without spaces")
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        raise CredentialError(f"PSK must be {_MIN_KEY}..{_MAX_KEY} bytes ({2 * _MIN_KEY}..{2 * _MAX_KEY} "
                              f"hex digits), got {len(key)} bytes")


def parse_hex_key(text: str) -> bytes:
    """Bytes of a hex key (spaces and colons allowed); CredentialError when it is not hex."""
    cleaned = re.sub(r"[\s:]", "", text)
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CredentialError("PSK key must be hexadecimal") from None


class CredentialStore:
    """Credentials and bootstrap configuration in the database, keys sealed by ``keybox``.

    ``keybox`` may be a callable returning the KeyBox, so a server without a secret starts and
    only fails (SecretError) when a key must actually be sealed or opened.
    """

    def __init__(self, engine: Engine, keybox: KeyBox | Any) -> None:
        self.engine = engine
        self._keybox = keybox
        self._lock = threading.Lock()
        self._by_identity: dict[str, tuple[float, Credential | None]] = {}
        self._has: dict[str, tuple[float, bool]] = {}
        # Endpoints with a DM credential, for has_credentials_async: the set, the (count, latest
        # created_at) it was read at, when that was last compared with the database, the one
        # refresh under way, and a generation that a local change bumps (a refresh that started
        # before the change does not install its older set).
        self._dm: frozenset[str] | None = None
        self._dm_marker: tuple[Any, ...] | None = None
        self._dm_checked = 0.0
        self._dm_refresh: asyncio.Task[None] | None = None
        self._generation = 0

    def keybox(self) -> KeyBox:
        if not isinstance(self._keybox, KeyBox):
            self._keybox = self._keybox()  # kept once it could be made (SecretError otherwise)
        return self._keybox

    def _clear(self) -> None:
        with self._lock:
            self._by_identity.clear()
            self._has.clear()
            self._dm = None
            self._generation += 1

    # --- credentials ---------------------------------------------------------
    def put(self, endpoint: str, identity: str, key: bytes, purpose: str = "dm") -> dict[str, Any]:
        """Create or replace ``endpoint``'s credential for ``purpose``; returns its summary."""
        if purpose not in PURPOSES:
            raise CredentialError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
        if not endpoint or len(endpoint) > 255:
            raise CredentialError("endpoint name must be 1..255 characters")
        check_psk(identity, key)
        sealed = self.keybox().seal(key, endpoint, purpose, identity)
        with Session(self.engine) as s:
            other = s.exec(select(DeviceCredentialRow)
                           .where(DeviceCredentialRow.psk_identity == identity)).first()
            if other is not None and (other.endpoint, other.purpose) != (endpoint, purpose):
                raise CredentialError(f"PSK identity {identity!r} already belongs to endpoint "
                                      f"{other.endpoint!r} ({other.purpose})")
            row = s.get(DeviceCredentialRow, (endpoint, purpose))
            if row is None:
                row = DeviceCredentialRow(endpoint=endpoint, purpose=purpose, psk_identity=identity,
                                          sealed_key=sealed)
            else:
                row.psk_identity, row.sealed_key, row.created_at = identity, sealed, _utcnow()
            s.add(row)
            s.commit()
            s.refresh(row)
            out = _summary(row)
        self._clear()
        return out

    def summaries(self, endpoint: str) -> list[dict[str, Any]]:
        """What is stored for ``endpoint`` (identity, purpose, time), never the keys."""
        with Session(self.engine) as s:
            rows = s.exec(select(DeviceCredentialRow).where(DeviceCredentialRow.endpoint == endpoint)
                          .order_by(DeviceCredentialRow.purpose)).all()
            return [_summary(r) for r in rows]

    def delete(self, endpoint: str, purpose: str | None = None) -> int:
        """Remove ``endpoint``'s credentials (of one purpose, or all); how many went."""
        with Session(self.engine) as s:
            q = select(DeviceCredentialRow).where(DeviceCredentialRow.endpoint == endpoint)
            if purpose is not None:
                q = q.where(DeviceCredentialRow.purpose == purpose)
            rows = s.exec(q).all()
            for r in rows:
                s.delete(r)
            s.commit()
        self._clear()
        return len(rows)

    def get(self, endpoint: str, purpose: str = "dm") -> Credential | None:
        """``endpoint``'s credential with its key opened (SecretError if it does not open)."""
        with Session(self.engine) as s:
            row = s.get(DeviceCredentialRow, (endpoint, purpose))
            if row is None:
                return None
            return self._open(row)

    def _open(self, row: DeviceCredentialRow) -> Credential:
        key = self.keybox().open(row.sealed_key, row.endpoint, row.purpose, row.psk_identity)
        return Credential(row.endpoint, row.purpose, row.psk_identity, key)

    def by_identity(self, identity: str) -> Credential | None:
        """The credential with ``identity`` (cached ``CACHE_SECONDS``); None if unknown."""
        now = time.monotonic()
        hit = self._by_identity.get(identity)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        # Core SQL on a pooled connection: this runs inside the DTLS handshake, on the event
        # loop, once per new identity; an ORM session costs several times more.
        table = DeviceCredentialRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            row = conn.execute(sa_select(table).where(table.c.psk_identity == identity)).first()
        cred = None
        if row is not None:
            m = row._mapping
            key = self.keybox().open(m["sealed_key"], m["endpoint"], m["purpose"], m["psk_identity"])
            cred = Credential(m["endpoint"], m["purpose"], m["psk_identity"], key)
        with self._lock:
            if len(self._by_identity) > 100_000:
                self._by_identity.clear()
            self._by_identity[identity] = (now, cred)
        return cred

    async def has_credentials_async(self, endpoint: str) -> bool:
        """:meth:`has_credentials` for the event loop, without a query per endpoint: the answer
        comes from the set of endpoints with DM credentials, compared with the database at most
        every ``CACHE_SECONDS`` (one worker-thread query shared by every caller meanwhile)."""
        if self._dm is None or time.monotonic() - self._dm_checked >= CACHE_SECONDS:
            task = self._dm_refresh
            if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
                task = self._dm_refresh = asyncio.ensure_future(asyncio.to_thread(self._refresh_dm))
            await asyncio.shield(task)
        dm = self._dm
        if dm is None:  # changed in this process while the refresh ran: ask again
            return await asyncio.to_thread(self.has_credentials, endpoint)
        return endpoint in dm

    def _refresh_dm(self) -> None:
        """Reload the set of endpoints with DM credentials if the database's (count, latest
        ``created_at``) of them moved since the last read: an added, replaced or removed
        credential moves one of the two."""
        generation = self._generation
        table = DeviceCredentialRow.__table__  # type: ignore[attr-defined]
        dm = table.c.purpose == "dm"
        with self.engine.connect() as conn:
            # The marker before the set: a change between the two reloads once more, never less.
            marker = tuple(conn.execute(sa_select(func.count(), func.max(table.c.created_at))
                                        .where(dm)).one())
            endpoints = self._dm
            if endpoints is None or marker != self._dm_marker:
                endpoints = frozenset(conn.execute(sa_select(table.c.endpoint).where(dm)).scalars())
        with self._lock:
            if generation == self._generation:
                self._dm, self._dm_marker = endpoints, marker
                self._dm_checked = time.monotonic()

    def has_credentials(self, endpoint: str) -> bool:
        """True when ``endpoint`` has a DM credential (then plain CoAP is refused for it)."""
        now = time.monotonic()
        hit = self._has.get(endpoint)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with Session(self.engine) as s:
            found = s.get(DeviceCredentialRow, (endpoint, "dm")) is not None
        with self._lock:
            if len(self._has) > 100_000:
                self._has.clear()
            self._has[endpoint] = (now, found)
        return found

    def count(self) -> int:
        with Session(self.engine) as s:
            return len(s.exec(select(DeviceCredentialRow.endpoint)).all())

    # --- bootstrap configuration -----------------------------------------------
    def set_bootstrap(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """Store the bootstrap configuration of endpoint ``name`` (``*``: the default template).

        A PSK given in it (``psk_identity``, ``psk_key_hex``) becomes the endpoint's sealed DM
        credential and is not kept in the configuration, which is plain JSON.
        """
        if not name or len(name) > 255:
            raise CredentialError("endpoint name must be 1..255 characters")
        config = dict(config)
        key_hex = config.pop("psk_key_hex", None)
        identity = config.pop("psk_identity", None)
        if key_hex is not None:
            if name == DEFAULT_TEMPLATE:
                raise CredentialError("the template cannot carry a PSK: every device would share it")
            self.put(name, str(identity), parse_hex_key(str(key_hex)), "dm")
        with Session(self.engine) as s:
            row = s.get(BootstrapConfigRow, name) or BootstrapConfigRow(name=name, config="{}")
            row.config = json.dumps(config, sort_keys=True)
            row.updated_at = _utcnow()
            s.add(row)
            s.commit()
        return config

    def get_bootstrap(self, name: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(BootstrapConfigRow, name)
            return json.loads(row.config) if row is not None else None

    def list_bootstrap(self) -> dict[str, dict[str, Any]]:
        with Session(self.engine) as s:
            return {r.name: json.loads(r.config) for r in s.exec(select(BootstrapConfigRow)).all()}

    def delete_bootstrap(self, name: str) -> bool:
        with Session(self.engine) as s:
            row = s.get(BootstrapConfigRow, name)
            if row is None:
                return False
            s.delete(row)
            s.commit()
            return True

    def bootstrap_for(self, endpoint: str) -> dict[str, Any] | None:
        """The configuration that applies to ``endpoint``: its own, else the template, else None."""
        return self.get_bootstrap(endpoint) or self.get_bootstrap(DEFAULT_TEMPLATE)


def _summary(row: DeviceCredentialRow) -> dict[str, Any]:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return {"endpoint": row.endpoint, "purpose": row.purpose, "mode": "psk",
            "psk_identity": row.psk_identity, "created_at": created.isoformat()}
