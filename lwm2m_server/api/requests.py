"""``/api/v1/requests/{id}``: poll a request queued for a sleeping (queue-mode) device."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from .deps import ServerDep, require_scope
from .errors import NotFound

__all__ = ["router", "queued_request_json"]

router = APIRouter(prefix="/requests", tags=["requests"], dependencies=[Depends(require_scope())])


def queued_request_json(q: Any) -> dict[str, Any]:
    """The JSON view of a ``QueuedRequest``."""
    return {
        "id": q.id,
        "endpoint": q.endpoint,
        "request": q.request,
        "state": q.state,
        "created_at": q.created_at.isoformat(),
        "updated_at": q.updated_at.isoformat(),
        "expires_at": q.expires_at.isoformat(),
        "result": q.result,
        "error": q.error,
        "coap_code": q.coap_code,
    }


@router.get("/{request_id}", summary="State and result of a queued request")
def get_request(request_id: str, server: ServerDep) -> dict[str, Any]:
    try:
        q = server.devices.get_request(request_id)
    except KeyError:
        q = None
    if q is None:
        raise NotFound(f"no queued request {request_id!r}")
    return queued_request_json(q)
