"""What every console page module shares: the template environment, ``render`` (session, CSRF
token, flash message, security headers), the redirect-with-message of a button, and the
translation of the lower layers' errors into console errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..api.errors import ApiError
from ..protocol.errors import LwM2MError, Queued
from ..rollout.errors import RolloutError
from .auth import CONSOLE_PREFIX, ConsoleError, ConsoleSession, pop_flash, session_from_cookie, set_flash
from .fleet import ago, display

__all__ = ["templates", "render", "back", "act", "page_errors", "error_status", "SignedIn",
           "SECURITY_HEADERS", "device_url", "json_response", "HERE"]

HERE = FsPath(__file__).parent
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["ago"] = ago
_env.filters["display"] = display
templates = Jinja2Templates(env=_env)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

SignedIn = Annotated[ConsoleSession, Depends(session_from_cookie)]


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
    response.headers.update(SECURITY_HEADERS)
    return response


def json_response(content: Any, status: int = 200) -> JSONResponse:
    """A JSON answer for the console's scripts (same security headers as the pages)."""
    response = JSONResponse(content, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def back(url: str, request: Request, session: ConsoleSession, level: str, message: str) -> RedirectResponse:
    """Go to ``url`` with a one-time message (``level`` ok, info or error)."""
    response = RedirectResponse(url, status_code=303)
    set_flash(response, request, session, level, message)
    response.headers.update(SECURITY_HEADERS)
    return response


def device_url(endpoint: str) -> str:
    return f"{CONSOLE_PREFIX}/devices/{quote(endpoint, safe='')}"


def error_status(exc: Exception) -> tuple[int, str]:
    """HTTP status and message of an API, protocol or rollout error."""
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
        status, message = error_status(e)
        raise ConsoleError(message, status) from None


async def act(request: Request, session: ConsoleSession, to: str,
              op: Callable[[], Awaitable[Any] | Any], done: Callable[[Any], str]) -> RedirectResponse:
    """Run a button's operation, then go to ``to`` with what happened as a flash message."""
    try:
        result = op()
        if isinstance(result, Awaitable):
            result = await result
    except Queued as e:
        return back(to, request, session, "info",
                    f"the device sleeps (queue mode): request {e.request_id} waits for its next "
                    "update")
    except (ApiError, LwM2MError, RolloutError) as e:
        status, message = error_status(e)
        return back(to, request, session, "error", f"{status}: {message}")
    return back(to, request, session, "ok", done(result))
