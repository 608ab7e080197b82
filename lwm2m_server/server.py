"""The LwM2M server core: one aiocoap context, the registrations, the device manager, the store.

``LwM2MServer(settings)`` is what ``lwm2m-server run`` and the tests start; the HTTP side calls
``server.registrations`` and ``server.devices`` (see the README section "Server core").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Engine

from .config import Settings
from .events import EventBus
from .model import ObjectRegistry
from .protocol.devices import DeviceManager
from .protocol.registration import RegistrationManager
from .store.repository import Store
from .store.retention import Housekeeping, RetentionPolicy

__all__ = ["LwM2MServer"]

log = logging.getLogger(__name__)


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
        self.store: Store = store if store is not None else SqlStore(self.engine)
        self.events.add_sink(self.store.add_event)
        self.registrations = RegistrationManager(self.store, self.events,
                                                 max_payload=settings.max_payload)
        self.devices = DeviceManager(self.registrations, self.store, self.events, self.registry,
                                     request_timeout=settings.request_timeout,
                                     queue_timeout=settings.queue_timeout,
                                     awake_window=awake_window,
                                     read_on_register=settings.read_on_register)
        self.retention = Housekeeping(self.store, self.registrations.purge_offline,
                                      RetentionPolicy.from_settings(settings))
        self._expiry_interval = expiry_interval
        self._endpoint: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.coap_port: int | None = None
        self._coap_mounts: dict[str, Any] = {}

    def mount_coap(self, segment: str, resource: Any) -> None:
        """Serve ``resource`` (an aiocoap Resource) under ``/<segment>/...`` (e.g. "fw")."""
        self._coap_mounts[segment] = resource
        if self._endpoint is not None:
            self._endpoint.site.mounts[segment] = resource

    async def start(self) -> None:
        """Restore registrations and queued requests, bind CoAP, start the lifetime-expiry task."""
        from .coap.endpoint import CoapEndpoint

        await self.store.start()
        try:
            await self.registrations.restore()
            await self.devices.restore()
            self._endpoint = CoapEndpoint(self.registrations, self.devices, self.settings.max_payload,
                                          self.settings.max_datagram)
            self._endpoint.site.mounts.update(self._coap_mounts)
            self.coap_port = await self._endpoint.start(self.settings.coap_host, self.settings.coap_port)
        except BaseException:  # a busy port or an unreachable database: leave nothing running
            self._endpoint = None
            await self.store.stop()
            raise
        self.devices.transport = self._endpoint.transport
        self.devices.resume()  # re-observe what was observed before the restart
        self._tasks.append(asyncio.create_task(self.registrations.run_expiry(self._expiry_interval)))
        self._tasks.append(asyncio.create_task(self.devices.run_housekeeping(self._expiry_interval)))
        self._tasks.append(asyncio.create_task(self.retention.run()))
        log.info("CoAP listening on %s port %s", self.settings.coap_host, self.coap_port)

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
        if self._endpoint is not None:
            await self._endpoint.stop()
            self._endpoint = None
        await self.store.stop()

    async def __aenter__(self) -> LwM2MServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
