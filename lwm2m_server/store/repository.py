"""Persistence of the server core behind one interface: registrations, latest values, events,
queued requests, observations.

:class:`SqlStore` (SQLModel tables on SQLite or PostgreSQL) writes through a group-commit writer:
writes issued while a transaction runs are collected and committed together in the next one, in
a worker thread, so the event loop keeps serving devices and a burst of registrations costs a few
transactions instead of one each. ``await save_*`` returns once the data is committed. If a batch
fails, each of its writes is retried in a transaction of its own, so one bad write fails alone
and nothing is half-written. :class:`MemoryStore` keeps everything in dictionaries (tests,
benchmarks, a server without persistence).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..events import Event
from ..model import Path, Value
from ..protocol.jsonable import tagged, untagged
from ..protocol.observations import StoredObservation, parse_paths_key, paths_key
from ..protocol.queue import QueuedRequest
from ..protocol.registration import Registration
from ..protocol.requests import DeviceRequest, request_from_json, request_to_json
from .tables import EventRow, LatestValueRow, ObservationRow, QueuedRequestRow, RegistrationRow

__all__ = ["Store", "SqlStore", "MemoryStore", "StoreError"]

log = logging.getLogger(__name__)

Latest = dict[str, dict[Path, tuple[Value, datetime]]]

REG = RegistrationRow.__table__  # type: ignore[attr-defined]
VAL = LatestValueRow.__table__  # type: ignore[attr-defined]
EVT = EventRow.__table__  # type: ignore[attr-defined]
QRQ = QueuedRequestRow.__table__  # type: ignore[attr-defined]
# Queued requests in these states are over; retention may delete them.
FINISHED_STATES = ("done", "failed", "expired")
OBS = ObservationRow.__table__  # type: ignore[attr-defined]


class StoreError(Exception):
    """The store could not carry out a write or read (database unreachable, constraint broken)."""


class Store(Protocol):
    """What the protocol layer needs from persistence."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def save_registration(self, reg: Registration) -> None: ...
    def refresh_registration_nowait(self, reg: Registration) -> None: ...
    async def delete_registration(self, endpoint: str, registration_id: str) -> None: ...
    async def load_registrations(self) -> list[Registration]: ...
    def save_values_nowait(self, endpoint: str, values: Mapping[Path, Value], when: datetime) -> None: ...
    async def load_latest(self) -> Latest: ...
    def add_event(self, event: Event) -> None: ...
    async def save_queued(self, q: QueuedRequest, request: DeviceRequest | None) -> None: ...
    async def load_unfinished_queued(self) -> list[tuple[QueuedRequest, DeviceRequest]]: ...
    async def get_queued(self, request_id: str) -> QueuedRequest | None: ...
    async def save_observation(self, obs: StoredObservation) -> None: ...
    async def delete_observation(self, endpoint: str, paths: tuple[Path, ...]) -> None: ...
    async def load_observations(self) -> list[StoredObservation]: ...
    async def events(self, endpoint: str | None = None, kind: str | None = None,
                     limit: int = 100) -> list[Event]: ...
    async def purge_events(self, before: datetime, batch: int) -> int: ...
    async def purge_requests(self, before: datetime, batch: int) -> int: ...
    async def flush(self) -> None: ...


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4096)
def _paths_json(paths: tuple[Path, ...]) -> str:
    # Registrations share their objects tuple (one parse per payload): one JSON text per tuple.
    return json.dumps([str(p) for p in paths])


@functools.lru_cache(maxsize=4096)
def _paths_from_json(text: str) -> tuple[Path, ...]:
    # The other way: devices of one fleet share one objects text, so one parse and one tuple.
    return tuple(Path.parse(p) for p in json.loads(text))


def registration_row(reg: Registration) -> dict[str, Any]:
    return {
        "endpoint": reg.endpoint, "registration_id": reg.registration_id,
        "lwm2m_version": reg.lwm2m_version, "binding": reg.binding, "lifetime": reg.lifetime,
        "sms": reg.sms, "queue_mode": reg.queue_mode, "host": reg.address[0], "port": reg.address[1],
        "objects": _paths_json(reg.objects),
        "object_versions": json.dumps({str(k): v for k, v in reg.object_versions.items()}),
        "root_path": reg.root_path, "preferred_format": reg.preferred_format,
        "security": reg.security, "registered_at": reg.registered_at, "last_seen": reg.last_seen, "online": reg.online,
        "owner": reg.owner,
    }


