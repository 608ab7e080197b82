"""SQLModel tables of the server core: registrations, latest values, events, queued requests,
observations.

Timestamps are timezone-aware UTC; JSON columns hold text (portable between SQLite and
PostgreSQL). The tables are written by :mod:`lwm2m_server.store.repository`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel

__all__ = ["RegistrationRow", "LatestValueRow", "EventRow", "QueuedRequestRow", "ObservationRow"]


def _ts(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class RegistrationRow(SQLModel, table=True):
    """One registered device (the latest registration of an endpoint)."""

    __tablename__ = "registration"

    endpoint: str = Field(primary_key=True, max_length=255)
    registration_id: str = Field(unique=True, index=True, max_length=32)
    lwm2m_version: str = Field(max_length=8)
    binding: str = Field(max_length=8)
    lifetime: int
    sms: str | None = Field(default=None, max_length=64)
    queue_mode: bool = False
    host: str = Field(max_length=64)
    port: int
    objects: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of "/3/0"
    object_versions: str = Field(sa_column=Column(Text, nullable=False))  # JSON {"3": "1.1"}
    root_path: str = Field(default="/", max_length=64)
    preferred_format: int | None = None
    security: str = Field(default="none", max_length=16)  # "none" (plain CoAP) or "psk" (DTLS)
    registered_at: datetime = Field(sa_column=_ts())
    last_seen: datetime = Field(sa_column=_ts())
    online: bool = True
    # The server process that receives its datagrams (PostgreSQL clusters; None on SQLite).
    owner: str | None = Field(default=None, max_length=64)


class LatestValueRow(SQLModel, table=True):
    """The last value observed, read, written or sent for one path of one device."""

    __tablename__ = "latest_value"

    endpoint: str = Field(primary_key=True, max_length=255)
    path: str = Field(primary_key=True, max_length=32)
    value: str = Field(sa_column=Column(Text, nullable=False))  # tagged JSON (jsonable.tagged)
    time: datetime = Field(sa_column=_ts())


class EventRow(SQLModel, table=True):
    """One published event (registrations, notifications, Send data, request outcomes)."""

    __tablename__ = "device_event"

    id: str = Field(primary_key=True, max_length=40)
    time: datetime = Field(sa_column=_ts(index=True))
    kind: str = Field(index=True, max_length=40)
    endpoint: str | None = Field(default=None, index=True, max_length=255)
    data: str = Field(sa_column=Column(Text, nullable=False))  # JSON


class QueuedRequestRow(SQLModel, table=True):
    """A request for a device in queue mode, from creation to its result."""

    __tablename__ = "queued_request"

    id: str = Field(primary_key=True, max_length=32)
    endpoint: str = Field(index=True, max_length=255)
    state: str = Field(index=True, max_length=16)
    request: str = Field(sa_column=Column(Text, nullable=False))  # requests.request_to_json
    summary: str = Field(sa_column=Column(Text, nullable=False))  # requests.summarize
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    coap_code: str | None = Field(default=None, max_length=8)


class ObservationRow(SQLModel, table=True):
    """An active observation, kept so it is re-established after a restart or a new Register."""

    __tablename__ = "observation"

    endpoint: str = Field(primary_key=True, max_length=255)
    paths: str = Field(sa_column=Column(Text, primary_key=True))  # "/3/0/9" or "/3/0/9,/5/0/3"
    composite: bool = False
    origin: str = Field(max_length=16)
    attributes: str = Field(sa_column=Column(Text, nullable=False))  # JSON {"pmin": 10}
    created_at: datetime = Field(sa_column=_ts())
