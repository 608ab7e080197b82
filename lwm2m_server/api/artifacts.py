"""``/api/v1/artifacts``: upload (multipart: file, kind, name, version) and list artifacts.

Uploads are checked for their kind before anything is kept (``ingest_artifact``): an MCUboot
image must verify, a model must pass the Wasm checks, a SOTA package must verify against the
configured public key (``LWM2M_SOTA_PUBLIC_KEY``, a PEM file). Too large: 413 (refused from
Content-Length before the body is read, and again while streaming into the store); tampered:
422; nothing of a refused upload is kept.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from ota.errors import OtaError
from ota.keys import load_public_key
from ota.store import DEFAULT_MAX_SIZE, ArtifactStore

from ..store.artifacts import ArtifactError, get_artifact, ingest_artifact, list_artifacts
from .deps import EngineDep, SettingsDep, require_scope
from .errors import ApiError

__all__ = ["router", "SOTA_KEY_ENV", "max_upload_size"]

SOTA_KEY_ENV = "LWM2M_SOTA_PUBLIC_KEY"
_MULTIPART_OVERHEAD = 16 * 1024  # form fields and part headers around the file

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


def max_upload_size(request: Request) -> int:
    return int(getattr(request.app.state, "max_artifact_size", DEFAULT_MAX_SIZE))


def _error(status: int, message: str, kind: str) -> ApiError:
    err = ApiError(message)
    err.status, err.kind = status, kind
    return err


def _check_length(request: Request) -> None:
    """Refuse an oversized upload from its Content-Length, before reading the body."""
    declared = request.headers.get("content-length")
    limit = max_upload_size(request)
    if declared is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise _error(413, f"upload of {declared} bytes exceeds the limit of {limit} bytes",
                     "too_large")


def _store(request: Request, settings: Any) -> ArtifactStore:
    service = getattr(request.app.state, "rollout", None)
    if service is not None:
        return service.artifacts  # type: ignore[no-any-return]
    return ArtifactStore(settings.artifacts_dir)


def _sota_key() -> Any:
    path = os.environ.get(SOTA_KEY_ENV)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return load_public_key(f.read())
    except (OSError, OtaError) as e:
        raise _error(500, f"{SOTA_KEY_ENV} cannot be loaded: {e}", "server_misconfigured") from None


def _summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "name": row.name, "version": row.version,
            "sha256": row.sha256, "size": row.size}


@router.post("", status_code=201, summary="Upload an artifact (multipart: file, kind, name, version)",
             dependencies=[Depends(_check_length), Depends(require_scope("deploy"))])
def post_artifact(request: Request, engine: EngineDep, settings: SettingsDep,
                  file: Annotated[UploadFile, File(description="the artifact bytes")],
                  kind: Annotated[str, Form(description="firmware, model or sota")],
                  name: Annotated[str, Form()], version: Annotated[str, Form()]) -> Any:
    key = _sota_key() if kind == "sota" else None
    try:
        result = ingest_artifact(engine, _store(request, settings), file.file, kind=kind,
                                 name=name, version=version, sota_public_key=key,
                                 max_size=max_upload_size(request))
    except ArtifactError as e:
        kinds = {400: "invalid_request", 409: "conflict", 413: "too_large", 422: "rejected"}
        raise _error(e.status, str(e), kinds.get(e.status, "rejected")) from None
    body = _summary(result.artifact)
    return JSONResponse(status_code=201 if result.created else 200, content=body)


@router.get("", summary="List artifacts, newest first",
            dependencies=[Depends(require_scope("read"))])
def get_artifacts(engine: EngineDep, kind: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    limit = max(1, min(limit, 1000))
    return [r.summary() for r in list_artifacts(engine, kind, limit=limit, offset=max(0, offset))]


@router.get("/{artifact_id}", summary="One artifact with its metadata",
            dependencies=[Depends(require_scope("read"))])
def get_one(artifact_id: int, engine: EngineDep) -> dict[str, Any]:
    row = get_artifact(engine, artifact_id)
    if row is None:
        raise _error(404, f"artifact {artifact_id} does not exist", "not_found")
    return row.summary()
