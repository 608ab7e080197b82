"""The console's sign-in, event stream and error pages, and ``mount_console``, which puts every
page module (devices, deployments, artifacts, overview) on the app under ``/console``.

Every page calls the REST route functions of ``lwm2m_server.api`` (or the services behind
them) for its data and every button the route of the same operation, so there is one piece of
code per operation; errors of the layers below become an HTML error page (GET) or a flash
message on the page the button was on (POST). Buttons post forms with the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ..api import events as api_events
from ..api.deps import ServerDep
from . import artifact_pages, deployment_pages, device_pages, models, overview_page
from .auth import (
    CONSOLE_PREFIX,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleError,
    LoginRequired,
    PageNotFound,
    check_login_nonce,
    checked_form,
    clear_session_cookie,
    login_session,
    new_login_nonce,
    optional_session,
    safe_next,
    set_flash,
    set_login_cookie,
    set_session_cookie,
)
from .common import HERE, SignedIn, render, templates
from .device_pages import MAX_DEVICE_ROWS
from .history import ValueHistory

__all__ = ["router", "mount_console", "templates", "MAX_DEVICE_ROWS"]

router = APIRouter(include_in_schema=False)


def _login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{CONSOLE_PREFIX}/login?{urlencode({'next': target})}"


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    if isinstance(exc, LoginRequired) and request.method in ("GET", "HEAD"):
        response: Response = RedirectResponse(_login_url(request), status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            clear_session_cookie(response)
        return response
    session = await run_in_threadpool(optional_session, request)
    return render(request, "error.html", session, status=exc.status, message=exc.message,
                  status_code=exc.status)


# --- sign-in ----------------------------------------------------------------------------------

@router.get("/")
@router.get(CONSOLE_PREFIX)
@router.get(CONSOLE_PREFIX + "/")
def console_root() -> RedirectResponse:
    return RedirectResponse(f"{CONSOLE_PREFIX}/devices", status_code=307)


def _login_page(request: Request, next_url: str, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    nonce = new_login_nonce()
    response = render(request, "login.html", None, status=status, next=safe_next(next_url),
                      error=error, nonce=nonce)
    set_login_cookie(response, request, nonce)
    return response


@router.get(CONSOLE_PREFIX + "/login")
def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    if optional_session(request) is not None:  # already signed in
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next or "")


@router.post(CONSOLE_PREFIX + "/login")
async def login(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    check_login_nonce(request, form.get("login_nonce"))
    token = str(form.get("token") or "").strip()
    try:
        session = await run_in_threadpool(login_session, request, token)
    except ConsoleError as e:
        return _login_page(request, next_url, e.message, e.status)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, request, token)
    response.delete_cookie(LOGIN_COOKIE, path=CONSOLE_PREFIX)
    set_flash(response, request, session, "ok", f"signed in as {session.name}")
    return response


@router.post(CONSOLE_PREFIX + "/logout")
async def logout(request: Request) -> Response:
    await checked_form(request, "read")
    response = RedirectResponse(f"{CONSOLE_PREFIX}/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get(CONSOLE_PREFIX + "/events")
async def events_stream(request: Request, session: SignedIn, server: ServerDep,
                        endpoint: Annotated[str | None, Query(max_length=255)] = None,
                        kind: Annotated[str | None, Query(max_length=400)] = None) -> StreamingResponse:
    """Live events for the console pages: the REST stream, signed in by the cookie."""
    return await api_events.stream_events(request, server, endpoint=endpoint, kind=kind)


_catch_all = APIRouter(include_in_schema=False)


@_catch_all.get(CONSOLE_PREFIX + "/{rest:path}")
def not_found(rest: str, session: SignedIn) -> None:
    raise PageNotFound(f"there is no console page /console/{rest}")


def mount_console(app: FastAPI) -> None:
    """Serve the console on ``app``: pages under /console, static files, ``/`` redirect.

    With a server on ``app.state.server``, the console follows its events to tell where
    each value came from (``ValueHistory``).
    """
    app.state.console_history = ValueHistory()
    app.state.console_staging = artifact_pages.Staging()
    server = getattr(app.state, "server", None)
    if server is not None:
        server.events.add_sink(app.state.console_history.sink)
    # Static files first: the catch-all 404 page would hide them.
    app.mount(CONSOLE_PREFIX + "/static", StaticFiles(directory=HERE / "static"),
              name="console-static")
    app.include_router(router)
    for part in (overview_page, device_pages, deployment_pages, artifact_pages, models):
        app.include_router(part.router)
    app.include_router(_catch_all)
    app.add_exception_handler(ConsoleError, _console_error)
