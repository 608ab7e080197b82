"""Webhooks for rollout events: registered URLs get each ``deployment_target`` and ``deployment``
event as a signed JSON POST, retried with backoff.

Signature: header ``X-LwM2M-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body bytes
under the webhook's secret (receivers compare it in constant time with ``verify_signature``).
``X-LwM2M-Event`` names the event kind and ``X-LwM2M-Delivery`` the event id, so receivers can
drop duplicates when a retry crosses a slow answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..events import Event, EventBus
from ..tasks import cancel_and_wait
from .errors import InvalidDeployment, WebhookNotFound
from .tables import Webhook

__all__ = ["WebhookDispatcher", "sign", "verify_signature", "create_webhook", "list_webhooks",
           "delete_webhook", "SIGNATURE_HEADER", "event_body", "WEBHOOK_KINDS", "public_url",
           "check_target", "internal_address", "pinned"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-LwM2M-Signature"
WEBHOOK_KINDS = ("deployment_target", "deployment")


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def event_body(event: Event) -> bytes:
    """The JSON body a webhook receives for ``event``."""
    return json.dumps({"id": event.id, "kind": event.kind, "endpoint": event.endpoint,
                       "time": event.time.isoformat(), "data": event.data},
                      separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")


def public_url(url: str) -> str:
    """``url`` without its ``user:password@`` part (``***@`` instead): what the API shows back."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


# Shared address space (RFC 6598, carrier-grade NAT): not "private" to Python 3.11's ipaddress.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def internal_address(ip: str) -> bool:
    """True for loopback, private, link-local, unspecified, multicast and reserved addresses."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (not addr.is_global or addr.is_multicast or addr.is_unspecified
            or (isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED))


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InvalidDeployment(f"webhook host {host!r} does not resolve: {e}") from None
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str, allow_private: bool) -> list[str]:
    """The addresses a webhook URL's host resolves to; InvalidDeployment when it is or resolves
    to an internal address.

    Every address the name resolves to counts (the resolver accepts ``127.1``, ``2130706433``,
    ``0x7f.1``, ...), so a name with one internal address among public ones is refused too.
    ``allow_private`` (``LWM2M_WEBHOOK_ALLOW_PRIVATE``) lets an operator use an in-house receiver:
    nothing is resolved then (an empty list).
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise InvalidDeployment(f"webhook url has no host: {public_url(url)!r}")
    if allow_private:
        return []
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidDeployment(f"webhook url has a bad port: {public_url(url)!r}") from None
    addresses = _resolve(host, port)
    internal = [ip for ip in addresses if internal_address(ip)]
    if internal:
        raise InvalidDeployment(
            f"webhook host {host!r} is an internal address ({', '.join(internal)}): loopback, "
            "private, link-local and unspecified targets are refused unless the operator sets "
            "LWM2M_WEBHOOK_ALLOW_PRIVATE=true")
    return addresses


