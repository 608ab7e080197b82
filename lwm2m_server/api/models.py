"""``/api/v1/models``: the model inventory (``inventory.model_inventory``).

Per model name: the versions stored as artifacts (model modules and SOTA packages), which
devices run which version in which slot, and the inference count and latency they report.
``?refresh=true`` first reads /33100/0 from every online device (at most ``timeout`` seconds
each, concurrently); otherwise the answer uses the values last read or observed.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from ..inventory import device_model, model_inventory, refresh_paths
from ..store.artifacts import list_artifacts
from .deps import EngineDep, ServerDep, require_scope

__all__ = ["router", "collect_inventory"]

router = APIRouter(prefix="/models", tags=["models"])


async def collect_inventory(server: Any, engine: Any, *, refresh: bool = False,
                            timeout: float = 5.0) -> list[dict[str, Any]]:
    """The inventory from the store and the server's devices (REST and console share it)."""
    regs = sorted(server.registrations.list(), key=lambda r: r.endpoint)
    if refresh:
        from ..protocol.requests import ReadRequest

        async def read(endpoint: str) -> None:
            for p in refresh_paths():
                try:
                    await asyncio.wait_for(server.devices.send(endpoint, ReadRequest(p)), timeout)
                except Exception:  # noqa: BLE001 - a device that does not answer keeps old values
                    pass

        await asyncio.gather(*(read(r.endpoint) for r in regs
                               if r.online and 33100 in r.object_ids))
    devices = [device_model(r.endpoint, bool(r.online), server.devices.latest(r.endpoint))
               for r in regs]
    artifacts = await run_in_threadpool(
        lambda: list_artifacts(engine, "model", limit=10_000) + list_artifacts(engine, "sota", limit=10_000))
    return model_inventory(artifacts, [d for d in devices if d is not None])


@router.get("", summary="Model inventory: versions, devices per version and slot, inference stats",
            dependencies=[Depends(require_scope("read"))])
async def get_models(server: ServerDep, engine: EngineDep,
                     refresh: bool = False,
                     timeout: Annotated[float, Query(gt=0, le=60)] = 5.0) -> list[dict[str, Any]]:
    return await collect_inventory(server, engine, refresh=refresh, timeout=timeout)
