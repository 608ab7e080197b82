"""``/api/v1/events``: recent events from the store, and a live server-sent-events stream.

Kinds include registered, updated, deregistered, expired, notification, send, request and
queued_request_done; the list filters by ``endpoint`` and ``kind``, the stream by ``endpoint``
and ``kind`` (comma-separated).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ..events import Event
from .deps import ServerDep, require_scope

__all__ = ["router", "event_json", "sse_frame", "KEEPALIVE_SECONDS"]

router = APIRouter(prefix="/events", tags=["events"], dependencies=[Depends(require_scope())])

KEEPALIVE_SECONDS = 15.0

EndpointFilter = Annotated[str | None, Query(max_length=255, description="only this endpoint")]
KindFilter = Annotated[str | None, Query(max_length=400, description="comma-separated kinds")]


def _kinds(kind: str | None) -> set[str] | None:
    return {k.strip() for k in kind.split(",") if k.strip()} or None if kind else None


def event_json(event: Event) -> dict[str, Any]:
    """The JSON view of an event."""
    return {"id": event.id, "time": event.time.isoformat(), "kind": event.kind,
            "endpoint": event.endpoint, "data": event.data}


def sse_frame(event: Event) -> str:
    """One server-sent-events frame (``id``, ``event``, ``data`` lines)."""
    return (f"id: {event.id}\nevent: {event.kind}\n"
            f"data: {json.dumps(event_json(event), separators=(',', ':'))}\n\n")


@router.get("", summary="Recent events, newest first")
async def list_events(server: ServerDep, endpoint: EndpointFilter = None,
                      kind: Annotated[str | None, Query(max_length=40, description="only this kind")] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    await server.store.flush()  # events published before this request are visible
    return [event_json(e) for e in await server.store.events(endpoint=endpoint, kind=kind, limit=limit)]


async def _stream(request: Request, server: Any, endpoint: str | None,
                  kinds: set[str] | None) -> AsyncIterator[str]:
    shutting_down: asyncio.Event = request.app.state.shutting_down
    events = server.events.subscribe()
    # Start the subscription before telling the client it is connected, so nothing published
    # after the first frame is missed.
    nxt: asyncio.Future[Event] = asyncio.ensure_future(events.__anext__())
    stop = asyncio.ensure_future(shutting_down.wait())
    await asyncio.sleep(0)
    try:
        yield ": connected\n\n"
        while True:
            waiting: set[asyncio.Future[Any]] = {nxt, stop}
            done, _ = await asyncio.wait(waiting, timeout=KEEPALIVE_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            if stop in done or await request.is_disconnected():
                return
            if nxt not in done:
                yield ": keepalive\n\n"
                continue
            event = nxt.result()
            nxt = asyncio.ensure_future(events.__anext__())
            if (endpoint is None or event.endpoint == endpoint) and (not kinds or event.kind in kinds):
                yield sse_frame(event)
    finally:
        for fut in (nxt, stop):
            fut.cancel()
        with contextlib.suppress(BaseException):
            await nxt
        await events.aclose()


@router.get("/stream", summary="Live events as server-sent events (text/event-stream)",
            response_class=StreamingResponse)
async def stream_events(request: Request, server: ServerDep, endpoint: EndpointFilter = None,
                        kind: KindFilter = None) -> StreamingResponse:
    return StreamingResponse(_stream(request, server, endpoint, _kinds(kind)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
