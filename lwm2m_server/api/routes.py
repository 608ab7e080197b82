"""Collects the routers under ``/api/v1``: one module per resource, each exposing ``router``."""

from __future__ import annotations

import functools

from fastapi import APIRouter

from . import artifacts, deployments, devices, events, models, requests, tokens

__all__ = ["API_PREFIX", "build_api_router"]

API_PREFIX = "/api/v1"

ROUTERS = [
    devices.router,      # /devices: registrations and device management
    requests.router,     # /requests/{id}: queued requests
    events.router,       # /events, /events/stream
    tokens.router,       # /tokens (admin)
    artifacts.router,    # /artifacts
    deployments.router,  # /deployments
    models.router,       # /models: model inventory
]


@functools.cache
def build_api_router() -> APIRouter:
    """A router holding every resource router under ``/api/v1``.

    Built once per process and shared by every app (routes keep no per-app state; building
    them costs a third of a second).
    """
    api = APIRouter(prefix=API_PREFIX)
    for router in ROUTERS:
        api.include_router(router)
    return api
