"""The console's model inventory page, ``/console/models``.

Shows ``api.models.collect_inventory`` (the answer of ``GET /api/v1/models``): per model name,
its versions and the devices that run or hold each, with the inference count and latency the
devices report. Signed-in operators only, through the console's own session dependency.
Mounted by ``mount_console`` (``app.include_router(router)``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..api.deps import EngineDep, ServerDep
from ..api.models import collect_inventory
from .auth import CONSOLE_PREFIX
from .common import SignedIn, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get(CONSOLE_PREFIX + "/models", response_class=HTMLResponse)
async def models_page(request: Request, session: SignedIn, server: ServerDep,
                      engine: EngineDep, refresh: bool = False) -> HTMLResponse:
    """Every model name with its versions and devices (``?refresh=true`` reads the devices)."""
    inventory = await collect_inventory(server, engine, refresh=refresh)
    return render(request, "models.html", session, models=inventory, refreshed=refresh)
