"""The OpenAPI document at /openapi.json, in agreement with what the API answers.

FastAPI documents only its own 422 validation error, which this API never sends in that shape
(api/errors.py turns validation errors into 400 with the API's error body). ``install_openapi``
builds the document once and then, per operation:

- documents every error it can answer with the one error body (``Error``) and an example each:
  400, 401, 403, 503 everywhere under /api/; 413 with a request body; 404 with a path parameter;
  202 (queued), 409, 502 and 504 for operations that talk to a device; 409 and 422 for the
  rollout routes (deployments, webhooks, artifacts);
- replaces the untyped success bodies of the core routes by their schemas (``SUCCESS``).

tests/api/test_openapi_contract.py runs schemathesis against the document to keep it honest.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["install_openapi", "ErrorBody", "ERROR_EXAMPLES"]


class FieldError(BaseModel):
    loc: list[str]
    msg: str


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    model_config = ConfigDict(extra="allow", title="Error")

    detail: str = Field(description="what went wrong and what to do about it")
    error: str = Field(description="the kind, e.g. invalid_request, not_found, device_timeout")
    coap_code: str | None = Field(None, description="the device's CoAP answer, e.g. 4.04 (502)")
    errors: list[FieldError] | None = Field(None, description="the fields a 400 refused")


class QueuedBody(BaseModel):
    """202: the device sleeps (queue mode); poll the request."""

    model_config = ConfigDict(title="Queued")

    request_id: str
    state: str
    poll: str
    detail: str


class Device(BaseModel):
    model_config = ConfigDict(extra="allow", title="Device")

    endpoint: str
    registration_id: str
    lwm2m_version: str
    binding: str
    lifetime: int
    queue_mode: bool
    online: bool
    last_seen: str | None
    registered_at: str | None
    expires_at: str | None
    address: str | None
    sms: str | None
    objects: list[str]
    object_versions: dict[str, str]
    server_process: str | None = None


class DeviceResult(BaseModel):
    """What a device answered: values (Read, Observe), links (Discover), path (Create), code."""

    model_config = ConfigDict(extra="allow", title="DeviceResult")

    path: str | None = None
    values: dict[str, Any] | None = None
    links: list[dict[str, Any]] | None = None
    code: str | None = None
    observing: bool | None = None


class LatestValues(BaseModel):
    model_config = ConfigDict(title="LatestValues")

    endpoint: str
    values: dict[str, dict[str, Any]]


class Token(BaseModel):
    model_config = ConfigDict(extra="allow", title="Token")

    id: int | None
    name: str
    scopes: list[str]
    created_at: str | None
    last_used_at: str | None
    revoked: bool


class NewToken(Token):
    model_config = ConfigDict(extra="allow", title="NewToken")

    token: str = Field(description="shown once")


class QueuedRequest(BaseModel):
    model_config = ConfigDict(extra="allow", title="QueuedRequest")

    id: str
    endpoint: str
    state: str


class EventView(BaseModel):
    model_config = ConfigDict(extra="allow", title="Event")

    id: str
    kind: str
    time: str
    endpoint: str | None
    data: dict[str, Any]


class Webhook(BaseModel):
    model_config = ConfigDict(extra="allow", title="Webhook")

    id: int
    url: str = Field(description="without user:password@")
    kinds: list[str]
    active: bool


def _ex(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"value": {"detail": detail, "error": kind, **extra}}


ERROR_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Bad request: a parameter, path or body the API refuses",
          _ex("invalid_request", "query.offset: Input should be less than or equal to "
              "9223372036854775807", errors=[{"loc": ["query", "offset"],
                                              "msg": "Input should be less than or equal to "
                                                     "9223372036854775807"}])),
    401: ("No valid bearer token",
          _ex("unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'")),
    403: ("The token lacks the scope", _ex("forbidden", "token 'ci' lacks the 'write' scope",
                                           scope="write")),
    404: ("Not found", _ex("not_found", "no device registered with endpoint 'dev-1'")),
    409: ("Conflict: the device is offline, or the resource is in another state",
          _ex("device_offline", "device 'dev-1' is offline")),
    413: ("The request body is larger than the limit (LWM2M_MAX_JSON_BODY)",
          _ex("too_large", "request body exceeds the limit of 1048576 bytes "
                           "(LWM2M_MAX_JSON_BODY)")),
    422: ("The request is well-formed but cannot be carried out",
          _ex("invalid_deployment", "artifact 999 does not exist")),
    502: ("The device answered with an error or an undecodable payload",
          _ex("device_error", "device 'dev-1' answered 4.04 to read /3/0/99", coap_code="4.04")),
    503: ("The server part this needs is not running", _ex("unavailable",
                                                           "no database is configured")),
    504: ("The device did not answer in time, or the request could not be sent",
          _ex("device_timeout", "device 'dev-1' did not answer within 10 s")),
}

_DEVICE_OPS = ("/data/", "/execute/", "/create/", "/discover/", "/attributes/", "/observe/",
               "/composite/")
_ROLLOUT = ("/api/v1/deployments", "/api/v1/webhooks", "/api/v1/artifacts",
            "/api/v1/devices/{endpoint}/tags")

# Success schemas of the core routes, by (method, path).
SUCCESS: dict[tuple[str, str], tuple[str, type[BaseModel], bool]] = {
    ("get", "/api/v1/devices"): ("200", Device, True),
    ("get", "/api/v1/devices/{endpoint}"): ("200", Device, False),
    ("get", "/api/v1/devices/{endpoint}/latest"): ("200", LatestValues, False),
    ("get", "/api/v1/requests/{request_id}"): ("200", QueuedRequest, False),
    ("get", "/api/v1/events"): ("200", EventView, True),
    ("get", "/api/v1/tokens"): ("200", Token, True),
    ("post", "/api/v1/tokens"): ("201", NewToken, False),
    ("delete", "/api/v1/tokens/{token_id}"): ("200", Token, False),
    ("get", "/api/v1/webhooks"): ("200", Webhook, True),
}


def _error_codes(method: str, path: str, op: dict[str, Any]) -> set[int]:
    codes = {400, 401, 403, 503}
    if "requestBody" in op:
        codes.add(413)
    if "{" in path or (path == "/api/v1/bootstrap/template" and method in ("get", "delete")):
        codes.add(404)  # an unknown id, or no template set
    if path.startswith("/api/v1/devices/{endpoint}/") and any(s in path for s in _DEVICE_OPS):
        codes |= {404, 409, 502, 504}
    if path.startswith(_ROLLOUT):
        codes |= {409, 422}
    return codes


def _error_response(code: int) -> dict[str, Any]:
    description, example = ERROR_EXAMPLES[code]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                                         "examples": {ERROR_EXAMPLES[code][1]["value"]["error"]:
                                                      example}}}}
    if code == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                    "description": "Bearer"}}
    return response


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in doc.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    title = doc.get("title", model.__name__)
    schemas[title] = doc
    return {"$ref": f"#/components/schemas/{title}"}


def _document_download(ops: dict[str, Any]) -> None:
    """HTTP /fw/<sha256>: 206 for a Range, 404 unknown, 416 unsatisfiable range, 503 not served."""
    for op in ops.values():
        responses = op.setdefault("responses", {})
        responses.pop("422", None)
        responses["206"] = {"description": "the requested byte range",
                            "content": {"application/octet-stream": {}}}
        responses["404"] = _error_response(404)
        responses["416"] = {"description": "the range lies outside the artifact "
                                           "(Content-Range: bytes */<size>)"}
        responses["503"] = _error_response(503)


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers and typed success bodies to a FastAPI-generated document."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    _schema_ref(ErrorBody, schemas)
    queued = _schema_ref(QueuedBody, schemas)
    result = _schema_ref(DeviceResult, schemas)
    for path, ops in spec.get("paths", {}).items():
        if path.startswith("/fw/"):
            _document_download(ops)
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's; validation errors are answered 400
            for code in sorted(_error_codes(method, path, op)):
                responses[str(code)] = _error_response(code)
            if path.startswith("/api/v1/devices/{endpoint}/") and any(s in path for s in _DEVICE_OPS):
                ok = "201" if "/create/" in path else "200"
                responses[ok] = {"description": "the device's answer",
                                 "content": {"application/json": {"schema": result}}}
                responses["202"] = {"description": "the device sleeps: the request is queued",
                                    "content": {"application/json": {"schema": queued}}}
            typed = SUCCESS.get((method, path))
            if typed is not None:
                status, model, many = typed
                ref = _schema_ref(model, schemas)
                schema = {"type": "array", "items": ref} if many else ref
                responses[status] = {"description": responses.get(status, {}).get("description",
                                                                                  "OK"),
                                     "content": {"application/json": {"schema": schema}}}
    text = json.dumps(spec.get("paths", {}))
    if "#/components/schemas/HTTPValidationError" not in text:
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


def install_openapi(app: FastAPI) -> None:
    """Serve ``document(...)`` of ``app``'s routes at its openapi_url (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
