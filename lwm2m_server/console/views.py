"""The console's pages and form handlers under ``/console`` (and the ``/`` redirect).

Every page calls the REST route functions of ``lwm2m_server.api`` (or the services behind
them) for its data and every button the route of the same operation, so there is one piece of
code per operation; errors of the layers below become an HTML error page (GET) or a flash
message on the page the button was on (POST). Buttons post forms with the session's CSRF token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..api import artifacts as api_artifacts
from ..api import deployments as api_deployments
from ..api import devices as api_devices
from ..api import events as api_events
from ..api.deps import EngineDep, ServerDep
from ..api.errors import ApiError
from ..protocol.errors import LwM2MError, Queued
from ..model import Path
from ..rollout.errors import RolloutError
from .auth import (
    CONSOLE_PREFIX,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleError,
    ConsoleSession,
    LoginRequired,
    PageNotFound,
    check_login_nonce,
    checked_form,
    clear_session_cookie,
    login_session,
    new_login_nonce,
    optional_session,
    pop_flash,
    safe_next,
    session_from_cookie,
    set_flash,
    set_login_cookie,
    set_session_cookie,
)
from .fleet import (
    MODEL_OBJECT,
    ago,
    deployment_progress,
    device_rows,
    display,
    model_panel,
    tags_by_endpoint,
    value_rows,
)

__all__ = ["router", "mount_console", "templates", "MAX_DEVICE_ROWS"]

_HERE = FsPath(__file__).parent
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["ago"] = ago
_env.filters["display"] = display
templates = Jinja2Templates(env=_env)

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)

# A page of a large fleet stays quick to render and to read; the filter narrows it down.
MAX_DEVICE_ROWS = 500

SignedIn = Annotated[ConsoleSession, Depends(session_from_cookie)]


# --- rendering and errors -------------------------------------------------------------------

def render(request: Request, name: str, session: ConsoleSession | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    """Render template ``name`` with the session, its CSRF token and flash message."""
    holder = Response()
    flash = pop_flash(request, holder, session)
    response = templates.TemplateResponse(
        request, name, {"session": session, "csrf": session.csrf if session else "",
                        "can_write": bool(session and session.allows("write")),
                        "can_deploy": bool(session and session.allows("deploy")),
                        "flash": flash, "prefix": CONSOLE_PREFIX, **context},
        status_code=status)
    for key, value in holder.headers.items():
        if key == "set-cookie":
            response.headers.append(key, value)
    response.headers.update(_SECURITY_HEADERS)
    return response


def _back(url: str, request: Request, session: ConsoleSession, level: str, message: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    set_flash(response, request, session, level, message)
    response.headers.update(_SECURITY_HEADERS)
    return response


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


def _error_status(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, (LwM2MError, RolloutError)):
        return exc.http_status, exc.message
    raise exc


@contextlib.contextmanager
def page_errors() -> Iterator[None]:
    """Errors of the API, protocol and rollout layers as a console error page."""
    try:
        yield
    except (ApiError, LwM2MError, RolloutError) as e:
        status, message = _error_status(e)
        raise ConsoleError(message, status) from None


async def _act(request: Request, session: ConsoleSession, back: str,
               op: Callable[[], Awaitable[Any] | Any], done: Callable[[Any], str]) -> RedirectResponse:
    """Run a button's operation, then go back to ``back`` with what happened as a flash message."""
    try:
        result = op()
        if isinstance(result, Awaitable):
            result = await result
    except Queued as e:
        return _back(back, request, session, "info",
                     f"the device sleeps (queue mode): request {e.request_id} waits for its next "
                     "update")
    except (ApiError, LwM2MError, RolloutError) as e:
        status, message = _error_status(e)
        return _back(back, request, session, "error", f"{status}: {message}")
    return _back(back, request, session, "ok", done(result))


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


# --- devices ----------------------------------------------------------------------------------

@router.get(CONSOLE_PREFIX + "/devices")
def devices_page(request: Request, session: SignedIn, server: ServerDep,
                 q: Annotated[str | None, Query(max_length=200)] = None,
                 tag: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
    devices = api_devices.device_list(server)
    tags = tags_by_endpoint(request.app.state.engine)
    rows = device_rows(devices, server.devices.latest, tags, text=q, tag=tag or None)
    all_tags = sorted({t for ts in tags.values() for t in ts})
    return render(request, "devices.html", session, rows=rows[:MAX_DEVICE_ROWS], matched=len(rows),
                  q=q or "", tag=tag or "",
                  all_tags=all_tags, total=len(devices),
                  online=sum(1 for d in devices if d["online"]))


@router.get(CONSOLE_PREFIX + "/devices/{endpoint}")
async def device_page(request: Request, endpoint: str, session: SignedIn, server: ServerDep,
                      engine: EngineDep) -> HTMLResponse:
    with page_errors():
        device = api_devices.get_device(endpoint, server)
        events = await api_events.list_events(server, endpoint=endpoint, kind=None, limit=25)
        tags = await run_in_threadpool(api_deployments.get_tags, endpoint, engine)
    latest = server.devices.latest(endpoint)
    registry = server.registry
    objects = []
    for text in device["objects"]:
        p = Path.parse(text)
        odef = registry.get(p.object_id) if p.object_id is not None else None
        objects.append({"path": text, "object_id": p.object_id, "instance_id": p.instance_id,
                        "name": odef.name if odef is not None else "unknown object",
                        "version": device["object_versions"].get(str(p.object_id), "1.0")})
    observed = [{"paths": ", ".join(str(p) for p in key), "single": str(key[0]) if len(key) == 1 else None}
                for key in sorted(server.devices.observations(endpoint))]
    has_model = any(o["object_id"] == MODEL_OBJECT for o in objects)
    return render(request, "device.html", session, device=device, objects=objects,
                  values=value_rows(latest, registry), model=model_panel(latest),
                  has_model=has_model, events=events, observed=observed, tags=tags["tags"],
                  endpoint_url=quote(endpoint, safe=""))


def _device_url(endpoint: str) -> str:
    return f"{CONSOLE_PREFIX}/devices/{quote(endpoint, safe='')}"


def _count(result: dict[str, Any]) -> str:
    n = len(result.get("values", {}))
    return f"{n} value{'s' if n != 1 else ''}"


# Device buttons: the REST route of the operation, and what to say when it worked.
_DEVICE_OPERATIONS: dict[str, tuple[Callable[..., Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], str]]] = {
    "read": (api_devices.read, lambda r: f"Read {r['path']}: {_count(r)}"),
    "observe": (api_devices.observe,
                lambda r: f"Observing {r['path']} (current: {_count(r)}); notifications update "
                          "the values live"),
    "cancel-observe": (api_devices.cancel_observe,
                       lambda r: f"Stopped observing {r['path']}"),
}


