"""Console sign-in: the API token in an HttpOnly, SameSite=Strict cookie, and CSRF checks.

The cookie holds the operator's API token (``lwm2m-server token create``); every request checks
it the way the REST API checks a bearer token (the hashed-token lookup of ``store/tokens.py``,
or ``LWM2M_ADMIN_TOKEN``), so a revoked token logs the console out at once. The CSRF token of a
session is an HMAC of the cookie's token: forms carry it, POST handlers compare it in constant
time, and nobody without the cookie can compute it. The login form, before any session exists,
uses a double-submit cookie instead. Scopes are those of the API: ``read`` to look,
``write`` for device buttons, ``deploy`` for deployment buttons.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import FormData

from ..api.deps import _authenticate
from ..api.errors import Unauthorized

__all__ = [
    "SESSION_COOKIE", "LOGIN_COOKIE", "FLASH_COOKIE", "CONSOLE_PREFIX",
    "ConsoleError", "LoginRequired", "CsrfRejected", "ScopeMissing", "PageNotFound",
    "ConsoleSession", "session_from_cookie", "optional_session", "login_session", "checked_form",
    "check_form",
    "check_login_nonce",
    "csrf_for", "set_session_cookie", "clear_session_cookie", "new_login_nonce", "set_login_cookie",
    "set_flash", "pop_flash", "safe_next",
]

CONSOLE_PREFIX = "/console"
SESSION_COOKIE = "lwm2m_console"
LOGIN_COOKIE = "lwm2m_console_login"
FLASH_COOKIE = "lwm2m_console_flash"
SESSION_SECONDS = 12 * 3600
_CSRF_LABEL = b"lwm2m-console-csrf-v1"
_FLASH_LABEL = b"lwm2m-console-flash-v1"


class ConsoleError(Exception):
    """Base of the console's errors; ``status`` is the HTTP status of the page that says so."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        self.message = message
        if status is not None:
            self.status = status
        super().__init__(message)


class LoginRequired(ConsoleError):
    """No valid session: pages redirect to the login page, POSTs answer 401."""

    status = 401


class CsrfRejected(ConsoleError):
    """A POST without the session's CSRF token, or from another origin."""

    status = 403


class ScopeMissing(ConsoleError):
    """The signed-in token lacks the scope the button needs."""

    status = 403


class PageNotFound(ConsoleError):
    status = 404


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """Who is signed in: the token's name and scopes, and the CSRF token for forms."""

    name: str
    token: Any
    csrf: str

    def allows(self, scope: str) -> bool:
        return bool(self.token.allows(scope))


def csrf_for(plaintext_token: str) -> str:
    """The CSRF token of a session: an HMAC of the cookie's token (secret to anyone else)."""
    return hmac.new(plaintext_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def _check(request: Request, plaintext: str) -> ConsoleSession:
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=plaintext)
    token = _authenticate(request, credentials)  # the REST API's own check
    return ConsoleSession(name=str(token.name), token=token, csrf=csrf_for(plaintext))


def session_from_cookie(request: Request) -> ConsoleSession:
    """The session of the cookie; LoginRequired when there is none or its token is not valid.

    Synchronous (a database lookup): call it from a thread (``run_in_threadpool``).
    """
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise LoginRequired("please sign in with an API token")
    try:
        return _check(request, raw)
    except Unauthorized:
        raise LoginRequired("your token is no longer valid (revoked?); sign in again") from None


def optional_session(request: Request) -> ConsoleSession | None:
    try:
        return session_from_cookie(request)
    except LoginRequired:
        return None


def login_session(request: Request, plaintext: str) -> ConsoleSession:
    """The session ``plaintext`` would open; ConsoleError(401) when the token is not valid."""
    if not plaintext or len(plaintext) > 200:
        raise ConsoleError("paste the API token printed by 'lwm2m-server token create'", 400)
    try:
        session = _check(request, plaintext)
    except Unauthorized:
        raise ConsoleError("that token is unknown or revoked", 401) from None
    if not session.allows("read"):
        raise ConsoleError(f"token '{session.name}' lacks the 'read' scope the console needs", 403)
    return session


def _same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (Origin or Referer)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # older clients send neither; the CSRF token still has to match
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def checked_form(request: Request, scope: str) -> tuple[ConsoleSession, FormData]:
    """The session and form of a console POST: signed in, same origin, right CSRF token, scope.

    Raises LoginRequired, CsrfRejected or ScopeMissing.
    """
    session = await run_in_threadpool(session_from_cookie, request)
    form = await request.form()
    check_form(request, session, form, scope)
    return session, form


def check_form(request: Request, session: ConsoleSession, form: Any, scope: str) -> None:
    """Refuse a form already read (an upload, read within its size limit) unless it comes from
    this site with the session's CSRF token and the session has ``scope``."""
    sent = form.get("csrf_token")
    if not _same_origin(request):
        raise CsrfRejected("refused: the form was sent from another site")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRejected("refused: the form's CSRF token is missing or wrong; reload the page "
                           "and try again")
    if not session.allows(scope):
        raise ScopeMissing(f"token '{session.name}' lacks the '{scope}' scope for this action")


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int,
            path: str = CONSOLE_PREFIX) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def set_session_cookie(response: Response, request: Request, plaintext: str) -> None:
    _cookie(response, request, SESSION_COOKIE, plaintext, SESSION_SECONDS)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=CONSOLE_PREFIX)


def new_login_nonce() -> str:
    """A fresh double-submit nonce for the login form: put it in the form and, with
    ``set_login_cookie``, in a cookie."""
    return secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    _cookie(response, request, LOGIN_COOKIE, nonce, 3600)


def check_login_nonce(request: Request, sent: object) -> None:
    expected = request.cookies.get(LOGIN_COOKIE)
    if not _same_origin(request) or not expected or not isinstance(sent, str) or \
            not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected("refused: the login form is stale or came from another site; "
                           "reload the page and try again")


def _flash_mac(session: ConsoleSession, body: str) -> str:
    return hmac.new(session.csrf.encode(), _FLASH_LABEL + body.encode(), hashlib.sha256).hexdigest()[:32]


def set_flash(response: Response, request: Request, session: ConsoleSession, level: str,
              message: str) -> None:
    """A one-time message (``level`` ok, info or error) for the next page of this session."""
    body = base64.urlsafe_b64encode(json.dumps([level, message[:2000]]).encode()).decode()
    _cookie(response, request, FLASH_COOKIE, f"{body}.{_flash_mac(session, body)}", 120)


def pop_flash(request: Request, response: Response, session: ConsoleSession | None) -> tuple[str, str] | None:
    """The flash message set for this session (then cleared), or None."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    response.delete_cookie(FLASH_COOKIE, path=CONSOLE_PREFIX)
    body, _, mac = raw.partition(".")
    if session is None or not hmac.compare_digest(mac.encode(), _flash_mac(session, body).encode()):
        return None
    try:
        level, message = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, TypeError):
        return None
    return (str(level), str(message))


def safe_next(target: str | None) -> str:
    """A post-login destination inside the console (never another site)."""
    if not target or not target.startswith(CONSOLE_PREFIX + "/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return CONSOLE_PREFIX + "/devices"
    return target
