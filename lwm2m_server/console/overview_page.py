"""The fleet overview: devices online and offline, firmware and model versions across the
fleet (bar charts), deployments under way; all of it for one tag when the operator picks one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ..api import deployments as api_deployments
from ..api import devices as api_devices
from ..api.deps import EngineDep, ServerDep
from .auth import CONSOLE_PREFIX
from .common import SignedIn, render
from .fleet import deployment_progress, device_rows, tags_by_endpoint, version_counts

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get(CONSOLE_PREFIX + "/overview")
def overview_page(request: Request, session: SignedIn, server: ServerDep, engine: EngineDep,
                  tag: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
    devices = api_devices.device_list(server)
    tags = tags_by_endpoint(engine)
    rows = device_rows(devices, server.devices.latest, tags, tag=tag or None)
    online = sum(1 for r in rows if r.device["online"])
    active = [d for state in ("running", "paused")
              for d in api_deployments.get_deployments(engine, state=state)]  # type: ignore[arg-type]
    for d in active:
        d["progress"] = deployment_progress(d)
    if tag:  # this tag's deployments, and those naming endpoints (they may hold its devices)
        active = [d for d in active if d["tag"] == tag or d["tag"] is None]
    return render(request, "overview.html", session, tag=tag or "",
                  all_tags=sorted({t for ts in tags.values() for t in ts}), total=len(rows),
                  online=online, offline=len(rows) - online, versions=version_counts(rows),
                  deployments=active)
