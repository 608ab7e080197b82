"""``/api/v1/artifacts``: upload (multipart: file, kind, name, version), list and delete artifacts.

Uploads are checked for their kind before anything is kept (``ingest_artifact``): an MCUboot
image must verify, a model must pass the Wasm checks, a SOTA package must verify against the
configured public key (``LWM2M_SOTA_PUBLIC_KEY``, a PEM file; default: the data folder's key). The same bytes again with the
same fields: 200 with the stored artifact; with another kind, name or version: 409 with the
stored artifact under ``artifact``. Too large: 413 (from
Content-Length before the body is read, or as soon as a chunked body passes the limit, and
again while streaming into the store); tampered: 422; nothing of a refused upload is kept.

``DELETE /{id}`` removes an artifact no deployment needs any more (``delete_artifact``): 409
with the ids under ``deployments`` while one is running, paused or has devices updating.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from ota.errors import OtaError
from ota.keys import load_public_key
from ota.store import DEFAULT_MAX_SIZE, ArtifactStore

from ..rollout.errors import ArtifactInUse, RolloutError
from ..rollout.service import delete_artifact
from ..store.artifacts import (
    ArtifactError,
    check_artifact,
    get_artifact,
    ingest_artifact,
    list_artifacts,
)
from .deps import DbInt, EngineDep, SettingsDep, event_bus, require_scope
from .errors import ApiError

__all__ = ["router", "SOTA_KEY_ENV", "max_upload_size", "status_error", "read_upload",
           "check_upload", "ingest_upload", "UploadFields"]

SOTA_KEY_ENV = "LWM2M_SOTA_PUBLIC_KEY"
log = logging.getLogger(__name__)
_MULTIPART_OVERHEAD = 16 * 1024  # form fields and part headers around the file

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


def max_upload_size(request: Request) -> int:
    return int(getattr(request.app.state, "max_artifact_size", DEFAULT_MAX_SIZE))


def status_error(status: int, message: str, kind: str, **extra: Any) -> ApiError:
    """An ApiError with this HTTP status and kind (for the OTA layers' own error families);
    ``extra`` fields go into the JSON answer."""
    err = ApiError(message, **extra)
    err.status, err.kind = status, kind
    return err


class _TooLarge(Exception):
    pass


async def _read_form(request: Request) -> Any:
    """The multipart form, reading at most the size limit (plus room for the form fields).

    A declared Content-Length over it is refused before any byte is read; a chunked body is cut
    off as soon as it passes the limit. Starlette spools the file part to a temporary file.
    """
    limit = max_upload_size(request) + _MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    too_large = status_error(413, f"upload exceeds the limit of {max_upload_size(request)} bytes",
                       "too_large")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    receive = request._receive  # noqa: SLF001 - count the body as it arrives
    seen = 0

    async def limited() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message
    request._receive = limited  # noqa: SLF001
    try:
        return await request.form(max_files=1, max_fields=10)
    except _TooLarge:
        raise too_large from None


def _store(request: Request, settings: Any) -> ArtifactStore:
    service = getattr(request.app.state, "rollout", None)
    if service is not None:
        return service.artifacts  # type: ignore[no-any-return]
    return ArtifactStore(settings.artifacts_dir)


def _sota_key(settings: Any) -> Any:
    # The variable is read per upload too, so a key set after start-up counts at once.
    path = os.environ.get(SOTA_KEY_ENV) or settings.sota_public_key
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return load_public_key(f.read())
    except (OSError, OtaError) as e:
        raise status_error(500, f"{SOTA_KEY_ENV} cannot be loaded: {e}",
                           "server_misconfigured") from None


def _summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "name": row.name, "version": row.version,
            "sha256": row.sha256, "size": row.size}


_UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file", "kind", "name", "version"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the artifact bytes"},
        "kind": {"type": "string", "enum": ["firmware", "model", "sota"]},
        "name": {"type": "string"}, "version": {"type": "string"}}}}}}}


@dataclass(frozen=True, slots=True)
class UploadFields:
    """The form fields of an artifact upload besides the file."""

    kind: str
    name: str
    version: str


_ARTIFACT_ERROR_KINDS = {400: "invalid_request", 409: "conflict", 413: "too_large", 422: "rejected"}


def _api_error(e: ArtifactError) -> ApiError:
    extra = {} if e.existing is None else {"artifact": _summary(e.existing)}  # a 409's stored row
    return status_error(e.status, str(e), _ARTIFACT_ERROR_KINDS.get(e.status, "rejected"),
                        **extra)


async def read_upload(request: Request) -> tuple[Any, StarletteUploadFile, UploadFields]:
    """The multipart upload (within the size limit), its file and its fields; 400 when a field
    is missing. The caller closes the form (``await form.close()``)."""
    form = await _read_form(request)
    upload = form.get("file")
    fields = {k: form.get(k) for k in ("kind", "name", "version")}
    missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
    if not isinstance(upload, StarletteUploadFile) or missing:
        await form.close()
        raise status_error(400, "multipart fields file, kind, name and version are required"
                           + (f" (missing: {', '.join(missing)})" if missing else ""),
                           "invalid_request")
    return form, upload, UploadFields(str(fields["kind"]), str(fields["name"]),
                                      str(fields["version"]))


def check_upload(data: bytes, fields: UploadFields, settings: Any) -> dict[str, Any]:
    """The server's verdict on an upload without keeping it (``check_artifact``: the checks
    ``ingest_upload`` makes); ApiError 400/422 when refused."""
    key = _sota_key(settings) if fields.kind == "sota" else None
    try:
        return check_artifact(data, kind=fields.kind, name=fields.name, version=fields.version,
                              sota_public_key=key)
    except ArtifactError as e:
        raise _api_error(e) from None


async def ingest_upload(request: Request, engine: Any, settings: Any, source: BinaryIO,
                        fields: UploadFields) -> tuple[dict[str, Any], bool]:
    """Check and keep an upload (``ingest_artifact``): its summary and whether it is new.

    The one path into the artifact store for the REST route and the console's confirm step.
    """
    key = _sota_key(settings) if fields.kind == "sota" else None
    try:
        result = await run_in_threadpool(
            ingest_artifact, engine, _store(request, settings), source, kind=fields.kind,
            name=fields.name, version=fields.version, sota_public_key=key,
            max_size=max_upload_size(request))
    except ArtifactError as e:
        raise _api_error(e) from None
    return _summary(result.artifact), result.created


@router.post("", status_code=201, summary="Upload an artifact (multipart: file, kind, name, version)",
             dependencies=[Depends(require_scope("deploy"))], openapi_extra=_UPLOAD_SCHEMA)
async def post_artifact(request: Request, engine: EngineDep, settings: SettingsDep) -> Any:
    form, upload, fields = await read_upload(request)
    try:
        body, created = await ingest_upload(request, engine, settings, upload.file, fields)
    finally:
        await form.close()
    return JSONResponse(status_code=201 if created else 200, content=body)


@router.get("", summary="List artifacts, newest first",
            dependencies=[Depends(require_scope("read"))])
def get_artifacts(engine: EngineDep, kind: str | None = None, limit: int = 100,
                  offset: DbInt = 0) -> list[dict[str, Any]]:
    limit = max(1, min(limit, 1000))
    return [r.summary() for r in list_artifacts(engine, kind, limit=limit, offset=max(0, offset))]


@router.get("/{artifact_id}", summary="One artifact with its metadata",
            dependencies=[Depends(require_scope("read"))])
def get_one(artifact_id: DbInt, engine: EngineDep) -> dict[str, Any]:
    row = get_artifact(engine, artifact_id)
    if row is None:
        raise status_error(404, f"artifact {artifact_id} does not exist", "not_found")
    return row.summary()


@router.delete("/{artifact_id}", summary="Delete an artifact no deployment needs any more",
               dependencies=[Depends(require_scope("deploy"))])
def delete_one(artifact_id: DbInt, engine: EngineDep, settings: SettingsDep,
               request: Request) -> dict[str, Any]:
    try:
        summary = delete_artifact(engine, artifact_id, events=event_bus(request))
    except ArtifactInUse as e:
        raise status_error(409, e.message, "conflict", deployments=e.deployments) from None
    except RolloutError as e:
        raise status_error(e.http_status, e.message, "not_found") from None
    try:  # this process's copy at once; every process removes its own on the event too
        _store(request, settings).delete(summary["sha256"])
    except OSError as e:
        log.warning("artifact %s: its file could not be removed: %s", summary["sha256"], e)
    return {**summary, "deleted": True}
