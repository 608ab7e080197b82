"""SQLModel tables of the rollout service: deployments, their targets, device tags and webhooks.

A target row is the persisted state machine of one device in one deployment (see ``state.py``);
the engine writes every step here before acting on the device, so a restarted server knows where
each device was.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import logging

from sqlalchemy import JSON, Column, DateTime, Text, UniqueConstraint, event, inspect, text
from sqlmodel import Field, SQLModel

__all__ = ["Deployment", "Target", "DeviceTag", "Webhook", "RolloutEventRow", "utcnow", "aware"]

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(dt: datetime | None) -> datetime | None:
    """``dt`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Deployment(SQLModel, table=True):
    """One rollout of an artifact to a set of devices.

    ``state``: running, paused, cancelled, and the final completed (every target succeeded)
    or completed_with_failures (some failed; ``retry`` runs them again). ``stages`` are cumulative percentages of
    the targets (e.g. ``[1, 10, 100]``); ``failure_threshold`` is the fraction of released
    targets allowed to fail before the deployment pauses itself.
    """

    __tablename__ = "rollout_deployment"

    id: int | None = Field(default=None, primary_key=True)
    artifact_id: int = Field(index=True)
    artifact_kind: str = Field(max_length=16)
    artifact_sha256: str = Field(max_length=64)
    artifact_version: str = Field(max_length=64)
    artifact_name: str = Field(default="", max_length=200)
    state: str = Field(default="running", index=True, max_length=32)
    stages: list[int] = Field(default_factory=lambda: [100], sa_column=Column(JSON, nullable=False))
    current_stage: int = 0
    max_concurrent: int = 10
    failure_threshold: float = 0.2
    # Failures already seen when an operator last resumed: the threshold counts new ones only.
    failures_acknowledged: int = 0
    timeout: float = 600.0
    retries: int = 2
    delivery: str = Field(default="auto", max_length=16)  # auto | pull | push
    tag: str | None = Field(default=None, max_length=100)
    verify: str = Field(default="version", max_length=16)  # version | result (firmware)
    allow_downgrade: bool = False
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Target(SQLModel, table=True):
    """One device in one deployment: its state, attempt count, progress and last result."""

    __tablename__ = "rollout_target"
    __table_args__ = (UniqueConstraint("deployment_id", "endpoint", name="uq_rollout_target"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="rollout_deployment.id", index=True)
    endpoint: str = Field(max_length=200, index=True)
    stage: int = 0
    position: int = 0
    state: str = Field(default="pending", index=True, max_length=16)
    # Sub-step of the driver, written before the device is asked to do it (idempotent resume).
    step: str | None = Field(default=None, max_length=32)
    method: str | None = Field(default=None, max_length=16)  # pull-coap | pull-http | push
    attempt: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    progress: float = 0.0
    result: int | None = None  # the device's Update Result (/5/0/5 or /9/0/9)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    from_version: str | None = Field(default=None, max_length=64)
    # How many times the device was told to apply the update (Execute Update / Install).
    applied: int = 0
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    updated_at: datetime = _ts()


class DeviceTag(SQLModel, table=True):
    """A tag on an endpoint; deployments may target every endpoint with a tag."""

    __tablename__ = "rollout_device_tag"

    endpoint: str = Field(primary_key=True, max_length=200)
    tag: str = Field(primary_key=True, max_length=100, index=True)


class Webhook(SQLModel, table=True):
    """A URL that receives rollout events, signed with HMAC-SHA256 of the body under ``secret``."""

    __tablename__ = "rollout_webhook"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    kinds: list[str] = Field(default_factory=lambda: ["deployment_target", "deployment"],
                             sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = _ts()


class RolloutEventRow(SQLModel, table=True):
    """A rollout event written by a process without the server's event bus (the ``deploy``
    CLI); the reconciler of the running server publishes it on the bus and deletes the row,
    so webhooks and the event stream see CLI actions exactly like REST ones."""

    __tablename__ = "rollout_event"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    endpoint: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


# Columns added after the first release, with their SQL default: create_all makes missing
# tables but never alters an existing one, so a database from an older version gets them here.
_ADDED_COLUMNS = {
    "rollout_deployment": {"verify": ("VARCHAR(16)", "'version'"),
                           "allow_downgrade": ("BOOLEAN", "FALSE")},
}


# Columns widened after the first release: (table, column) -> new length.
_WIDENED_COLUMNS = {("rollout_deployment", "state"): 32}  # completed_with_failures


@event.listens_for(SQLModel.metadata, "after_create")
def _add_missing_columns(target: Any, connection: Any, **_kw: Any) -> None:
    insp = inspect(connection)
    if connection.dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        for (table, name), length in _WIDENED_COLUMNS.items():
            if not insp.has_table(table):
                continue
            col = next((c for c in insp.get_columns(table) if c["name"] == name), None)
            if col is not None and (getattr(col["type"], "length", None) or length) < length:
                log.info("widening column %s.%s to %d characters", table, name, length)
                connection.execute(text(f"ALTER TABLE {table} ALTER COLUMN {name} TYPE "
                                        f"VARCHAR({length})"))
    for table, columns in _ADDED_COLUMNS.items():
        if not insp.has_table(table):
            continue
        have = {c["name"] for c in insp.get_columns(table)}
        for name, (sql_type, default) in columns.items():
            if name not in have:
                log.info("adding column %s.%s", table, name)
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type} "
                                        f"NOT NULL DEFAULT {default}"))