def registration_from_row(row: Mapping[str, Any]) -> Registration:
    return Registration(
        endpoint=row["endpoint"], registration_id=row["registration_id"],
        lwm2m_version=row["lwm2m_version"], binding=row["binding"], lifetime=row["lifetime"],
        sms=row["sms"], queue_mode=bool(row["queue_mode"]), address=(row["host"], row["port"]),
        objects=_paths_from_json(row["objects"]),
        object_versions={int(k): v for k, v in json.loads(row["object_versions"]).items()},
        root_path=row["root_path"], preferred_format=row["preferred_format"],
        registered_at=_aware(row["registered_at"]), last_seen=_aware(row["last_seen"]),
        online=bool(row["online"]), security=row.get("security") or "none", owner=row.get("owner"))


def queued_row(q: QueuedRequest, request: DeviceRequest | None) -> dict[str, Any]:
    row = {
        "id": q.id, "endpoint": q.endpoint, "state": q.state, "summary": json.dumps(q.request),
        "created_at": q.created_at, "updated_at": q.updated_at, "expires_at": q.expires_at,
        "result": json.dumps(q.result) if q.result is not None else None,
        "error": q.error, "coap_code": q.coap_code,
    }
    if request is not None:
        row["request"] = json.dumps(request_to_json(request))
    return row


def queued_from_row(row: Mapping[str, Any]) -> QueuedRequest:
    return QueuedRequest(
        id=row["id"], endpoint=row["endpoint"], request=json.loads(row["summary"]), state=row["state"],
        created_at=_aware(row["created_at"]), updated_at=_aware(row["updated_at"]),
        expires_at=_aware(row["expires_at"]),
        result=json.loads(row["result"]) if row["result"] else None, error=row["error"],
        coap_code=row["coap_code"])


def observation_row(obs: StoredObservation) -> dict[str, Any]:
    return {"endpoint": obs.endpoint, "paths": paths_key(obs.paths), "composite": obs.composite,
            "origin": obs.origin, "attributes": json.dumps(obs.attributes), "created_at": obs.created_at}


def observation_from_row(row: Mapping[str, Any]) -> StoredObservation:
    return StoredObservation(endpoint=row["endpoint"], paths=parse_paths_key(row["paths"]),
                             composite=bool(row["composite"]), origin=row["origin"],
                             created_at=_aware(row["created_at"]),
                             attributes=json.loads(row["attributes"]))


@dataclass(slots=True)
class _Op:
    kind: str  # "upsert", "insert", "update", "delete"
    table: Table
    rows: list[dict[str, Any]]
    keys: tuple[str, ...] = ()
    future: asyncio.Future[None] | None = None


