"""``/api/v1/devices/{endpoint}/credentials``: a device's PSK credentials (``admin`` scope).

PUT stores (or replaces) them, GET lists what is stored and never returns key material, DELETE
removes them. ``"generate": true`` makes a random 128-bit key and returns it once, in that
PUT's response. Keys are sealed with the server secret (docs/security.md).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ..security.keybox import SecretError
from ..store.credentials import CredentialError, CredentialStore, parse_hex_key
from .deps import require_scope
from .errors import BadRequest, NotFound, Unavailable

__all__ = ["CredentialsDep", "credential_store", "router"]

router = APIRouter(tags=["credentials"], dependencies=[Depends(require_scope("admin"))])


async def credential_store(request: Request) -> CredentialStore:
    """The server's credential store, or one over the app's database (no server running)."""
    server = request.app.state.server
    if server is not None:
        return server.credentials  # type: ignore[no-any-return]
    engine = request.app.state.engine
    if engine is None:
        raise Unavailable("no database is configured")
    from ..security.keybox import keybox_from_settings

    settings = request.app.state.settings
    return CredentialStore(engine, lambda: keybox_from_settings(settings))


CredentialsDep = Annotated[CredentialStore, Depends(credential_store)]


class CredentialsPut(BaseModel):
    psk_identity: str | None = Field(None, description="PSK identity (default: the endpoint name)")
    psk_key: str | None = Field(None, description="the key in hex (16..64 bytes)")
    generate: bool = Field(False, description="make a random 128-bit key and return it once")
    purpose: Literal["dm", "bootstrap"] = "dm"


@router.put("/devices/{endpoint}/credentials", summary="Store a device's PSK (key shown once if generated)")
def put_credentials(endpoint: str, body: CredentialsPut, store: CredentialsDep) -> dict[str, Any]:
    if body.generate == (body.psk_key is not None):
        raise BadRequest("give psk_key (hex) or \"generate\": true, not both or neither")
    try:
        key = secrets.token_bytes(16) if body.generate else parse_hex_key(body.psk_key or "")
        summary = store.put(endpoint, body.psk_identity or endpoint, key, body.purpose)
    except CredentialError as e:
        raise BadRequest(str(e)) from None
    except SecretError as e:
        raise Unavailable(str(e)) from None
    return {**summary, "psk_key": key.hex()} if body.generate else summary


@router.get("/devices/{endpoint}/credentials", summary="A device's stored credentials (never keys)")
def get_credentials(endpoint: str, store: CredentialsDep) -> dict[str, Any]:
    found = store.summaries(endpoint)
    if not found:
        raise NotFound(f"endpoint {endpoint!r} has no credentials")
    return {"endpoint": endpoint, "credentials": found}


@router.delete("/devices/{endpoint}/credentials", summary="Remove a device's credentials")
def delete_credentials(endpoint: str, store: CredentialsDep,
                       purpose: Literal["dm", "bootstrap"] | None = None) -> dict[str, Any]:
    n = store.delete(endpoint, purpose)
    if n == 0:
        raise NotFound(f"endpoint {endpoint!r} has no credentials" + (f" for {purpose}" if purpose else ""))
    return {"endpoint": endpoint, "deleted": n}