@router.post(CONSOLE_PREFIX + "/devices/{endpoint}/{operation}")
async def device_operation(request: Request, endpoint: str, operation: str,
                           server: ServerDep) -> Response:
    """The Read, Observe and cancel-observation buttons (form field ``path``)."""
    session, form = await checked_form(request, "write")
    if operation not in _DEVICE_OPERATIONS:
        raise ConsoleError(f"unknown device operation {operation!r} "
                           f"({', '.join(_DEVICE_OPERATIONS)})", 404)
    route, done = _DEVICE_OPERATIONS[operation]
    path = str(form.get("path") or "")
    return await _act(request, session, _device_url(endpoint),
                      lambda: route(endpoint, path, server, timeout=None), done)


@router.get(CONSOLE_PREFIX + "/events")
async def events_stream(request: Request, session: SignedIn, server: ServerDep,
                        endpoint: Annotated[str | None, Query(max_length=255)] = None,
                        kind: Annotated[str | None, Query(max_length=400)] = None) -> StreamingResponse:
    """Live events for the console pages: the REST stream, signed in by the cookie."""
    return await api_events.stream_events(request, server, endpoint=endpoint, kind=kind)


# --- deployments and artifacts ------------------------------------------------------------------

@router.get(CONSOLE_PREFIX + "/deployments")
def deployments_page(request: Request, session: SignedIn, engine: EngineDep,
                     state: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    with page_errors():
        wanted = state if state in ("running", "paused", "cancelled", "completed") else None
        deployments = api_deployments.get_deployments(engine, state=wanted)  # type: ignore[arg-type]
    for d in deployments:
        d["progress"] = deployment_progress(d)
    return render(request, "deployments.html", session, deployments=deployments,
                  state=state or "")


@router.get(CONSOLE_PREFIX + "/deployments/{deployment_id}")
def deployment_page(request: Request, deployment_id: int, session: SignedIn,
                    engine: EngineDep) -> HTMLResponse:
    with page_errors():
        view = api_deployments.get_deployment(deployment_id, engine)
    return render(request, "deployment.html", session, dep=view, progress=deployment_progress(view))


_DEPLOYMENT_ACTIONS = {"pause": api_deployments.pause, "resume": api_deployments.resume,
                       "cancel": api_deployments.cancel}


@router.post(CONSOLE_PREFIX + "/deployments/{deployment_id}/{action}")
async def deployment_action(request: Request, deployment_id: int, action: str,
                            engine: EngineDep) -> Response:
    session, _ = await checked_form(request, "deploy")
    op = _DEPLOYMENT_ACTIONS.get(action)
    if op is None:
        raise ConsoleError(f"unknown deployment action {action!r} (pause, resume or cancel)", 404)
    return await _act(request, session, f"{CONSOLE_PREFIX}/deployments/{deployment_id}",
                      lambda: run_in_threadpool(op, deployment_id, engine, request),
                      lambda v: f"deployment {deployment_id} is {v['state']}")


@router.get(CONSOLE_PREFIX + "/artifacts")
def artifacts_page(request: Request, session: SignedIn, engine: EngineDep,
                   kind: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    with page_errors():
        artifacts = api_artifacts.get_artifacts(engine, kind=kind or None)
    return render(request, "artifacts.html", session, artifacts=artifacts, kind=kind or "")


@router.get(CONSOLE_PREFIX + "/{rest:path}")
def not_found(rest: str, session: SignedIn) -> None:
    raise PageNotFound(f"there is no console page /console/{rest}")


def mount_console(app: FastAPI) -> None:
    """Serve the console on ``app``: pages under /console, static files, ``/`` redirect."""
    # Static files first: the router's catch-all 404 page would hide them.
    app.mount(CONSOLE_PREFIX + "/static", StaticFiles(directory=_HERE / "static"),
              name="console-static")
    app.include_router(router)
    app.add_exception_handler(ConsoleError, _console_error)