def _key_params(row: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``row`` with its key columns renamed ``k_<key>``: the WHERE parameters of an update."""
    return {f"k_{k}" if k in keys else k: v for k, v in row.items()}


class SqlStore:
    """The SQLModel store (SQLite or PostgreSQL) with a group-commit writer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._ops: list[_Op] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.Event | None = None
        # SQLite commits in WAL mode without fsync take tens of microseconds: running them on the
        # loop beats handing each batch to a thread (GIL hand-offs cost milliseconds under load).
        # PostgreSQL round trips go to a worker thread so the loop keeps serving meanwhile.
        self._inline = self._dialect == "sqlite"
        self._statements: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._sql: dict[tuple[int, tuple[str, ...]], str] = {}  # PostgreSQL: (statement, names) -> SQL
        # Writes arriving within this many seconds of the first one share its transaction.
        self.batch_window = 0.005

    # --- writer ---------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def flush(self) -> None:
        """Wait until every write issued so far is committed (or has failed). Writes issued
        meanwhile do not hold it up: it waits for an empty write queued behind them."""
        if self._wake is None or (not self._ops and self._idle is not None
                                  and self._idle.is_set()):
            return
        with contextlib.suppress(StoreError):  # the batch failed: those writes are over too
            await self._write(_Op("insert", EVT, []))

    def _submit(self, op: _Op, wait: bool) -> asyncio.Future[None] | None:
        if self._wake is None:
            raise StoreError("the store is not started")
        if wait:
            op.future = asyncio.get_running_loop().create_future()
        self._ops.append(op)
        self._wake.set()
        return op.future

    async def _write(self, op: _Op) -> None:
        fut = self._submit(op, True)
        assert fut is not None
        await fut

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            await self._wake.wait()
            if self.batch_window:
                await asyncio.sleep(self.batch_window)
            self._wake.clear()
            if not self._ops:
                continue
            batch, self._ops = self._ops, []
            self._idle.clear()
            try:
                if self._inline:
                    errors = self._apply_batch(batch)
                else:
                    errors = await asyncio.to_thread(self._apply_batch, batch)
            except Exception as e:  # pragma: no cover - to_thread itself failed
                errors = {id(op): e for op in batch}
            finally:
                self._idle.set()
            for op in batch:
                err = errors.get(id(op))
                if err is not None and op.future is None:
                    log.warning("store write to %s failed: %s", op.table.name, err)
                if op.future is not None and not op.future.done():
                    if err is None:
                        op.future.set_result(None)
                    else:
                        op.future.set_exception(StoreError(f"writing {op.table.name} failed: {err}"))

    def _apply_batch(self, batch: list[_Op]) -> dict[int, Exception]:
        try:
            with self.engine.begin() as conn:
                self._apply_and_commit(conn, batch)
            return {}
        except Exception:
            if len(batch) == 1:
                raise
        errors: dict[int, Exception] = {}
        for op in batch:  # one bad write must not take the others down with it
            try:
                with self.engine.begin() as conn:
                    self._apply_and_commit(conn, [op])
            except Exception as e:
                errors[id(op)] = e
        return errors

    def _apply_and_commit(self, conn: Connection, batch: list[_Op]) -> None:
        """Apply ``batch``; on PostgreSQL every statement and the COMMIT go in one pipeline, one
        round trip (they were one each: a Register waited for four, and while the event loop
        holds the GIL each wake-up of this thread after one can wait 5 ms, so a batch took
        40-80 ms and many Registers missed aiocoap's 100 ms piggyback window: an empty ACK,
        a separate response and its ACK, twice the datagrams)."""
        if self._dialect != "postgresql":
            self._apply(conn, batch)
            return  # engine.begin() commits
        raw: Any = conn.connection.driver_connection
        with raw.pipeline():
            self._apply(conn, batch)
            raw.commit()  # engine.begin()'s own commit then finds nothing left to do

    def _upsert(self, table: Table, keys: tuple[str, ...]) -> Any:
        stmt = self._statements.get((table.name, keys))
        if stmt is None:
            ins = (postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table))
            stmt = self._statements[(table.name, keys)] = ins.on_conflict_do_update(
                index_elements=list(keys),
                set_={c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys})
        return stmt

    def _insert(self, table: Table) -> Any:
        stmt = self._statements.get((table.name, ("insert",)))
        if stmt is None:  # built once: a new statement per batch costs a cache-key walk each time
            stmt = self._statements[(table.name, ("insert",))] = insert(table)
        return stmt

    def _update(self, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
        """UPDATE table SET <columns but keys> WHERE <keys> = :k_<key> (see :func:`_key_params`)."""
        stmt = self._statements.get((table.name, ("update",) + keys + ("set",) + columns))
        if stmt is None:
            # No .values(): the SET columns are the parameters named like columns.
            stmt = table.update().where(*[table.c[k] == bindparam(f"k_{k}") for k in keys])
            self._statements[(table.name, ("update",) + keys + ("set",) + columns)] = stmt
        return stmt

    def _execute_many(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """``conn.execute(stmt, rows)``; on PostgreSQL straight through psycopg's executemany
        (pipeline mode: one round trip per batch; psycopg prepares a statement on the server
        once it has run a few times on a connection) with the SQL compiled once per statement
        and parameter names, without SQLAlchemy's per-row parameter processing (psycopg adapts
        every type these tables use by itself)."""
        names = tuple(rows[0])
        if self._dialect != "postgresql" or any(tuple(r) != names for r in rows):
            conn.execute(stmt, rows)
            return
        key = (id(stmt), names)
        sql = self._sql.get(key)
        if sql is None:
            compiled = stmt.compile(dialect=conn.dialect,
                                    column_keys=[n for n in names if not n.startswith("k_")])
            if compiled.positiontup is not None or set(compiled.params) != set(names):
                conn.execute(stmt, rows)  # not a plain named-parameter statement: the usual way
                return
            sql = self._sql[key] = str(compiled)
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            cur.executemany(sql, rows)

    def _apply(self, conn: Connection, batch: list[_Op]) -> None:
        # Tables are independent of each other (no foreign keys between them): grouping a batch by
        # table, keeping the order within each table, lets interleaved writes (a registration, its
        # event, the next registration...) become one executemany per table.
        batch = sorted(batch, key=lambda op: op.table.name)
        i = 0
        while i < len(batch):
            op = batch[i]
            if op.kind in ("upsert", "insert"):
                # Consecutive writes to one table become one executemany; the last row per key wins.
                rows: dict[Any, dict[str, Any]] = {}
                j = i
                while j < len(batch) and batch[j].kind == op.kind and batch[j].table is op.table:
                    for r in batch[j].rows:
                        key = tuple(r[k] for k in op.keys) if op.keys else id(r)
                        rows.pop(key, None)
                        rows[key] = r
                    j += 1
                stmt = self._upsert(op.table, op.keys) if op.kind == "upsert" else self._insert(op.table)
                if rows:
                    self._execute_many(conn, stmt, list(rows.values()))
                i = j
                continue
            if op.kind == "update":
                # Consecutive updates of the same columns become one executemany (in order).
                columns = tuple(op.rows[0]) if op.rows else ()
                rows_in_order: list[dict[str, Any]] = []
                j = i
                while (j < len(batch) and batch[j].kind == "update" and batch[j].table is op.table
                       and batch[j].keys == op.keys
                       and all(tuple(r) == columns for r in batch[j].rows)):
                    rows_in_order += batch[j].rows
                    j += 1
                if j == i:  # rows of differing columns: one statement each
                    for r in op.rows:
                        conn.execute(self._update(op.table, op.keys, tuple(r)), _key_params(r, op.keys))
                    i += 1
                    continue
                if rows_in_order:
                    self._execute_many(conn, self._update(op.table, op.keys, columns),
                                       [_key_params(r, op.keys) for r in rows_in_order])
                i = j
                continue
            if op.kind == "delete":
                for r in op.rows:
                    conn.execute(delete(op.table).where(*[op.table.c[k] == v for k, v in r.items()]))
            i += 1

    # --- registrations ---------------------------------------------------------
    async def save_registration(self, reg: Registration) -> None:
        await self._write(_Op("upsert", REG, [registration_row(reg)], ("endpoint",)))

    def refresh_registration_nowait(self, reg: Registration) -> None:
        """Write ``reg.last_seen`` behind: committed with the next batch, nobody waits for it.

        Only for Updates that change nothing but ``last_seen`` (see the durability note in
        :mod:`lwm2m_server.protocol.registration`); the row must exist and keep its registration
        id, otherwise nothing is written.
        """
        self._submit(_Op("update", REG, [{"endpoint": reg.endpoint, "registration_id": reg.registration_id,
                                          "last_seen": reg.last_seen}], ("endpoint", "registration_id")),
                     False)

    async def delete_registration(self, endpoint: str, registration_id: str) -> None:
        """The registration goes with its latest values and observations."""
        fut = self._submit(_Op("delete", VAL, [{"endpoint": endpoint}]), False)
        self._submit(_Op("delete", OBS, [{"endpoint": endpoint}]), False)
        await self._write(_Op("delete", REG, [{"endpoint": endpoint, "registration_id": registration_id}]))
        _ = fut

    def _select(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return [r._mapping for r in conn.execute(stmt)]

    async def load_registrations(self) -> list[Registration]:
        rows = await asyncio.to_thread(self._select, select(REG))
        return [registration_from_row(r) for r in rows]

    # --- latest values -----------------------------------------------------------
    def save_values_nowait(self, endpoint: str, values: Mapping[Path, Value], when: datetime) -> None:
        rows = [{"endpoint": endpoint, "path": str(p), "value": json.dumps(tagged(v)), "time": when}
                for p, v in values.items()]
        self._submit(_Op("upsert", VAL, rows, ("endpoint", "path")), False)

    async def load_latest(self) -> Latest:
        out: Latest = {}
        for r in await asyncio.to_thread(self._select, select(VAL)):
            out.setdefault(r["endpoint"], {})[Path.parse(r["path"])] = (
                untagged(json.loads(r["value"])), _aware(r["time"]))
        return out

    # --- events --------------------------------------------------------------------
    def add_event(self, event: Event) -> None:
        row = {"id": event.id, "time": event.time, "kind": event.kind, "endpoint": event.endpoint,
               "data": json.dumps(event.data, default=str)}
        self._submit(_Op("insert", EVT, [row]), False)

    async def events(self, endpoint: str | None = None, kind: str | None = None,
                     limit: int = 100) -> list[Event]:
        """The latest stored events, newest first."""
        stmt = select(EVT).order_by(EVT.c.time.desc()).limit(limit)
        if endpoint is not None:
            stmt = stmt.where(EVT.c.endpoint == endpoint)
        if kind is not None:
            stmt = stmt.where(EVT.c.kind == kind)
        rows = await asyncio.to_thread(self._select, stmt)
        return [Event(kind=r["kind"], endpoint=r["endpoint"], data=json.loads(r["data"]), id=r["id"],
                      time=_aware(r["time"])) for r in rows]

    # --- retention (store/retention.py) ------------------------------------------------
    def _delete_batch(self, table: Table, key: Any, condition: Any, order: Any, batch: int) -> int:
        ids = select(key).where(condition).order_by(order).limit(batch).scalar_subquery()
        with self.engine.begin() as conn:
            return int(conn.execute(delete(table).where(key.in_(ids))).rowcount or 0)

    async def purge_events(self, before: datetime, batch: int) -> int:
        """Delete at most ``batch`` events older than ``before``, oldest first; how many went."""
        return await asyncio.to_thread(self._delete_batch, EVT, EVT.c.id, EVT.c.time < before,
                                       EVT.c.time, batch)

    async def purge_requests(self, before: datetime, batch: int) -> int:
        """Delete at most ``batch`` finished queued requests last changed before ``before``."""
        return await asyncio.to_thread(
            self._delete_batch, QRQ, QRQ.c.id,
            QRQ.c.state.in_(FINISHED_STATES) & (QRQ.c.updated_at < before), QRQ.c.updated_at, batch)

    # --- queued requests ---------------------------------------------------------------
    async def save_queued(self, q: QueuedRequest, request: DeviceRequest | None) -> None:
        row = queued_row(q, request)
        if request is not None:
            await self._write(_Op("insert", QRQ, [row]))
        else:
            await self._write(_Op("update", QRQ, [row], ("id",)))

    async def load_unfinished_queued(self) -> list[tuple[QueuedRequest, DeviceRequest]]:
        stmt = select(QRQ).where(QRQ.c.state.in_(("pending", "sent"))).order_by(QRQ.c.created_at)
        out = []
        for r in await asyncio.to_thread(self._select, stmt):
            out.append((queued_from_row(r), request_from_json(json.loads(r["request"]))))
        return out

    async def get_queued(self, request_id: str) -> QueuedRequest | None:
        rows = await asyncio.to_thread(self._select, select(QRQ).where(QRQ.c.id == request_id))
        return queued_from_row(rows[0]) if rows else None

    # --- observations ------------------------------------------------------------------
    async def save_observation(self, obs: StoredObservation) -> None:
        await self._write(_Op("upsert", OBS, [observation_row(obs)], ("endpoint", "paths")))

    async def delete_observation(self, endpoint: str, paths: tuple[Path, ...]) -> None:
        await self._write(_Op("delete", OBS, [{"endpoint": endpoint, "paths": paths_key(paths)}]))

    async def load_observations(self) -> list[StoredObservation]:
        rows = await asyncio.to_thread(self._select, select(OBS).order_by(OBS.c.created_at))
        return [observation_from_row(r) for r in rows]


class MemoryStore:
    """Everything in dictionaries; nothing survives the process."""

    def __init__(self) -> None:
        self.registrations: dict[str, Registration] = {}
        self.latest: Latest = {}
        self.event_log: list[Event] = []
        self.queued: dict[str, tuple[QueuedRequest, DeviceRequest | None]] = {}
        self.observations: dict[tuple[str, tuple[Path, ...]], StoredObservation] = {}
        self.keep_events = 10_000

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def save_registration(self, reg: Registration) -> None:
        self.registrations[reg.endpoint] = reg

    def refresh_registration_nowait(self, reg: Registration) -> None:
        old = self.registrations.get(reg.endpoint)
        if old is not None and old.registration_id == reg.registration_id:
            self.registrations[reg.endpoint] = reg

    async def delete_registration(self, endpoint: str, registration_id: str) -> None:
        reg = self.registrations.get(endpoint)
        if reg is not None and reg.registration_id == registration_id:
            del self.registrations[endpoint]
        self.latest.pop(endpoint, None)
        for key in [k for k in self.observations if k[0] == endpoint]:
            del self.observations[key]

    async def load_registrations(self) -> list[Registration]:
        return list(self.registrations.values())

    def save_values_nowait(self, endpoint: str, values: Mapping[Path, Value], when: datetime) -> None:
        d = self.latest.setdefault(endpoint, {})
        for p, v in values.items():
            d[p] = (v, when)

    async def load_latest(self) -> Latest:
        return {ep: dict(v) for ep, v in self.latest.items()}

    def add_event(self, event: Event) -> None:
        self.event_log.append(event)
        if len(self.event_log) > self.keep_events:
            del self.event_log[: len(self.event_log) - self.keep_events]

    async def save_queued(self, q: QueuedRequest, request: DeviceRequest | None) -> None:
        old = self.queued.get(q.id)
        self.queued[q.id] = (q, request if request is not None else (old[1] if old else None))

    async def load_unfinished_queued(self) -> list[tuple[QueuedRequest, DeviceRequest]]:
        return [(q, r) for q, r in self.queued.values() if q.state in ("pending", "sent") and r is not None]

    async def get_queued(self, request_id: str) -> QueuedRequest | None:
        entry = self.queued.get(request_id)
        return entry[0] if entry else None

    async def save_observation(self, obs: StoredObservation) -> None:
        self.observations[(obs.endpoint, obs.paths)] = obs

    async def delete_observation(self, endpoint: str, paths: tuple[Path, ...]) -> None:
        self.observations.pop((endpoint, paths), None)

    async def load_observations(self) -> list[StoredObservation]:
        return sorted(self.observations.values(), key=lambda o: o.created_at)

    async def purge_events(self, before: datetime, batch: int) -> int:
        old = [e for e in self.event_log if e.time < before][:batch]
        gone = {id(e) for e in old}
        self.event_log = [e for e in self.event_log if id(e) not in gone]
        return len(old)

    async def purge_requests(self, before: datetime, batch: int) -> int:
        old = [k for k, (q, _) in self.queued.items()
               if q.state in FINISHED_STATES and q.updated_at < before][:batch]
        for k in old:
            del self.queued[k]
        return len(old)

    async def events(self, endpoint: str | None = None, kind: str | None = None,
                     limit: int = 100) -> list[Event]:
        """The latest kept events, newest first."""
        out = [e for e in reversed(self.event_log)
               if (endpoint is None or e.endpoint == endpoint) and (kind is None or e.kind == kind)]
        return out[:limit]
