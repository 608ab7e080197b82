"""A server with only its CoAP ``/fw`` resource mounted, serving one artifact, for tests of
block downloads."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiocoap import Message

from lwm2m_server.coap.fw import DownloadTracker, FwResource
from lwm2m_server.config import Settings
from lwm2m_server.server import LwM2MServer
from ota.store import ArtifactStore

__all__ = ["CountingFw", "serving_fw"]


class CountingFw(FwResource):
    """The real /fw resource, counting the requests that reach aiocoap's path (``render``)."""

    rendered = 0

    async def render(self, request: Message) -> Message:
        self.rendered += 1
        return await super().render(request)


@contextlib.asynccontextmanager
async def serving_fw(folder: Path, data: bytes) -> AsyncIterator[tuple[LwM2MServer, CountingFw, str]]:
    """A started server (SQLite in ``folder``) whose /fw serves ``data``, with a download
    tracker: (server, the resource, the artifact's SHA-256)."""
    store = ArtifactStore(folder / "artifacts")
    sha = store.put(data).sha256
    server = LwM2MServer(Settings(coap_host="127.0.0.1", coap_port=0,
                                  db_url=f"sqlite:///{folder / 'db.sqlite'}"))
    resource = CountingFw(store.path, tracker=DownloadTracker())
    server.mount_coap("fw", resource)
    await server.start()
    try:
        yield server, resource, sha
    finally:
        await server.stop()
