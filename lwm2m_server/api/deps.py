"""FastAPI dependencies by type: the server, the database session, the authenticated token.

``CurrentToken`` checks the scope by method: ``read`` for GET/HEAD, ``write`` for the rest.
Routers for deployments and tokens use ``DeployToken`` and ``AdminToken``. A token with the
``admin`` scope carries every scope.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from annotated_types import Interval
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config import Settings
from ..server import LwM2MServer
from ..store.tokens import ApiToken, cached_token, verify_token
from .errors import Forbidden, Unauthorized, Unavailable
from .limits import PREAUTHENTICATED


__all__ = ["get_settings", "get_engine", "get_session", "get_server", "require_scope",
           "SettingsDep", "EngineDep", "SessionDep", "ServerDep",
           "CurrentToken", "ReadToken", "WriteToken", "DeployToken", "AdminToken", "BOOTSTRAP_TOKEN_NAME",
           "DbInt", "DB_INT_MAX", "authenticate_bearer", "event_bus", "wake_rollout"]

BOOTSTRAP_TOKEN_NAME = "LWM2M_ADMIN_TOKEN"
_bearer = HTTPBearer(auto_error=False, description="an API token from `lwm2m-server token create`")


# Dependencies without I/O are coroutines: FastAPI runs plain functions in the thread pool,
# which costs a thread hop per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _engine(request: Request) -> Engine:
    engine = request.app.state.engine
    if engine is None:
        raise Unavailable("no database is configured")
    return engine  # type: ignore[no-any-return]


async def get_engine(request: Request) -> Engine:
    return _engine(request)


def event_bus(request: Request) -> Any:
    """The running server's event bus, or None (an app without a server: the rollout
    operations then write their events to the outbox table)."""
    return getattr(getattr(request.app.state, "server", None), "events", None)


def wake_rollout(request: Request) -> None:
    """Have the rollout engine reconcile now (after a change through the API or the console)."""
    service = getattr(request.app.state, "rollout", None)
    if service is not None:
        service.wake()


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


async def get_server(request: Request) -> LwM2MServer:
    server = request.app.state.server
    if server is None:
        raise Unavailable("the LwM2M server is not running in this process")
    return server  # type: ignore[no-any-return]


DB_INT_MAX = 2 ** 63 - 1
# Every id and offset a caller sends that reaches the database: a 64-bit signed integer column
# (SQLite and PostgreSQL BIGINT). Anything outside is a 400 before any query, never an
# OverflowError (500). For path, query and body fields alike.
DbInt = Annotated[int, Interval(ge=0, le=DB_INT_MAX)]

SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
ServerDep = Annotated[LwM2MServer, Depends(get_server)]


@dataclass(frozen=True, slots=True)
class _BootstrapToken:
    """The token from ``LWM2M_ADMIN_TOKEN``: every scope, nothing in the database."""

    name: str = BOOTSTRAP_TOKEN_NAME
    id: int | None = None

    def allows(self, scope: str) -> bool:
        return True

    def summary(self) -> dict[str, Any]:
        return {"id": None, "name": self.name, "scopes": ["admin"],
                "created_at": None, "last_used_at": datetime.now(timezone.utc).isoformat(),
                "revoked": False}


def _known_bearer(request: Request, scheme: str, plaintext: str) -> ApiToken | _BootstrapToken | None:
    """The token for ``Authorization: <scheme> <plaintext>`` when it is known without I/O (the
    bootstrap token, or one verified moments ago); None when the database must be asked."""
    if scheme.lower() != "bearer" or not plaintext:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    settings: Settings = request.app.state.settings
    if settings.admin_token is not None and hmac.compare_digest(
            plaintext.encode(), settings.admin_token.get_secret_value().encode()):
        return _BootstrapToken()
    return cached_token(_engine(request), plaintext)


def authenticate_bearer(request: Request, scheme: str, plaintext: str) -> ApiToken | _BootstrapToken:
    """The token for ``Authorization: <scheme> <plaintext>``; Unauthorized when it is not one.

    Used by the body-limit middleware (before any body byte is read) and by ``require_scope``.
    """
    known = _known_bearer(request, scheme, plaintext)
    if known is not None:
        return known
    token = verify_token(_engine(request), plaintext)
    if token is None:
        raise Unauthorized("invalid or revoked token")
    return token


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None
                  ) -> ApiToken | _BootstrapToken:
    """``authenticate_bearer`` for FastAPI's parsed credentials (also the console's login check)."""
    if credentials is None:
        return authenticate_bearer(request, "", "")
    return authenticate_bearer(request, credentials.scheme, credentials.credentials)


def require_scope(scope: str | None = None) -> Any:
    """A dependency that authenticates and checks ``scope`` (None: read for GET/HEAD, else write)."""

    # A coroutine: a token verified moments ago is checked in the event loop; only a database
    # lookup goes to the thread pool (a thread hop per request cost more than the REST call's
    # own work).
    async def dependency(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                         ) -> ApiToken | _BootstrapToken:
        token = request.scope.get("state", {}).get(PREAUTHENTICATED)
        if token is None:
            token = (_known_bearer(request, credentials.scheme, credentials.credentials)
                     if credentials is not None else None)
        if token is None:
            token = await run_in_threadpool(_authenticate, request, credentials)
        needed = scope or ("read" if request.method in ("GET", "HEAD") else "write")
        if not token.allows(needed):
            raise Forbidden(f"token '{token.name}' lacks the '{needed}' scope", scope=needed)
        request.state.token = token
        return token

    return dependency


CurrentToken = Annotated[ApiToken, Depends(require_scope())]
ReadToken = Annotated[ApiToken, Depends(require_scope("read"))]
WriteToken = Annotated[ApiToken, Depends(require_scope("write"))]
DeployToken = Annotated[ApiToken, Depends(require_scope("deploy"))]
AdminToken = Annotated[ApiToken, Depends(require_scope("admin"))]
