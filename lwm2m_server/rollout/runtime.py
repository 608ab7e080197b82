"""Wires the rollout service into a running process: /fw on CoAP and HTTP, the engine, webhooks.

``RolloutService(server, settings, http_port=...)`` builds the pieces; ``start()`` mounts CoAP
``/fw`` and starts the reconciler (every unfinished deployment resumes) and the webhook
dispatcher; ``stop()`` ends them. ``lwm2m_server.api.fw.install_rollout`` does all of it for
an HTTP app (and adds HTTP ``/fw``); the runner calls that.

On PostgreSQL the artifact folder fetches files it lacks from the database (``store.blobs``), so
every process of a cluster serves and pushes every artifact; ``start()`` first copies into the
database the files of artifacts recorded before that (``share_stored_artifacts``). On the
``artifact_deleted`` event (``rollout.service.delete_artifact``, from this process or another)
each process stops serving the file and removes its copy; ``start()`` removes the files of
artifacts deleted while the process was not running (``remove_unrecorded_files``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ota.store import ArtifactStore

from ..coap.fw import DownloadTracker, FwResource
from ..events import Event
from ..store.artifacts import (get_artifact_by_sha256, remove_unrecorded_files,
                               share_stored_artifacts)
from ..store.blobs import blob_fetcher
from .engine import RolloutEngine
from .port import ServerDevicePort
from .service import ARTIFACT_DELETED
from .webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from ..config import Settings
    from ..server import LwM2MServer

__all__ = ["RolloutService", "fw_base_urls"]

log = logging.getLogger(__name__)

_WILDCARDS = ("", "::", "0.0.0.0", "[::]")


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def fw_base_urls(settings: Settings, coap_port: int, http_port: int | None) -> tuple[str, str | None]:
    """(CoAP base, HTTP base) that devices use for ``/fw/<sha256>`` links.

    ``public_base_url`` (LWM2M_PUBLIC_BASE_URL) names the host devices reach; the other scheme
    uses the same host with its own port. Without it the bind address is used, and a wildcard
    bind falls back to 127.0.0.1 (set public_base_url for real devices).
    """
    public = settings.public_base_url
    if public:
        parts = urlsplit(public)
        host = parts.hostname or "127.0.0.1"
        h = _host_for_url(host)
        if parts.scheme.startswith("coap"):
            coap = public
            http = f"http://{h}:{http_port}" if http_port else None
        else:
            http = public
            coap = urlunsplit(("coap", f"{h}:{coap_port}", "", "", ""))
        return coap, http
    host = settings.coap_host
    if host in _WILDCARDS:
        log.warning("no public_base_url set: /fw links use 127.0.0.1 (set LWM2M_PUBLIC_BASE_URL "
                    "to an address devices can reach)")
        host = "127.0.0.1"
    http_host = settings.http_host if settings.http_host not in _WILDCARDS else host
    return (f"coap://{_host_for_url(host)}:{coap_port}",
            f"http://{_host_for_url(http_host)}:{http_port}" if http_port else None)


def coaps_base_url(coap_base: str, coaps_port: int | None) -> str | None:
    """The coaps twin of the CoAP base (same host, the DTLS port); None when DTLS is off."""
    if coaps_port is None:
        return None
    parts = urlsplit(coap_base)
    host = _host_for_url(parts.hostname or "127.0.0.1")
    return urlunsplit(("coaps", f"{host}:{coaps_port}", parts.path, "", ""))


class RolloutService:
    """The rollout pieces of one server process."""

    def __init__(self, server: LwM2MServer, settings: Settings, *, http_port: int | None = None,
                 artifacts: ArtifactStore | None = None, poll: float = 1.0, tick: float = 1.0,
                 backoff_base: float = 2.0, device_timeout: float | None = None,
                 webhooks: bool = True, **engine_options: Any) -> None:
        self.server = server
        self.settings = settings
        self.artifacts = artifacts or ArtifactStore(settings.artifacts_dir,
                                                    fetch=blob_fetcher(server.engine))
        self.tracker = DownloadTracker()
        self.fw = FwResource(self.artifacts.path, tracker=self.tracker,
                             fetch=self.artifacts.ensure if self.artifacts.fetch else None)
        self.port = ServerDevicePort(server, timeout=device_timeout)
        self.http_port = http_port
        self.engine: RolloutEngine | None = None
        self.webhooks = WebhookDispatcher(server.engine, server.events,
                                          allow_private=settings.webhook_allow_private) \
            if webhooks else None
        self._engine_options = dict(poll=poll, tick=tick, backoff_base=backoff_base,
                                    **engine_options)
        self._removals: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        await asyncio.to_thread(share_stored_artifacts, self.server.engine, self.artifacts)
        await asyncio.to_thread(remove_unrecorded_files, self.server.engine, self.artifacts)
        self.server.mount_coap("fw", self.fw)
        coap_port = int(self.server.coap_port or self.settings.coap_port)
        coap_base, http_base = fw_base_urls(self.settings, coap_port, self.http_port)
        self.engine = RolloutEngine(
            self.server.engine, self.port, read_artifact=self.artifacts.read_bytes,
            events=self.server.events, coap_base_url=coap_base, http_base_url=http_base,
            progress=self.tracker.fraction,
            coaps_base_url=coaps_base_url(coap_base, self.server.coaps_port),
            secure_endpoint=self._secure, **self._engine_options)
        self.server.events.watch(ARTIFACT_DELETED, self._artifact_deleted)
        self.port.waiter.start()
        await self.engine.start()
        if self.webhooks is not None:
            await self.webhooks.start()

    def _artifact_deleted(self, event: Event) -> None:
        sha, artifact_id = event.data.get("sha256"), event.data.get("artifact_id")
        if not isinstance(sha, str):
            return
        self.fw.forget(sha)
        if self.engine is not None and isinstance(artifact_id, int):
            self.engine.forget_artifact(artifact_id)
        removal = asyncio.ensure_future(asyncio.to_thread(self._remove_file, sha))
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)

    async def drain_removals(self) -> None:
        """Wait until the files of deleted artifacts seen so far are removed."""
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)

    def _remove_file(self, sha256: str) -> None:
        # Gone already where the delete was asked for. The same bytes may have been uploaded
        # again since: their file stays. (The folder's path() refuses a non-SHA-256 name.)
        if self.artifacts.exists(sha256) and get_artifact_by_sha256(self.server.engine,
                                                                    sha256) is None:
            self.artifacts.delete(sha256)

    def _secure(self, endpoint: str) -> bool:
        reg = self.server.registrations.get(endpoint)
        return reg is not None and getattr(reg, "security", "none") != "none"

    def wake(self) -> None:
        """Reconcile now (a deployment was created or changed through the API)."""
        if self.engine is not None:
            self.engine.wake()

    async def stop(self) -> None:
        self.server.events.unwatch(ARTIFACT_DELETED, self._artifact_deleted)
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.engine is not None:
            await self.engine.stop()
        await self.port.waiter.stop()
        await self.drain_removals()
        self.fw.close()
