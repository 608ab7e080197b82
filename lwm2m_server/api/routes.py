"""Collects the routers under ``/api/v1``: one module per resource, each exposing ``router``.

Modules that are not part of this build (artifacts, deployments until they land) are skipped,
so new resources slot in by adding their module name here.
"""

from __future__ import annotations

import functools
import importlib

from fastapi import APIRouter

__all__ = ["API_PREFIX", "ROUTER_MODULES", "build_api_router"]

API_PREFIX = "/api/v1"

ROUTER_MODULES = [
    "lwm2m_server.api.devices",      # /devices: registrations and device management
    "lwm2m_server.api.requests",     # /requests/{id}: queued requests
    "lwm2m_server.api.events",       # /events, /events/stream
    "lwm2m_server.api.tokens",       # /tokens (admin)
    "lwm2m_server.api.artifacts",    # /artifacts (OTA issue)
    "lwm2m_server.api.deployments",  # /deployments (OTA issue)
    "lwm2m_server.api.credentials",  # /devices/{endpoint}/credentials (admin)
    "lwm2m_server.api.bootstrap",    # /bootstrap (admin)
]


@functools.cache
def build_api_router() -> APIRouter:
    """A router holding every resource router present in this build, under ``/api/v1``.

    Built once per process and shared by every app (routes keep no per-app state; building
    them costs a third of a second).
    """
    api = APIRouter(prefix=API_PREFIX)
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        api.include_router(module.router)
    return api
