"""``/api/v1/bootstrap``: what the bootstrap server gives devices (``admin`` scope).

``/bootstrap/template`` is the default for every endpoint without its own configuration;
``/bootstrap/endpoints/{endpoint}`` is one endpoint's. Responses never carry key material.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from ..protocol.bootstrap import BootstrapError, config_from_json
from ..store.credentials import DEFAULT_TEMPLATE, CredentialError
from .credentials import CredentialsDep
from .deps import require_scope
from .errors import BadRequest, NotFound

__all__ = ["router"]

router = APIRouter(prefix="/bootstrap", tags=["bootstrap"],
                   dependencies=[Depends(require_scope("admin"))])

_EXAMPLE = {"security_mode": "psk", "server_uri": "coaps://lwm2m.example.net:5684",
            "short_server_id": 1, "lifetime": 300, "binding": "U"}
ConfigBody = Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return config_from_json(data).public_json()


def _put(name: str, body: dict[str, Any], store: Any) -> dict[str, Any]:
    try:
        cfg = config_from_json(body)
        store.set_bootstrap(name, cfg.to_json())
    except (BootstrapError, CredentialError) as e:
        raise BadRequest(str(e)) from None
    return cfg.public_json()


def _get(name: str, store: Any) -> dict[str, Any]:
    data = store.get_bootstrap(name)
    if data is None:
        raise NotFound("no bootstrap template" if name == DEFAULT_TEMPLATE
                       else f"no bootstrap configuration for endpoint {name!r}")
    return _public(data)


def _delete(name: str, store: Any) -> dict[str, Any]:
    if not store.delete_bootstrap(name):
        _get(name, store)  # raises the 404
    return {"deleted": True}


@router.get("", summary="Every bootstrap configuration (template and endpoints)")
def list_bootstrap(store: CredentialsDep) -> dict[str, Any]:
    all_ = store.list_bootstrap()
    return {"template": _public(all_[DEFAULT_TEMPLATE]) if DEFAULT_TEMPLATE in all_ else None,
            "endpoints": {k: _public(v) for k, v in sorted(all_.items()) if k != DEFAULT_TEMPLATE}}


@router.put("/template", summary="Set the default bootstrap configuration")
def put_template(store: CredentialsDep, body: ConfigBody) -> dict[str, Any]:
    return _put(DEFAULT_TEMPLATE, body, store)


@router.get("/template", summary="The default bootstrap configuration")
def get_template(store: CredentialsDep) -> dict[str, Any]:
    return _get(DEFAULT_TEMPLATE, store)


@router.delete("/template", summary="Remove the default bootstrap configuration")
def delete_template(store: CredentialsDep) -> dict[str, Any]:
    return _delete(DEFAULT_TEMPLATE, store)


@router.put("/endpoints/{endpoint}", summary="Set one endpoint's bootstrap configuration")
def put_endpoint(endpoint: str, store: CredentialsDep, body: ConfigBody) -> dict[str, Any]:
    if endpoint == DEFAULT_TEMPLATE:
        raise BadRequest("'*' is the template: use /bootstrap/template")
    return _put(endpoint, body, store)


@router.get("/endpoints/{endpoint}", summary="One endpoint's bootstrap configuration")
def get_endpoint(endpoint: str, store: CredentialsDep) -> dict[str, Any]:
    return _get(endpoint, store)


@router.delete("/endpoints/{endpoint}", summary="Remove one endpoint's bootstrap configuration")
def delete_endpoint(endpoint: str, store: CredentialsDep) -> dict[str, Any]:
    return _delete(endpoint, store)
