"""Tables of a cluster (several server processes on one PostgreSQL): the processes, and the
requests one process forwards to the process that owns a device."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel

__all__ = ["ServerNodeRow", "ForwardedRequestRow"]


class ServerNodeRow(SQLModel, table=True):
    """One running server process; ``heartbeat_at`` (database time) says it is alive."""

    __tablename__ = "server_node"

    id: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    heartbeat_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                    index=True))


class ForwardedRequestRow(SQLModel, table=True):
    """A device request one process asked the device's owner to carry out, and its answer."""

    __tablename__ = "forwarded_request"

    id: str = Field(primary_key=True, max_length=32)
    sender: str = Field(max_length=64)
    owner: str = Field(index=True, max_length=64)
    endpoint: str = Field(max_length=255)
    origin: str = Field(max_length=16)
    timeout: float | None = None
    request: str = Field(sa_column=Column(Text, nullable=False))  # requests.request_to_json
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # wire.answer
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False,
                                                  index=True))
