"""The rollout engine: a reconciler that drives every unfinished deployment from the database.

Each pass reads the deployments and their targets, finishes deployments whose targets are all
done, pauses those past their failure threshold, opens the next stage when the current one is
done, and starts target tasks up to ``max_concurrent``. Targets found in flight (after a restart)
are resumed first: their driver reads the device's state before doing anything, so no device is
updated twice and none is forgotten. Every target state change is persisted before the device is
asked to act, and published as an event of kind ``deployment_target``.

A target leaves pending for a transfer only while its deployment is running, checked in the
same statement that writes the step (under a share lock on the deployment row), so once a pause
returns no new transfer starts. Rollout events that other processes wrote to the outbox table
(the ``deploy`` CLI) are published on this process's bus at the start of each pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..events import Event, EventBus
from ..model import Path
from ..protocol.errors import DeviceError, DeviceNotFound, DeviceOffline, DeviceTimeout
from ..tasks import call_in
from .drivers import (ArtifactInfo, TargetFailed, cancel_transfer, driver_for, sota_package_alg,
                      sota_payload_sha256)
from .port import DevicePort
from .service import ArtifactLookup, artifact_info, deployment_event, target_event
from .state import (ACTIVE_STATES, InvalidTransition, TargetState, backoff_delay,
                    check_transition, final_state, is_terminal, stage_sizes)
from .tables import Deployment, RolloutEventRow, Target, aware, utcnow

__all__ = ["RolloutEngine"]

log = logging.getLogger(__name__)

# pg advisory lock id of the rollout reconciler ("ROLL" in ASCII).
_LOCK_KEY = 0x524F4C4C
ProgressSource = Callable[[str, "tuple[str, int] | None"], "float | None"]


class NotReleased(InvalidTransition):
    """A pending target may not start a transfer: its deployment is no longer running."""


# What a pass reads of every target; the whole row (_TARGET_COLUMNS) only of those it launches.
_PASS_COLUMNS = (Target.id, Target.state, Target.next_attempt_at)
_TARGET_COLUMNS = (Target.id, Target.deployment_id, Target.endpoint, Target.state, Target.step,
                   Target.method, Target.attempt, Target.next_attempt_at, Target.progress,
                   Target.result, Target.reason, Target.applied, Target.started_at)


class _TargetRow:
    """What this process last wrote (or read) of a target in flight: the guard of its next
    write and the fields of its events (a plain object: no ORM load per target)."""

    def __init__(self, row: Any) -> None:
        self.__dict__.update(row._mapping)


_OUTBOX_ANY = select(RolloutEventRow.id).limit(1)  # type: ignore[call-overload]

# The guarded UPDATE of a target in flight: the SET columns are the parameters named like
# columns (so one statement, compiled once per set of columns, serves every write).
_GUARDED_UPDATE = update(Target).where(col(Target.id) == bindparam("k_id"),
                                       col(Target.state) == bindparam("k_state"))
_GUARDED_START = _GUARDED_UPDATE.where(exists(
    select(Deployment.id).where(col(Deployment.id) == bindparam("k_deployment"),
                                col(Deployment.state) == "running").with_for_update(read=True)))


class _Run:
    """One attempt at one target: the ``TargetRun`` the drivers see."""

    def __init__(self, engine: RolloutEngine, dep: Deployment, target: Any,
                 artifact: ArtifactInfo) -> None:
        self._engine = engine
        self.deployment_id = int(dep.id)  # type: ignore[arg-type]
        self.target_id = int(target.id)  # type: ignore[arg-type]
        self.endpoint = target.endpoint
        self.artifact = artifact
        self.port = engine.port
        self.poll = engine.poll
        self.delivery = dep.delivery
        self.verify = dep.verify or "version"
        self.allow_downgrade = bool(dep.allow_downgrade)
        self.note: str | None = None
        self.observed: list[Path] = []
        self._state = TargetState(target.state)
        self._step = target.step
        self._method = target.method
        self._progress = float(target.progress or 0.0)
        self.attempt = target.attempt

    @property
    def state(self) -> TargetState:
        return self._state

    @property
    def step(self) -> str | None:
        return self._step

    @property
    def method(self) -> str | None:
        return self._method

    async def advance(self, state: TargetState, **fields: Any) -> None:
        if (state == self._state and set(fields) == {"progress"}
                and abs(fields["progress"] - self._progress) < 0.1):
            return  # small progress steps are not worth a write and an event
        t = self._engine._write_target(self.target_id, state, **fields)
        self._state = TargetState(t.state)
        self._step = t.step
        self._method = t.method
        self._progress = float(t.progress)

    def package_url(self, method: str) -> str | None:
        return self._engine.package_url(self.artifact.sha256, method, self.endpoint)

    async def package_bytes(self) -> bytes:
        return await asyncio.to_thread(self._engine.read_artifact, self.artifact.sha256)

    def transfer_progress(self) -> float | None:
        if self._engine.progress is None:
            return None
        return self._engine.progress(self.artifact.sha256, self.port.address(self.endpoint))


class RolloutEngine:
    """Reconciles deployments against devices; ``start()`` runs it, ``stop()`` ends it.

    ``port``: the device operations (``ServerDevicePort`` in production). ``read_artifact``:
    bytes of an artifact by SHA-256 (push delivery, SOTA payload hash). ``coap_base_url`` and
    ``http_base_url``: where devices fetch ``/fw/<sha256>``. ``progress``: optional
    ``(sha256, device address) -> fraction downloaded`` from the /fw servers.
    """

    def __init__(self, db: Engine, port: DevicePort, *, read_artifact: Callable[[str], bytes],
                 events: EventBus | None = None, coap_base_url: str | None = None,
                 http_base_url: str | None = None, lookup: ArtifactLookup = artifact_info,
                 progress: ProgressSource | None = None, poll: float = 1.0,
                 tick: float = 0.25, backoff_base: float = 1.0,
                 coaps_base_url: str | None = None,
                 secure_endpoint: Callable[[str], bool] | None = None) -> None:
        self.db = db
        self.port = port
        self.read_artifact = read_artifact
        self.events = events
        self.coap_base_url = coap_base_url.rstrip("/") if coap_base_url else None
        self.http_base_url = http_base_url.rstrip("/") if http_base_url else None
        # Devices registered over DTLS download over coaps (docs/security.md).
        self.coaps_base_url = coaps_base_url.rstrip("/") if coaps_base_url else None
        self.secure_endpoint = secure_endpoint or (lambda endpoint: False)
        self.lookup = lookup
        self.progress = progress
        self.poll = poll
        self.tick = tick
        self.backoff_base = backoff_base
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._runs: dict[int, _Run] = {}
        self._rows: dict[int, Any] = {}  # last written row of each target in flight
        self._cleanup: set[asyncio.Task[None]] = set()
        self._lock_conn: Any = None
        self._artifacts: dict[int, ArtifactInfo] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        """Start the reconciler; unfinished deployments resume on its first pass."""
        if self._loop_task is None:
            self._loop = asyncio.get_running_loop()
            self._loop_task = asyncio.create_task(self._run_loop(), name="rollout-reconciler")

    async def stop(self) -> None:
        """Stop the reconciler and every target task (their state stays persisted)."""
        tasks = list(self._tasks.values()) + list(self._cleanup)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        for t in tasks:
            t.cancel()
        while tasks:  # a task may survive one cancel (it swallowed it): cancel again
            done, pending = await asyncio.wait(tasks, timeout=1.0)
            for t in done:
                if not t.cancelled():
                    t.exception()  # retrieved: a failure while stopping is not news
            for t in pending:
                t.cancel()
            tasks = list(pending)
        self._tasks.clear()
        self._runs.clear()
        self._rows.clear()
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                # Drop the connection instead of pooling it: the session, and its lock, end.
                self._lock_conn.invalidate()
                self._lock_conn.close()
            self._lock_conn = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    def wake(self) -> None:
        """Run a reconcile pass now (after a REST change) instead of at the next tick; from any
        thread."""
        call_in(self._loop, self._wake.set)

    def forget_artifact(self, artifact_id: int) -> None:
        """Drop what was kept of a deleted artifact (its SOTA manifest fields)."""
        self._artifacts.pop(artifact_id, None)

    @property
    def running_targets(self) -> int:
        return len(self._tasks)

    def _lead(self) -> bool:
        """True when this process may drive deployments.

        On PostgreSQL several server processes may share the database: a session advisory lock
        elects one reconciler (the others stand by and take over when its connection ends,
        also after a kill -9). SQLite has one server process by design.
        """
        if self.db.dialect.name != "postgresql":
            return True
        if self._lock_conn is not None:
            return True
        conn = self.db.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._lock_conn = conn
            log.info("this process runs the rollout reconciler")
            return True
        conn.close()
        return False

    async def _run_loop(self) -> None:
        while True:
            try:
                if not self._lead():
                    await asyncio.sleep(max(self.tick, 1.0))
                    continue
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep reconciling; a bad pass must not stop every rollout
                log.exception("rollout reconcile pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):  # not wait_for: see port.EndpointWaiter
                    await self._wake.wait()
            # Many targets finishing at once wake us many times: one pass serves them all. A
            # pass reads the state of every target of every open deployment, so with a large
            # fleet finishing a dozen targets a second, passes at most every 0.2 s keep the
            # engine cheap while a freed slot still goes to the next target within a fraction
            # of a second.
            await asyncio.sleep(min(self.tick, 0.2))
            self._wake.clear()

    # --- helpers ---------------------------------------------------------
    def coap_base_for(self, endpoint: str | None) -> str | None:
        """The CoAP base of ``endpoint``'s downloads: coaps when it registered over DTLS."""
        if endpoint is not None and self.coaps_base_url and self.secure_endpoint(endpoint):
            return self.coaps_base_url
        return self.coap_base_url

    def package_url(self, sha256: str, method: str, endpoint: str | None = None) -> str | None:
        coap_base = self.coap_base_for(endpoint) if method == "pull-coap" else None
        if coap_base:
            return f"{coap_base}/fw/{sha256}"
        if method == "pull-http" and self.http_base_url:
            return f"{self.http_base_url}/fw/{sha256}"
        return None

    def _artifact(self, session: Session, dep: Deployment) -> ArtifactInfo:
        art = self._artifacts.get(dep.artifact_id)
        if art is not None:
            return art
        found = self.lookup(session, dep.artifact_id)
        if found is None:
            found = ArtifactInfo(id=dep.artifact_id, kind=dep.artifact_kind,
                                 sha256=dep.artifact_sha256, size=0,
                                 version=dep.artifact_version, name=dep.artifact_name)
        if found.kind == "sota" and (not found.payload_sha256 or found.sota_alg is None):
            data = self.read_artifact(found.sha256)
            found = replace(found, payload_sha256=found.payload_sha256 or sota_payload_sha256(data),
                            sota_alg=sota_package_alg(data))
        self._artifacts[dep.artifact_id] = found
        return found

    def _publish_target(self, t: Target, previous: str | None) -> None:
        if self.events is not None:
            self.events.publish(target_event(t, previous))

    def _publish_deployment(self, dep: Deployment) -> None:
        if self.events is not None:
            self.events.publish(deployment_event(dep))

    def relay_outbox(self, limit: int = 1000) -> int:
        """Publish the rollout events other processes left in the outbox table, oldest first,
        and delete them; returns how many."""
        with Session(self.db) as session:
            # Most passes find nothing: ask for the ids first (no ORM rows to build then).
            if session.execute(_OUTBOX_ANY).first() is None:
                return 0
            rows = session.exec(select(RolloutEventRow).order_by(col(RolloutEventRow.id))
                                .limit(limit)).all()
            if not rows:
                return 0
            session.execute(delete(RolloutEventRow).where(
                col(RolloutEventRow.id).in_([r.id for r in rows])))
            session.commit()
        if self.events is not None:
            for r in rows:
                self.events.publish(Event(kind=r.kind, endpoint=r.endpoint, data=dict(r.data),
                                          time=aware(r.created_at) or utcnow()))
        return len(rows)

    def _write_target(self, target_id: int, state: TargetState, **fields: Any) -> Target:
        """Persist a target change (checked against the state machine) and publish it.

        A target in flight keeps its row from the reconcile pass that launched it and from
        then on from its last write (this process is the only writer besides an operator's
        cancel), so a write is one UPDATE guarded by the state we last wrote; when that guard
        misses (cancelled meanwhile), the row is read again and checked.
        """
        inc = int(fields.pop("applied_inc", 0) or 0)
        t = self._rows.get(target_id)
        previous = previous_step = None
        if t is not None:
            previous, previous_step = t.state, t.step
            values = self._target_changes(t, state, inc, fields)
            params = {**values, "k_id": target_id, "k_state": previous}
            stmt = _GUARDED_UPDATE
            if self._starts_transfer(previous, state):
                stmt, params["k_deployment"] = _GUARDED_START, t.deployment_id
            with self.db.begin() as conn:
                done = conn.execute(stmt, params)
            if done.rowcount == 1:  # type: ignore[attr-defined]
                for k, v in values.items():
                    setattr(t, k, v)
            else:
                t = None
        if t is None:
            with Session(self.db, expire_on_commit=False) as session:
                t = session.get(Target, target_id, with_for_update=True)
                if t is None:
                    raise InvalidTransition(f"target {target_id} vanished")
                previous, previous_step = t.state, t.step
                changes = self._target_changes(t, state, inc, fields)
                if self._starts_transfer(previous, state):
                    dep = session.get(Deployment, t.deployment_id, with_for_update={"read": True})
                    if dep is None or dep.state != "running":
                        raise NotReleased(f"deployment {t.deployment_id} is "
                                          f"{dep.state if dep else 'gone'}: target {t.endpoint} "
                                          f"stays pending")
                for k, v in changes.items():
                    setattr(t, k, v)
                session.add(t)
                session.commit()  # t keeps the values just written: no read back
        if target_id in self._runs:
            self._rows[target_id] = t
        if (previous != t.state or t.step != previous_step or "progress" in fields
                or "result" in fields):
            self._publish_target(t, previous)
        return t

    @staticmethod
    def _starts_transfer(old: str | None, new: TargetState) -> bool:
        """A pending target about to act on the device: allowed only while the deployment runs."""
        return old == TargetState.PENDING.value and new in ACTIVE_STATES

    @staticmethod
    def _target_changes(t: Target, state: TargetState, inc: int,
                        fields: dict[str, Any]) -> dict[str, Any]:
        """The column values that take ``t`` to ``state`` (InvalidTransition if it may not go)."""
        new = check_transition(t.state, state)
        now = utcnow()
        values: dict[str, Any] = {**fields, "state": new.value, "updated_at": now}
        if inc:
            values["applied"] = t.applied + inc
        if new == TargetState.TRANSFERRING and t.started_at is None:
            values["started_at"] = now
        return values

    # --- reconcile -------------------------------------------------------
    async def reconcile_once(self) -> None:
        """One pass over every unfinished deployment."""
        self.relay_outbox()
        with Session(self.db, expire_on_commit=False) as session:
            deps = session.exec(select(Deployment).where(
                col(Deployment.state).in_(["running", "paused", "cancelled"]))).all()
            for dep in deps:
                # Plain rows, not ORM objects: a pass over 1,000 targets must stay cheap.
                q = select(*_PASS_COLUMNS).where(  # type: ignore[call-overload]
                    Target.deployment_id == dep.id)
                if dep.state == "cancelled":  # only targets still updating matter there
                    q = q.where(col(Target.state).in_([s.value for s in ACTIVE_STATES]))
                targets = session.exec(q.order_by(col(Target.position))).all()
                if dep.state == "cancelled":
                    # Targets cancelled meanwhile (REST/CLI) stop their tasks here.
                    keep = {int(t.id) for t in targets}
                    for tid, run in list(self._runs.items()):
                        if run.deployment_id == dep.id and tid not in keep:
                            self._tasks[tid].cancel()
                            if run.state in (TargetState.TRANSFERRING, TargetState.TRANSFERRED):
                                self._spawn(cancel_transfer(run))
                            self._spawn(self._end_observations(run))
                    if not targets:
                        continue
                self._reconcile(session, dep, list(targets))  # type: ignore[arg-type]

    def _reconcile(self, session: Session, dep: Deployment, targets: list[Any]) -> None:
        states = [t.state for t in targets]
        if all(is_terminal(s) for s in states):
            if dep.state in ("running", "paused") and not any(
                    int(t.id) in self._tasks for t in targets):  # type: ignore[arg-type]
                failed = states.count(TargetState.FAILED.value)
                # Not if a target came back meanwhile (an operator's retry after this read).
                still_open = exists(select(Target.id).where(
                    col(Target.deployment_id) == dep.id,
                    col(Target.state).not_in([TargetState.SUCCEEDED.value,
                                              TargetState.FAILED.value,
                                              TargetState.CANCELLED.value])))
                self._update_deployment(
                    session, dep, where=[~still_open], state=final_state(failed),
                    current_stage=max(len(dep.stages) - 1, 0), reason=(
                        f"{states.count(TargetState.SUCCEEDED.value)} succeeded, {failed} "
                        f"failed, {states.count(TargetState.CANCELLED.value)} cancelled"))
            return
        active = [t for t in targets if t.state in {s.value for s in ACTIVE_STATES}]
        try:
            art = self._artifact(session, dep)
        except Exception as e:  # artifact bytes gone: nothing can be delivered
            self._pause(session, dep, f"artifact {dep.artifact_id} unavailable: {e}")
            return
        # Resume targets in flight without a task (after a restart), in every deployment state.
        self._launch(session, dep, [int(t.id) for t in active if int(t.id) not in self._tasks],
                     art)
        if dep.state != "running":
            return
        total = len(targets)
        sizes = stage_sizes(total, list(dep.stages))
        stage = min(dep.current_stage, len(sizes) - 1)
        released = sizes[stage]
        failed = states.count(TargetState.FAILED.value) - dep.failures_acknowledged
        if failed > 0 and failed > dep.failure_threshold * released:
            self._pause(session, dep, f"failure threshold reached: {failed} of {released} "
                                      f"released targets failed (threshold "
                                      f"{dep.failure_threshold:.0%})")
            return
        if stage < len(sizes) - 1 and all(is_terminal(s) for s in states[:released]):
            if not self._update_deployment(session, dep, current_stage=stage + 1):
                return
            released = sizes[dep.current_stage]
        busy = len(active) + sum(1 for t in targets if t.state == TargetState.PENDING.value
                                 and int(t.id) in self._tasks)  # type: ignore[arg-type]
        now = utcnow()
        start: list[int] = []
        for t in targets[:released]:
            if busy >= dep.max_concurrent:
                break
            if t.state != TargetState.PENDING.value or int(t.id) in self._tasks:  # type: ignore[arg-type]
                continue
            due = aware(t.next_attempt_at)
            if due is not None and due > now:
                continue
            start.append(int(t.id))
            busy += 1
        self._launch(session, dep, start, art)

    def _pause(self, session: Session, dep: Deployment, reason: str) -> None:
        if self._update_deployment(session, dep, state="paused", reason=reason):
            log.warning("deployment %s paused: %s", dep.id, reason)

    def _update_deployment(self, session: Session, dep: Deployment, *, where: list[Any] | None = None,
                           **values: Any) -> bool:
        """Write ``values`` unless an operator changed the deployment's state since this pass
        read it (a pause or cancel from REST or the CLI wins) or ``where`` fails; publish the
        change."""
        values["updated_at"] = utcnow()
        done = session.execute(
            update(Deployment).where(col(Deployment.id) == dep.id,
                                     col(Deployment.state) == dep.state, *(where or []))
            .values(**values))
        session.commit()
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        for k, v in values.items():
            setattr(dep, k, v)
        self._publish_deployment(dep)
        return True

    def _launch(self, session: Session, dep: Deployment, ids: list[int],
                art: ArtifactInfo) -> None:
        """Start a task for each of the targets ``ids`` (their rows read in one query)."""
        if not ids:
            return
        rows = {int(r.id): r for r in session.exec(  # type: ignore[call-overload]
            select(*_TARGET_COLUMNS).where(col(Target.id).in_(ids)))}
        for tid in ids:
            t = rows.get(tid)
            if t is None:  # deleted meanwhile (its deployment went)
                continue
            run = _Run(self, dep, t, art)
            task = asyncio.create_task(self._run_target(run, float(dep.timeout),
                                                        int(dep.retries), art.kind),
                                       name=f"rollout-{dep.id}-{t.endpoint}")
            self._tasks[tid] = task
            self._runs[tid] = run
            self._rows[tid] = _TargetRow(t)

    async def _run_target(self, run: _Run, timeout: float, retries: int, kind: str) -> None:
        cancelled = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    await driver_for(kind)(run)
            except TargetFailed as f:
                self._fail(run, f.reason, f.result, f.transient, retries)
            except TimeoutError:
                note = f": {run.note}" if run.note else ""
                self._fail(run, f"no result within the {timeout:g} s timeout "
                                f"(target was {run.state.value}){note}", None, True, retries)
            except (DeviceOffline, DeviceNotFound) as e:
                self._fail(run, f"device offline: {e.message}", None, True, retries)
            except DeviceTimeout as e:
                self._fail(run, f"device did not answer: {e.message}", None, True, retries)
            except DeviceError as e:
                if e.coap_code is None:  # unreachable or garbled: the link, not the request
                    self._fail(run, f"device unreachable: {e.message}", None, True, retries)
                else:
                    self._fail(run, f"device answered {e.coap_code}: {e.message}", None,
                               e.coap_code.startswith("5"), retries)
        except InvalidTransition as e:  # cancelled or paused meanwhile: nothing to record
            log.info("target %s of deployment %s stopped: %s", run.endpoint, run.deployment_id, e)
        except asyncio.CancelledError:
            # A stop keeps the observations (the resumed target takes them over); a cancelled
            # target's are ended by the reconcile pass that cancelled it.
            cancelled = True
            raise
        except Exception as e:
            log.exception("target %s of deployment %s failed", run.endpoint, run.deployment_id)
            with contextlib.suppress(InvalidTransition):
                self._fail(run, f"internal error: {type(e).__name__}: {e}", None, False, retries)
        finally:
            if run.observed and not cancelled:  # the attempt ended, and its observations
                self._spawn(self._end_observations(run))
            self._tasks.pop(run.target_id, None)
            self._runs.pop(run.target_id, None)
            self._rows.pop(run.target_id, None)
            self.port.forget(run.endpoint)
            self._wake.set()

    async def _end_observations(self, run: _Run) -> None:
        """Cancel the observations this target's driver started (best effort, logged)."""
        paths, run.observed = list(run.observed), []

        async def cancel(p: Path) -> None:
            try:
                await self.port.cancel_observe(run.endpoint, p)
            except Exception as e:  # an offline device: the next attempt or restart tries again
                log.info("%s: could not cancel the rollout's observation of %s: %s",
                         run.endpoint, p, e)
        await asyncio.gather(*(cancel(p) for p in paths))

    def _fail(self, run: _Run, reason: str, result: int | None, transient: bool,
              retries: int) -> None:
        if transient and run.attempt < retries:
            delay = backoff_delay(run.attempt + 1, self.backoff_base)
            self._write_target(run.target_id, TargetState.PENDING, attempt=run.attempt + 1,
                               next_attempt_at=utcnow() + timedelta(seconds=delay),
                               reason=f"retry {run.attempt + 1}/{retries} in {delay:g} s after: "
                                      f"{reason}", result=result, step=None, method=None)
            return
        self._write_target(run.target_id, TargetState.FAILED, reason=reason, result=result)