def pinned(url: str, addresses: list[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL, extra headers, request extensions) that reach ``url``'s host at one of the
    ``addresses`` checked for it: the host name becomes that address (IPv4 first), the Host
    header and, for https, the TLS server name (SNI, and the certificate's check) stay the
    name. A name that resolves elsewhere between the check and the connection (DNS rebinding)
    then changes nothing. An address literal, or no address, leaves ``url`` as it is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return url, {}, {}
    except ValueError:
        pass
    if not addresses:
        return url, {}, {}
    ip = min(addresses, key=lambda a: (":" in a, a)).split("%", 1)[0]
    userinfo, _, hostport = parts.netloc.rpartition("@")
    literal = f"[{ip}]" if ":" in ip else ip
    netloc = (f"{userinfo}@" if userinfo else "") + literal + (
        f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": hostport}, extensions


def create_webhook(engine: Engine, url: str, secret: str | None = None,
                   kinds: list[str] | None = None, *, allow_private: bool = False
                   ) -> tuple[Webhook, str]:
    """Register ``url``; returns the row and the secret (generated when not given)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise InvalidDeployment(f"webhook url must be an absolute http(s) URL, got "
                                f"{public_url(url)!r}")
    check_target(url, allow_private)
    kinds = list(kinds) if kinds else list(WEBHOOK_KINDS)
    unknown = [k for k in kinds if k not in WEBHOOK_KINDS]
    if unknown:
        raise InvalidDeployment(f"unknown event kinds {unknown}: use {list(WEBHOOK_KINDS)}")
    if secret is not None and not 16 <= len(secret) <= 200:
        raise InvalidDeployment("webhook secret must be 16..200 characters (or leave it out)")
    secret = secret or secrets.token_urlsafe(32)
    with Session(engine, expire_on_commit=False) as s:
        row = Webhook(url=url, secret=secret, kinds=kinds)
        s.add(row)
        s.commit()
        s.refresh(row)
    return row, secret


def list_webhooks(engine: Engine) -> list[Webhook]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.exec(select(Webhook).order_by(col(Webhook.id))).all())


def delete_webhook(engine: Engine, webhook_id: int) -> None:
    with Session(engine) as s:
        row = s.get(Webhook, webhook_id)
        if row is None:
            raise WebhookNotFound(f"webhook {webhook_id} does not exist")
        s.delete(row)
        s.commit()


class WebhookDispatcher:
    """Subscribes to the event bus and delivers rollout events to every active webhook.

    Per webhook one worker with a bounded queue (oldest dropped when a receiver is down for
    long); each delivery is tried ``attempts`` times with exponential backoff.
    """

    def __init__(self, db: Engine, events: EventBus, *, attempts: int = 5,
                 backoff: float = 0.5, timeout: float = 5.0, queue_size: int = 10_000,
                 refresh: float = 2.0, allow_private: bool = False) -> None:
        self.db = db
        self.allow_private = allow_private
        self.events = events
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.queue_size = queue_size
        self.refresh = refresh
        self._hooks: list[Webhook] = []
        self._loaded_at = 0.0
        self._queues: dict[int, asyncio.Queue[Event]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._tasks.append(asyncio.create_task(self._pump(), name="webhook-pump"))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        self._queues.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _active_hooks(self) -> list[Webhook]:
        now = time.monotonic()
        if now - self._loaded_at > self.refresh:
            self._hooks = [h for h in list_webhooks(self.db) if h.active]
            self._loaded_at = now
        return self._hooks

    async def _pump(self) -> None:
        async for event in self.events.subscribe(local_only=True):  # once per cluster
            if event.kind not in WEBHOOK_KINDS:
                continue
            for hook in self._active_hooks():
                if event.kind not in hook.kinds:
                    continue
                q = self._queues.get(int(hook.id))  # type: ignore[arg-type]
                if q is None:
                    q = asyncio.Queue(self.queue_size)
                    self._queues[int(hook.id)] = q  # type: ignore[arg-type]
                    self._tasks.append(asyncio.create_task(self._worker(hook, q)))
                if q.full():
                    q.get_nowait()
                q.put_nowait(event)

    async def _worker(self, hook: Webhook, q: asyncio.Queue[Event]) -> None:
        while True:
            event = await q.get()
            await self.deliver(hook, event)

    async def deliver(self, hook: Webhook, event: Event) -> bool:
        """POST ``event`` to ``hook`` with retries; True once a 2xx answer came back."""
        assert self._client is not None
        body = event_body(event)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body),
                   "X-LwM2M-Event": event.kind, "X-LwM2M-Delivery": event.id}
        for attempt in range(self.attempts):
            try:
                # Again at delivery: the name may resolve elsewhere now than when it was
                # created; the connection goes to an address checked here (pinned).
                addresses = await asyncio.to_thread(check_target, hook.url, self.allow_private)
            except InvalidDeployment as e:
                log.warning("webhook %s: not delivered: %s", public_url(hook.url), e)
                break
            url, host, extensions = pinned(hook.url, addresses)
            try:
                r = await self._client.post(url, content=body, headers={**headers, **host},
                                            extensions=extensions)
                if 200 <= r.status_code < 300:
                    self.delivered += 1
                    return True
                log.info("webhook %s answered %s", public_url(hook.url), r.status_code)
            except httpx.HTTPError as e:
                log.info("webhook %s failed: %s", public_url(hook.url), e)
            await asyncio.sleep(self.backoff * (2 ** attempt))
        self.failed += 1
        log.warning("webhook %s: gave up on event %s after %d attempts", public_url(hook.url), event.id,
                    self.attempts)
        return False

    def receivers(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed}
