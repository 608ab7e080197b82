"""What the server logs, and how: one line per registration event and rollout transition, the
optional HTTP access log, request ids, and text or JSON lines.

- ``setup_logging(level, fmt)`` configures the root logger once: ``text`` (human lines) or
  ``json`` (one JSON object a line, for log shippers). Every record carries ``request_id``.
- ``RequestIdMiddleware`` (pure ASGI) takes a caller's ``X-Request-Id`` (or makes one), echoes
  it in the answer, and holds it in ``REQUEST_ID`` (a contextvar) while the request runs, so
  the log lines of the device requests it causes carry it too; with ``access_log`` it writes
  one line per HTTP request.
- ``log_event`` is an event-bus sink: registered, updated, deregistered, expired, deployment
  and deployment_target events become one info line each.

Secrets never reach a line: events carry no tokens or keys, the access log writes the path
without its query string and no headers, and ``redact`` drops any field named like a secret.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

__all__ = ["REQUEST_ID", "RequestIdMiddleware", "setup_logging", "tag_worker", "log_event",
           "redact", "LOG_FORMATS", "REGISTRATION_KINDS"]

REQUEST_ID: ContextVar[str | None] = ContextVar("lwm2m_request_id", default=None)
LOG_FORMATS = ("text", "json")
REGISTRATION_KINDS = ("registered", "updated", "deregistered", "expired")
_SECRET = re.compile(r"(token|secret|key|password|psk|authorization)", re.IGNORECASE)
# A caller's request id is echoed and logged: keep it short and printable.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

events_log = logging.getLogger("lwm2m_server.events")
access_log = logging.getLogger("lwm2m_server.access")


def redact(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without fields whose names look like secrets (token, key, psk, password...)."""
    return {k: v for k, v in data.items() if not _SECRET.search(k)}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid:
            line = f"{line} [request {rid}]"
        worker = getattr(record, "worker", None)
        return line if worker is None else f"{line} [worker {worker}]"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        worker = getattr(record, "worker", None)
        if worker is not None:
            out["worker"] = worker
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # never over the record's own keys
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def tag_worker(index: int) -> None:
    """Give every later log record of this process ``worker`` = ``index`` (``run --workers N``:
    1..N), printed by both formats so that interleaved lines can be told apart."""
    make = logging.getLogRecordFactory()
    if getattr(make, "_lwm2m_worker", None) is not None:
        make = make._lwm2m_inner  # type: ignore[attr-defined]

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.worker = index
        return record

    factory._lwm2m_worker = index  # type: ignore[attr-defined]
    factory._lwm2m_inner = make  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """One handler on the root logger (stderr) with the chosen format; uvicorn's loggers
    propagate to it. Safe to call again (the handler is replaced)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_lwm2m", False)]:
        root.removeHandler(old)
    handler._lwm2m = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True


def _event_message(kind: str, endpoint: str | None, data: dict[str, Any]) -> str | None:
    """The line for an event worth a line at info level, else None."""
    if kind in REGISTRATION_KINDS:
        return (f"{kind} {endpoint} (registration {data.get('registration_id')}, "
                f"from {data.get('address')}, lifetime {data.get('lifetime')} s, "
                f"binding {data.get('binding')})")
    if kind == "deployment":
        reason = f": {data['reason']}" if data.get("reason") else ""
        return (f"deployment {data.get('deployment_id')} {data.get('state')}, stage "
                f"{int(data.get('current_stage') or 0) + 1}{reason}")
    if kind == "deployment_target":
        reason = f": {data['reason']}" if data.get("reason") else ""
        step = f", step {data['step']}" if data.get("step") else ""
        result = f", result {data['result']}" if data.get("result") is not None else ""
        return (f"deployment {data.get('deployment_id')} target {endpoint} "
                f"{data.get('previous') or 'new'} -> {data.get('state')} (attempt "
                f"{data.get('attempt')}{step}{result}){reason}")
    return None


def log_event(event: Any) -> None:
    """Event-bus sink: one info line for each registration event and rollout transition."""
    data = event.data
    if event.kind == "deployment_target" and data.get("previous") == data.get("state"):
        level = logging.DEBUG  # progress or a step within the same state: not a transition
    elif data.get("state") == "failed":
        level = logging.WARNING
    else:
        level = logging.INFO
    if not events_log.isEnabledFor(level):  # cheap first: every event passes through here
        return
    message = _event_message(event.kind, event.endpoint, data)
    if message is not None:
        fields = {"event": event.kind, "endpoint": event.endpoint, **redact(dict(data))}
        events_log.log(level, message, extra={"fields": fields})


class RequestIdMiddleware:
    """ASGI middleware: the request id for each HTTP request (and the access log line)."""

    def __init__(self, app: Any, *, access: bool = False) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                      if k == b"x-request-id"), None)
        rid = given if given is not None and _VALID_ID.fullmatch(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access and access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                ms = (time.perf_counter() - started) * 1000
                # The path only: a query string is the caller's to keep out of logs.
                access_log.info('%s "%s %s" %s %.1f ms', client[0], scope["method"], scope["path"],
                                status or 500, ms,
                                extra={"fields": {"client": client[0], "method": scope["method"],
                                                  "path": scope["path"], "status": status or 500,
                                                  "duration_ms": round(ms, 1)}})
            REQUEST_ID.reset(token)
