"""Requests waiting for a device in queue mode, as the caller polls them (``devices.get_request``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["QueuedRequest", "QUEUE_STATES"]

QUEUE_STATES = ("pending", "sent", "done", "failed", "expired")


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request persisted for a sleeping device.

    ``state``: pending (waiting for the device to wake), sent, done, failed or expired.
    ``result`` is the JSON-able response when done (``{"values": {"/3/0/0": "..."}}``,
    ``{"path": "/9/1"}``, ``{"code": "2.04"}``...); ``error`` and ``coap_code`` say why it failed.
    """

    id: str
    endpoint: str
    request: dict[str, Any]
    state: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    result: dict[str, Any] | None = None
    error: str | None = None
    coap_code: str | None = None
