"""The LwM2M server core: one aiocoap context, the registrations, the device manager, the store.

``LwM2MServer(settings)`` is what ``lwm2m-server run`` and the tests start; the HTTP side calls
``server.registrations`` and ``server.devices`` (see the README section "Server core").
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from sqlalchemy.engine import Engine

from .config import Settings, SettingsError
from .events import EventBus
from .model import ObjectRegistry
from .protocol.devices import DeviceManager
from .protocol.registration import RegistrationManager
from .protocol.security import SecurityPolicy
from .security.keybox import keybox_from_settings
from .store.credentials import CredentialStore
from .store.repository import Store
from .store.retention import Housekeeping, RetentionPolicy

__all__ = ["LwM2MServer"]

log = logging.getLogger(__name__)


def _dtls_available(security: str) -> bool:
    """Whether coaps can be served: DTLSSocket (tinydtls) is the optional ``[dtls]`` extra. Without
    it plain CoAP still runs, unless ``security`` is "required"."""
    import importlib.util

    if importlib.util.find_spec("DTLSSocket") is not None:
        return True
    if security == "required":
        raise SettingsError("--security required needs CoAP over DTLS, and DTLSSocket is not "
                           "installed: python3 -m pip install -e '.[dtls]' (docs/security.md)")
    log.warning("coaps is off: DTLSSocket is not installed (python3 -m pip install -e '.[dtls]'; "
                "docs/security.md); devices with credentials cannot connect")
    return False


class LwM2MServer:
    """CoAP endpoint + registration interface + device management + persistence, in one loop.

    Attributes after construction: ``settings``, ``registry`` (ObjectRegistry), ``engine``
    (SQLAlchemy engine), ``events`` (EventBus), ``registrations`` (RegistrationManager:
    ``list()``, ``get(endpoint)``), ``devices`` (DeviceManager: ``send``, ``get_request``,
    ``latest``). ``coap_port`` is the bound UDP port once started (useful with port 0).
    """

    def __init__(self, settings: Settings, engine: Engine | None = None,
                 registry: ObjectRegistry | None = None, *, expiry_interval: float = 1.0,
                 awake_window: float = 93.0, store: Store | None = None) -> None:
        """``store`` replaces the SQLModel store (e.g. ``MemoryStore()``: nothing persists; the
        engine is still made for the other services)."""
        from .store.db import init_db, make_engine
        from .store.repository import SqlStore

        self.settings = settings
        self.registry = registry if registry is not None else ObjectRegistry.from_dirs(
            *settings.objects_dirs)
        self.engine = engine if engine is not None else make_engine(settings.db_url)
        init_db(self.engine)
        self.events = EventBus()
        # On PostgreSQL every process is a node of a cluster (cluster/): several processes, on
        # one host or several, serve one fleet. SQLite (or a store given here) is one process.
        self.cluster: Any = None
        if store is None and self.engine.dialect.name == "postgresql":
            from .cluster.node import Cluster

            self.cluster = Cluster(self.engine, request_timeout=settings.request_timeout)
        self.store: Store = store if store is not None else SqlStore(self.engine)
        if self.cluster is not None:
            self.store = self.cluster.wrap(self.store)
        self.events.add_sink(self.store.add_event)
        self.credentials = CredentialStore(self.engine, functools.partial(keybox_from_settings, settings))
        self.registrations = RegistrationManager(
            self.store, self.events, max_payload=settings.max_payload,
            policy=SecurityPolicy(required=settings.security == "required",
                                  has_credentials=self.credentials.has_credentials_async))
        self.devices = DeviceManager(self.registrations, self.store, self.events, self.registry,
                                     request_timeout=settings.request_timeout,
                                     queue_timeout=settings.queue_timeout,
                                     awake_window=awake_window,
                                     read_on_register=settings.read_on_register)
        if self.cluster is not None:
            self.cluster.attach(self)
        self.retention = Housekeeping(self.store, self.registrations.purge_offline,
                                      RetentionPolicy.from_settings(settings))
        self._expiry_interval = expiry_interval
        self._endpoint: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.coap_port: int | None = None
        self.coaps_port: int | None = None  # the bound DTLS port, None when DTLS is off
        self.coaps_bootstrap_port: int | None = None  # the bootstrap-only DTLS port, if any
        self.bootstrap: Any = None  # coap/bootstrap.py's BootstrapServer once started
        self._coap_mounts: dict[str, Any] = {}

    def mount_coap(self, segment: str, resource: Any) -> None:
        """Serve ``resource`` (an aiocoap Resource) under ``/<segment>/...`` (e.g. "fw")."""
        self._coap_mounts[segment] = resource
        if self._endpoint is not None:
            self._endpoint.site.mounts[segment] = resource

    async def start(self) -> None:
        """Restore registrations and queued requests, bind CoAP, start the lifetime-expiry task."""
        from .coap.endpoint import CoapEndpoint

        self.events.bind(asyncio.get_running_loop())
        await self.store.start()
        try:
            if self.cluster is not None:
                await self.cluster.start()  # listening before loading: no change is missed
            await self.registrations.restore()
            await self.devices.restore()
            if self.cluster is not None:
                self.cluster.ready()
            self._check_secret()
            dtls = self.settings.coaps and _dtls_available(self.settings.security)
            self._endpoint = CoapEndpoint(self.registrations, self.devices, self.settings.max_payload,
                                          self.settings.max_datagram)
            self._endpoint.site.mounts.update(self._coap_mounts)
            self.coap_port = await self._endpoint.start(
                self.settings.coap_host, self.settings.coap_port,
                coaps_port=self.settings.coaps_bind_port if dtls else None,
                resolve_psk=self._resolve_psk, max_dtls_sessions=self.settings.max_dtls_sessions,
                coaps_bootstrap_port=self.settings.coaps_bootstrap_port if dtls else None,
                reuse_port=self.settings.shares_ports)
            self.coaps_port = self._endpoint.bound_coaps_port()
            self.coaps_bootstrap_port = self._endpoint.bound_coaps_bootstrap_port()
        except BaseException:  # a busy port or an unreachable database: leave nothing running
            self._endpoint = None
            if self.cluster is not None:
                await self.cluster.stop()
            await self.store.stop()
            raise
        self.devices.transport = self._endpoint.transport
        from .coap.bootstrap import BootstrapServer

        self.bootstrap = BootstrapServer(self._endpoint.transport, self.credentials, self.events,
                                         self.settings, coaps_port=self.coaps_port,
                                         timeout=self.settings.request_timeout)
        self.bootstrap.coap_port = self.coap_port
        self._endpoint.site.bootstrap = self.bootstrap
        self.devices.resume()  # re-observe what was observed before the restart
        self._tasks.append(asyncio.create_task(self.registrations.run_expiry(self._expiry_interval)))
        self._tasks.append(asyncio.create_task(self.devices.run_housekeeping(self._expiry_interval)))
        self._tasks.append(asyncio.create_task(self.retention.run()))
        log.info("CoAP listening on %s port %s", self.settings.coap_host, self.coap_port)
        if self.coaps_port is not None:
            log.info("CoAP over DTLS (coaps) listening on %s port %s", self.settings.coap_host,
                     self.coaps_port)
        if self.coaps_bootstrap_port is not None:
            log.info("coaps bootstrap-only port %s", self.coaps_bootstrap_port)
        if self.settings.security == "optional":
            log.warning("security 'optional': plain CoAP is open to endpoints without credentials "
                        "(anyone can register under such a name); use --security required to "
                        "accept DTLS only")

    def _check_secret(self) -> None:
        """Refuse to start when stored keys exist but cannot be opened (no or another secret)."""
        if self.credentials.count() == 0:
            return
        self.credentials.keybox()  # SecretError when the secret is missing outside development

    def _resolve_psk(self, identity: bytes) -> tuple[bytes, Any] | None:
        cred = self.credentials.by_identity(identity.decode("utf-8", "replace"))
        return (cred.key, cred) if cred is not None else None

    async def stop(self) -> None:
        """Stop the background tasks, close the CoAP context, flush the store."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        await self.devices.close()
        if self.bootstrap is not None:
            await self.bootstrap.close()
        if self._endpoint is not None:
            await self._endpoint.stop()
            self._endpoint = None
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.stop()

    async def __aenter__(self) -> LwM2MServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
