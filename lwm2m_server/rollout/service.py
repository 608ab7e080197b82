"""Deployment operations on the database: create, list, look at, pause, resume, cancel, retry,
tag, and deleting an artifact no deployment needs any more.

These are synchronous and need no running server: the REST routes, the console and the
``deploy`` CLI call them, and the engine of a running server picks the result up on its next
reconcile pass (the database is the one source of truth, which is also what lets a restarted
server resume). Each operation emits the same ``deployment`` and ``deployment_target`` events
whoever calls it: on ``events`` (the server's bus) when given, else as rows of the
``rollout_event`` table written in the same transaction, which the running server's reconciler
publishes (so webhooks and the event stream see CLI actions too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from ..events import Event, EventBus, new_event
from .drivers import ArtifactInfo
from .errors import (ArtifactInUse, ArtifactUnavailable, DeploymentConflict, DeploymentNotFound,
                     InvalidDeployment)
from .state import VERIFY_RULES, TargetState, is_terminal, stage_sizes
from .tables import Deployment, DeviceTag, RolloutEventRow, Target, utcnow

__all__ = [
    "DeploymentSpec", "create_deployment", "get_deployment", "list_deployments",
    "deployment_view", "pause_deployment", "resume_deployment", "cancel_deployment",
    "retry_deployment", "set_tags", "get_tags", "endpoints_with_tag", "artifact_info",
    "ArtifactLookup", "DEPLOYABLE_KINDS", "target_event", "deployment_event", "delete_artifact",
    "ARTIFACT_DELETED",
]

DEPLOYABLE_KINDS = ("firmware", "sota")
ARTIFACT_DELETED = "artifact_deleted"  # the event every process removes its copy of the file on
_TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
MAX_TARGETS = 100_000

ArtifactLookup = Callable[[Session, int], ArtifactInfo | None]


def artifact_info(session: Session, artifact_id: int) -> ArtifactInfo | None:
    """The artifact row ``artifact_id`` of the artifact store (store/artifacts.py) as ArtifactInfo."""
    from ..store import artifacts as store_artifacts

    row = session.get(store_artifacts.Artifact, artifact_id)
    if row is None:
        return None
    meta = getattr(row, "metadata_", None) or getattr(row, "meta", None) or {}
    if not isinstance(meta, dict):
        meta = {}
    payload_sha = meta.get("payload_sha256")
    if payload_sha is None and isinstance(meta.get("manifest"), dict):
        payload_sha = meta["manifest"].get("sha256")
    return ArtifactInfo(id=int(row.id or 0), kind=str(row.kind), sha256=str(row.sha256),
                        size=int(row.size), version=str(row.version), name=str(row.name),
                        payload_sha256=payload_sha if isinstance(payload_sha, str) else None)


@dataclass
class DeploymentSpec:
    """What a caller asks for; validated by ``create_deployment``."""

    artifact_id: int
    endpoints: list[str] | None = None
    tag: str | None = None
    stages: list[int] = field(default_factory=lambda: [100])
    max_concurrent: int = 10
    failure_threshold: float = 0.2
    timeout: float = 600.0
    retries: int = 2
    delivery: str = "auto"
    verify: str = "version"
    allow_downgrade: bool = False


def target_event(t: Target, previous: str | None) -> Event:
    """The ``deployment_target`` event of a target change (one shape for engine, REST, CLI)."""
    return new_event("deployment_target", t.endpoint, deployment_id=t.deployment_id,
                     state=t.state, previous=previous, progress=round(t.progress, 3),
                     result=t.result, reason=t.reason, attempt=t.attempt, step=t.step,
                     method=t.method)


def deployment_event(dep: Deployment, **extra: Any) -> Event:
    """The ``deployment`` event of a deployment change (one shape for engine, REST, CLI)."""
    return new_event("deployment", None, deployment_id=dep.id, state=dep.state,
                     reason=dep.reason, current_stage=dep.current_stage, **extra)


def _record(session: Session, events: EventBus | None, evs: list[Event]) -> None:
    """Without a bus, add ``evs`` to the session as outbox rows (committed with the change)."""
    if events is None:
        for e in evs:
            session.add(RolloutEventRow(kind=e.kind, endpoint=e.endpoint, data=dict(e.data),
                                        created_at=e.time))


def _publish(events: EventBus | None, evs: list[Event]) -> None:
    """With a bus, publish ``evs`` (after the commit that made them true)."""
    if events is not None:
        for e in evs:
            events.publish(e)


def _validate(spec: DeploymentSpec) -> None:
    if (spec.endpoints is None) == (spec.tag is None):
        raise InvalidDeployment("give either endpoints (a list) or tag, not both and not neither")
    if spec.endpoints is not None:
        if not spec.endpoints:
            raise InvalidDeployment("endpoints is empty")
        if len(spec.endpoints) > MAX_TARGETS:
            raise InvalidDeployment(f"at most {MAX_TARGETS} endpoints per deployment")
        bad = [e for e in spec.endpoints if not isinstance(e, str) or not e or len(e) > 200]
        if bad:
            raise InvalidDeployment(f"invalid endpoint names: {bad[:5]!r}")
        if len(set(spec.endpoints)) != len(spec.endpoints):
            raise InvalidDeployment("endpoints contains duplicates")
    if not spec.stages or any(not isinstance(s, int) or isinstance(s, bool) or not 0 < s <= 100
                              for s in spec.stages):
        raise InvalidDeployment("stages are percentages 1..100, e.g. [1, 10, 100]")
    if any(b <= a for a, b in zip(spec.stages, spec.stages[1:])):
        raise InvalidDeployment("stages must increase, e.g. [1, 10, 100]")
    if spec.stages[-1] != 100:
        raise InvalidDeployment("the last stage must be 100 (every target)")
    if not 1 <= spec.max_concurrent <= 10_000:
        raise InvalidDeployment("max_concurrent must be 1..10000")
    if not 0.0 <= spec.failure_threshold <= 1.0:
        raise InvalidDeployment("failure_threshold is a fraction 0..1 of the released targets")
    if not 0 < spec.timeout <= 7 * 86400:
        raise InvalidDeployment("timeout must be > 0 and at most a week (seconds)")
    if not 0 <= spec.retries <= 20:
        raise InvalidDeployment("retries must be 0..20")
    if spec.delivery not in ("auto", "pull", "push"):
        raise InvalidDeployment("delivery must be auto, pull or push")
    if spec.verify not in VERIFY_RULES:
        raise InvalidDeployment("verify must be version (the new version in /3/0/3, or in "
                                "/5/0/7 with Update Result 1) or result (Update Result 1)")
    if not isinstance(spec.allow_downgrade, bool):
        raise InvalidDeployment("allow_downgrade is true or false")


def endpoints_with_tag(session: Session, tag: str) -> list[str]:
    rows = session.exec(select(DeviceTag.endpoint).where(DeviceTag.tag == tag)
                        .order_by(DeviceTag.endpoint)).all()
    return list(rows)


def create_deployment(engine: Engine, spec: DeploymentSpec, *,
                      lookup: ArtifactLookup = artifact_info,
                      events: EventBus | None = None) -> Deployment:
    """Validate ``spec``, resolve the targets, store the deployment and its targets (pending)."""
    _validate(spec)
    with Session(engine) as session:
        art = lookup(session, spec.artifact_id)
        if art is None:
            raise InvalidDeployment(f"artifact {spec.artifact_id} does not exist")
        if art.kind not in DEPLOYABLE_KINDS:
            raise InvalidDeployment(f"artifact {spec.artifact_id} is a {art.kind}; deploy a "
                                    f"firmware image or a SOTA package")
        if art.kind == "sota" and spec.verify != "version":
            raise InvalidDeployment("verify=result applies to firmware only: a SOTA target "
                                    "succeeds when the model object's active slot reports the "
                                    "new version and payload SHA-256")
        if spec.tag is not None:
            endpoints = endpoints_with_tag(session, spec.tag)
            if not endpoints:
                raise InvalidDeployment(f"no device has tag {spec.tag!r}")
        else:
            endpoints = list(spec.endpoints or [])
        dep = Deployment(artifact_id=art.id, artifact_kind=art.kind, artifact_sha256=art.sha256,
                         artifact_version=art.version, artifact_name=art.name,
                         stages=list(spec.stages), max_concurrent=spec.max_concurrent,
                         failure_threshold=spec.failure_threshold, timeout=spec.timeout,
                         retries=spec.retries, delivery=spec.delivery, tag=spec.tag,
                         verify=spec.verify, allow_downgrade=spec.allow_downgrade)
        session.add(dep)
        session.flush()
        assert dep.id is not None
        if not _still_stored(session, lookup, art.id, art.sha256):
            raise InvalidDeployment(f"artifact {spec.artifact_id} was deleted")
        sizes = stage_sizes(len(endpoints), list(spec.stages))
        for i, ep in enumerate(endpoints):
            stage = next(k for k, n in enumerate(sizes) if i < n)
            session.add(Target(deployment_id=dep.id, endpoint=ep, position=i, stage=stage))
        evs = [deployment_event(dep, targets=len(endpoints))]
        _record(session, events, evs)
        session.commit()
        session.refresh(dep)
    _publish(events, evs)
    return dep


def get_deployment(engine: Engine, deployment_id: int) -> Deployment:
    with Session(engine) as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None:
            raise DeploymentNotFound(f"deployment {deployment_id} does not exist")
        return dep


def _target_dict(t: Target) -> dict[str, Any]:
    return {"endpoint": t.endpoint, "state": t.state, "progress": round(t.progress, 3),
            "result": t.result, "reason": t.reason, "attempt": t.attempt, "stage": t.stage,
            "method": t.method, "applied": t.applied,
            "updated_at": t.updated_at.isoformat() if t.updated_at else None}


def deployment_view(engine: Engine, deployment_id: int, *, with_targets: bool = True) -> dict[str, Any]:
    """The JSON form of a deployment: its settings, state, counts per state and targets."""
    with Session(engine) as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None:
            raise DeploymentNotFound(f"deployment {deployment_id} does not exist")
        counts = dict(session.exec(
            select(Target.state, func.count()).where(Target.deployment_id == deployment_id)
            .group_by(Target.state)).all())
        total = sum(int(n) for n in counts.values())
        sizes = stage_sizes(total, list(dep.stages))
        out: dict[str, Any] = {
            "id": dep.id, "state": dep.state, "reason": dep.reason,
            "artifact_id": dep.artifact_id, "kind": dep.artifact_kind,
            "version": dep.artifact_version, "sha256": dep.artifact_sha256,
            "stages": dep.stages, "current_stage": dep.current_stage,
            "max_concurrent": dep.max_concurrent, "failure_threshold": dep.failure_threshold,
            "timeout": dep.timeout, "retries": dep.retries, "delivery": dep.delivery,
            "verify": dep.verify, "allow_downgrade": dep.allow_downgrade,
            # Cumulative target counts per stage, and how many the current stage released.
            "stage_sizes": sizes, "released": sizes[min(dep.current_stage, len(sizes) - 1)],
            "total": total,
            "tag": dep.tag, "counts": {s.value: int(counts.get(s.value, 0)) for s in TargetState},
            "created_at": dep.created_at.isoformat(), "updated_at": dep.updated_at.isoformat(),
        }
        if with_targets:
            targets = session.exec(select(Target).where(Target.deployment_id == deployment_id)
                                   .order_by(col(Target.position))).all()
            out["targets"] = [_target_dict(t) for t in targets]
        return out


def list_deployments(engine: Engine, *, state: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[dict[str, Any]]:
    with Session(engine) as session:
        q = select(Deployment.id).order_by(col(Deployment.id).desc()).offset(offset).limit(limit)
        if state is not None:
            q = q.where(Deployment.state == state)
        ids = list(session.exec(q).all())
    return [deployment_view(engine, int(i or 0), with_targets=False) for i in ids]


def _set_deployment_state(engine: Engine, deployment_id: int, allowed_from: Iterable[str],
                          new: str, reason: str | None, events: EventBus | None,
                          **extra: Any) -> Deployment:
    with Session(engine) as session:
        dep = session.get(Deployment, deployment_id, with_for_update=True)
        if dep is None:
            raise DeploymentNotFound(f"deployment {deployment_id} does not exist")
        if dep.state == new:
            return dep
        if dep.state not in allowed_from:
            raise DeploymentConflict(f"deployment {deployment_id} is {dep.state}; cannot go to {new}")
        dep.state = new
        dep.reason = reason
        dep.updated_at = utcnow()
        for k, v in extra.items():
            setattr(dep, k, v)
        session.add(dep)
        evs = [deployment_event(dep)]
        _record(session, events, evs)
        session.commit()
        session.refresh(dep)
    _publish(events, evs)
    return dep


def pause_deployment(engine: Engine, deployment_id: int, reason: str = "paused by operator",
                     events: EventBus | None = None) -> Deployment:
    """Stop starting new targets; targets in flight finish their current attempt.

    Once this returns no target of the deployment goes from pending to a transfer: the engine
    writes that step only while the deployment row says running, under a lock this write
    conflicts with.
    """
    return _set_deployment_state(engine, deployment_id, ("running",), "paused", reason, events)


def resume_deployment(engine: Engine, deployment_id: int,
                      events: EventBus | None = None) -> Deployment:
    """Start targets again; failures so far no longer count toward the threshold."""
    with Session(engine) as session:
        failed = session.exec(select(func.count()).where(
            Target.deployment_id == deployment_id,
            Target.state == TargetState.FAILED.value)).one()
    return _set_deployment_state(engine, deployment_id, ("paused",), "running", None, events,
                                 failures_acknowledged=int(failed))


def cancel_deployment(engine: Engine, deployment_id: int,
                      events: EventBus | None = None) -> Deployment:
    """Cancel: targets not yet told to apply the update become cancelled; those updating finish."""
    with Session(engine) as session:
        dep = session.get(Deployment, deployment_id, with_for_update=True)
        if dep is None:
            raise DeploymentNotFound(f"deployment {deployment_id} does not exist")
        if dep.state == "cancelled":
            return dep
        if dep.state not in ("running", "paused"):
            raise DeploymentConflict(f"deployment {deployment_id} is {dep.state}; cannot go to "
                                     f"cancelled")
        dep.state, dep.reason, dep.updated_at = "cancelled", "cancelled by operator", utcnow()
        session.add(dep)
        evs = [deployment_event(dep)]
        targets = session.exec(select(Target).where(
            Target.deployment_id == deployment_id,
            col(Target.state).in_([TargetState.PENDING.value, TargetState.TRANSFERRING.value,
                                   TargetState.TRANSFERRED.value]))).all()
        for t in targets:
            previous = t.state
            t.state = TargetState.CANCELLED.value
            t.reason = "deployment cancelled"
            t.updated_at = utcnow()
            session.add(t)
            evs.append(target_event(t, previous))
        _record(session, events, evs)
        session.commit()
        session.refresh(dep)
    _publish(events, evs)
    return dep


def retry_deployment(engine: Engine, deployment_id: int, *, events: EventBus | None = None,
                     lookup: ArtifactLookup = artifact_info) -> dict[str, Any]:
    """Run the failed targets of a deployment again (others stay as they are); returns the
    deployment's view (``deployment_view``).

    Each failed target goes back to pending with a fresh attempt count; the deployment runs
    again (from running, paused or completed_with_failures) and its failure threshold counts
    from zero. A cancelled deployment, or one without failed targets, is a DeploymentConflict.
    """
    with Session(engine) as session:
        dep = session.get(Deployment, deployment_id, with_for_update=True)
        if dep is None:
            raise DeploymentNotFound(f"deployment {deployment_id} does not exist")
        if dep.state not in ("running", "paused", "completed_with_failures"):
            raise DeploymentConflict(f"deployment {deployment_id} is {dep.state}; only a "
                                     f"running, paused or completed_with_failures deployment "
                                     f"can retry its failed targets")
        failed = session.exec(select(Target).where(
            Target.deployment_id == deployment_id,
            Target.state == TargetState.FAILED.value).order_by(col(Target.position))).all()
        if not failed:
            raise DeploymentConflict(f"deployment {deployment_id} has no failed targets")
        now = utcnow()
        evs: list[Event] = []
        retried: list[Target] = []
        for t in failed:
            # Guarded by the state read above: a row changed meanwhile is left alone.
            done = session.execute(update(Target).where(
                col(Target.id) == t.id, col(Target.state) == TargetState.FAILED.value).values(
                state=TargetState.PENDING.value, attempt=0, next_attempt_at=None, step=None,
                method=None, progress=0.0, result=None, reason="retry by operator",
                started_at=None, updated_at=now))
            if done.rowcount == 1:  # type: ignore[attr-defined]
                session.expire(t)
                retried.append(t)
        if not _still_stored(session, lookup, dep.artifact_id, dep.artifact_sha256):
            raise DeploymentConflict(f"artifact {dep.artifact_id} of deployment {deployment_id} "
                                     f"was deleted: deploy another artifact to these devices")
        dep.state, dep.failures_acknowledged, dep.updated_at = "running", 0, now
        dep.reason = f"retry of {len(retried)} failed targets by operator"
        session.add(dep)
        evs.append(deployment_event(dep, retried=len(retried)))
        for t in retried:
            evs.append(target_event(t, TargetState.FAILED.value))
        _record(session, events, evs)
        session.commit()
    _publish(events, evs)
    return deployment_view(engine, deployment_id)


def _still_stored(session: Session, lookup: ArtifactLookup, artifact_id: int,
                  sha256: str) -> bool:
    """Whether artifact ``artifact_id`` with these bytes is stored (a database made before ids
    stopped being reused may give a deleted artifact's id to a new one), called after this
    transaction wrote what depends on it. On PostgreSQL the row is held (FOR SHARE) until the
    commit: a concurrent :func:`delete_artifact` waits, then sees what this transaction wrote.
    On SQLite the write already holds the database's write lock, which orders the two the same
    way. With another ``lookup`` (tests' artifacts without rows), what it finds."""
    if lookup is not artifact_info:
        found_info = lookup(session, artifact_id)
        return found_info is not None and found_info.sha256 == sha256
    from ..store.artifacts import Artifact

    found = session.exec(select(Artifact.id).where(Artifact.id == artifact_id,
                                                   Artifact.sha256 == sha256)
                         .with_for_update(read=True)).first()
    return found is not None


def delete_artifact(engine: Engine, artifact_id: int, *,
                    events: EventBus | None = None) -> dict[str, Any]:
    """Delete artifact ``artifact_id``: its row and its bytes in the database (``artifact_blob``);
    returns the deleted artifact's summary.

    ArtifactInUse (409) while a deployment of it is running or paused, or has a device that is
    not done (a cancelled deployment lets devices that were told to update finish), and
    ArtifactUnavailable (404) for an unknown id. Deployments that ended keep their history (they
    hold the artifact's kind, name, version and SHA-256) but cannot retry. Every process removes
    its copy of the file on the ``artifact_deleted`` event (``RolloutService``); the caller also
    removes the file from its own folder.
    """
    from ..store.artifacts import Artifact
    from ..store.blobs import ArtifactBlob

    with Session(engine) as session:
        # The row first, then the check: a deployment created meanwhile either committed
        # before (and is seen below) or finds the row gone (_still_stored).
        row = session.get(Artifact, artifact_id, with_for_update=True)
        if row is None:
            raise ArtifactUnavailable(f"artifact {artifact_id} does not exist")
        summary = row.summary()
        session.delete(row)
        session.exec(delete(ArtifactBlob).where(col(ArtifactBlob.sha256) == row.sha256))
        session.flush()
        not_done = select(Target.id).where(
            Target.deployment_id == Deployment.id,
            col(Target.state).not_in([s.value for s in TargetState if is_terminal(s)])).exists()
        busy = [int(d or 0) for d in session.exec(
            select(Deployment.id).where(
                Deployment.artifact_id == artifact_id,
                col(Deployment.state).in_(["running", "paused"]) | not_done)
            .order_by(col(Deployment.id))).all()]
        if busy:
            raise ArtifactInUse(
                f"artifact {artifact_id} is used by deployment(s) {', '.join(map(str, busy))} "
                "(running, paused, or with devices still updating): cancel them or wait until "
                "they end", busy)
        evs = [Event(kind=ARTIFACT_DELETED, data={
            "artifact_id": artifact_id, "kind": summary["kind"], "name": summary["name"],
            "version": summary["version"], "sha256": summary["sha256"], "size": summary["size"]})]
        _record(session, events, evs)
        session.commit()
    _publish(events, evs)
    return summary


def set_tags(engine: Engine, endpoint: str, tags: Sequence[str]) -> list[str]:
    """Replace the tags of ``endpoint``."""
    clean = sorted(set(tags))
    bad = [t for t in clean if not isinstance(t, str) or not _TAG_RE.fullmatch(t)]
    if bad:
        raise InvalidDeployment(f"invalid tags {bad[:5]!r}: letters, digits and _.:- only, "
                                f"at most 100 characters")
    if not endpoint or len(endpoint) > 200:
        raise InvalidDeployment("invalid endpoint name")
    with Session(engine) as session:
        session.exec(delete(DeviceTag).where(col(DeviceTag.endpoint) == endpoint))  # type: ignore[call-overload]
        for t in clean:
            session.add(DeviceTag(endpoint=endpoint, tag=t))
        session.commit()
    return clean


def get_tags(engine: Engine, endpoint: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(DeviceTag.tag).where(DeviceTag.endpoint == endpoint)
                                 .order_by(DeviceTag.tag)).all())


def unfinished(engine: Engine) -> list[int]:
    """Ids of deployments the engine must drive (running) or watch (paused, cancelled with
    targets still updating)."""
    with Session(engine) as session:
        rows = session.exec(select(Deployment.id).where(
            col(Deployment.state).in_(["running", "paused", "cancelled"]))).all()
        return [int(r or 0) for r in rows]


def is_finished(states: Iterable[str]) -> bool:
    return all(is_terminal(s) for s in states)
