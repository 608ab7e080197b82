"""The FastAPI application factory: REST API, /healthz, /metrics, OpenAPI at /docs.

/docs (Swagger UI 5) comes with its JS and CSS from the ``fastapi-offline`` package's own files
under /docs/static, so it works on a machine without internet (FastAPI's default page loads it
from a CDN). No ReDoc page: ReDoc fetches its logo from its vendor's site.

``create_app`` wires the running ``LwM2MServer`` (device routes), the database engine (tokens,
events) and the settings into ``app.state``; the runner serves the result with uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .api.errors import install_error_handlers
from .api.health import HTTP_REQUESTS
from .api.health import router as health_router
from .api.deps import authenticate_bearer
from .api.limits import BodyLimits
from .api.openapi import install_openapi
from .api.routes import build_api_router
from .config import Settings

if TYPE_CHECKING:
    from .server import LwM2MServer

__all__ = ["create_app", "DOCS_ASSETS"]

DOCS_ASSETS = "/docs/static"  # Swagger UI files, from the fastapi-offline package

_DESCRIPTION = """LwM2M 1.1 device management over REST.

Authenticate with `Authorization: Bearer <token>` (`lwm2m-server token create`). Scopes:
`read` for GET, `write` for everything else, `deploy` for deployments, `admin` for tokens.
Requests to a sleeping queue-mode device answer 202 with a `request_id` to poll at
`/api/v1/requests/{id}`, or wait with `?timeout=`.
"""


def create_app(settings: Settings | None = None, server: LwM2MServer | None = None,
               engine: Engine | None = None) -> FastAPI:
    """The HTTP app for ``server`` (may be None: then only tokens, events and health work).

    ``engine`` defaults to the server's engine.
    """
    settings = settings or (server.settings if server is not None and hasattr(server, "settings")
                            else Settings())  # type: ignore[call-arg]  # all fields have defaults
    app = FastAPIOffline(title="lwm2m-server", version=__version__, description=_DESCRIPTION,
                         docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
                         static_url=DOCS_ASSETS)
    app.state.settings = settings
    app.state.server = server
    app.state.engine = engine if engine is not None else getattr(server, "engine", None)
    # Set by the runner at shutdown: long-lived responses (event streams) end on it.
    app.state.shutting_down = asyncio.Event()
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(build_api_router())
    from .console import mount_console  # operator console: /console pages, / redirect

    mount_console(app)
    install_openapi(app)

    # Added last, so outermost but for the counter: a body is refused before anything reads it.
    app.add_middleware(BodyLimits, authenticate=authenticate_bearer)
    app.add_middleware(_CountResponses)
    return app


class _CountResponses:
    """Counts answers by method and status class (plain ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                HTTP_REQUESTS.inc(scope["method"], f"{message['status'] // 100}xx")  # type: ignore[attr-defined]
            await send(message)

        await self.app(scope, receive, counting_send)
