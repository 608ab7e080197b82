"""Artifacts in the console: the list, the upload in two steps, and deleting one.

1. ``inspect``: the browser sends the file (with upload progress); the server reads it within
   the REST route's size limit (``read_upload``), gives its verdict with the checks the REST
   upload makes (``check_upload``: signature, hash, Wasm exports, SOTA manifest) and keeps the
   bytes aside under a one-time token. Nothing is stored as an artifact yet.
2. ``confirm``: the operator accepts the verdict; the kept bytes go through the REST upload's
   own path into the store (``ingest_upload``, which checks them again). ``discard`` drops them.

``Delete`` on a row is the REST route's own function (refused while a deployment needs it).
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..api import artifacts as api_artifacts
from ..api.deps import DbInt, EngineDep, SettingsDep
from ..api.errors import ApiError
from .auth import CONSOLE_PREFIX, ConsoleError, check_form, checked_form, session_from_cookie
from .common import SignedIn, act, json_response, page_errors, render

__all__ = ["router", "Staging", "STAGED_SECONDS"]

router = APIRouter(include_in_schema=False)
STAGED_SECONDS = 1800  # an inspected upload waits this long for its confirm
MAX_STAGED = 16  # per server: a few operators each looking at an upload


@dataclass(frozen=True, slots=True)
class _Staged:
    owner: str
    path: FsPath
    fields: api_artifacts.UploadFields
    verdict: dict[str, Any]
    at: float


class Staging:
    """Inspected uploads waiting for the operator's confirm: files in a private temporary
    folder, one per token, dropped after STAGED_SECONDS or when MAX_STAGED are waiting."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="lwm2m-console-uploads-")
        self._items: dict[str, _Staged] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, source: Any, fields: api_artifacts.UploadFields,
            verdict: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(18)
        path = FsPath(self._dir.name) / token
        source.seek(0)
        with open(path, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        with self._lock:
            self._expire(keep=MAX_STAGED - 1)
            self._items[token] = _Staged(owner, path, fields, verdict, time.monotonic())
        return token

    def take(self, token: str, owner: str) -> _Staged:
        """The staged upload of ``token`` (removed from the waiting list; the caller deletes
        its file); ConsoleError(404) when unknown, expired or another operator's."""
        with self._lock:
            self._expire(keep=MAX_STAGED)
            item = self._items.get(token)
            if item is None or item.owner != owner:
                raise ConsoleError("this upload is no longer waiting (expired or done): upload "
                                   "the file again", 404)
            del self._items[token]
            return item

    def _expire(self, keep: int) -> None:
        now = time.monotonic()
        for token, item in sorted(self._items.items(), key=lambda kv: kv[1].at):
            if now - item.at > STAGED_SECONDS or len(self._items) > keep:
                del self._items[token]
                item.path.unlink(missing_ok=True)


def staging_of(request: Request) -> Staging:
    return request.app.state.console_staging  # type: ignore[no-any-return]


def describe(verdict: dict[str, Any]) -> list[tuple[str, str]]:
    """The verdict as label/value lines for the operator (what was checked and found)."""
    lines = [("Kind", str(verdict.get("kind"))), ("Size", f"{verdict.get('size')} bytes"),
             ("SHA-256", str(verdict.get("sha256")))]
    fmt = verdict.get("format")
    if fmt:
        lines.append(("Format", str(fmt)))
    if fmt == "mcuboot":
        lines.append(("Image version", str(verdict.get("version"))))
        lines.append(("Image hash (TLV)", f"verified: {verdict.get('image_sha256')}"
                      if verdict.get("image_sha256") else "none in the image"))
        signature = verdict.get("signature")
        lines.append(("Signature", f"{signature}, verified" if signature and
                      verdict.get("signature_verified") else
                      f"{signature or 'none'}, not checked (no firmware key configured)"))
    elif "signature_verified" in verdict:
        lines.append(("Signature", "verified" if verdict["signature_verified"]
                      else "not checked (no key configured)"))
    if isinstance(verdict.get("exports"), dict):
        lines.append(("Wasm exports", ", ".join(f"{k} ({v})" for k, v in verdict["exports"].items())))
    if isinstance(verdict.get("imports"), list):
        lines.append(("Wasm imports", ", ".join(str(i) for i in verdict["imports"]) or "none"))
    if "memory_pages" in verdict:
        lines.append(("Wasm memory", f"{verdict['memory_pages']} pages of 64 KiB"))
    if isinstance(verdict.get("model_section"), dict):
        sec = verdict["model_section"]
        lines.append(("Model section", f"{sec.get('name')}: {sec.get('size')} bytes, module "
                      f"{sec.get('module_size') or 'empty'}"))
    manifest = verdict.get("manifest")
    if isinstance(manifest, dict):
        labels = {"name": "name", "version": "version", "section": "ELF section",
                  "slot_size": "slot size", "payload_size": "payload size",
                  "sha256": "payload SHA-256", "exports": "required Wasm exports"}
        for key, label in labels.items():
            if key in manifest:
                value = manifest[key]
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                lines.append((f"Manifest {label}", shown))
        if isinstance(manifest.get("selftest"), dict):
            test = manifest["selftest"]
            lines.append(("Manifest self-test", f"input of {len(test.get('input') or [])} values, "
                          f"expected output {test.get('expected')}"))
    return lines


# --- pages --------------------------------------------------------------------------------

@router.get(CONSOLE_PREFIX + "/artifacts")
def artifacts_page(request: Request, session: SignedIn, engine: EngineDep,
                   kind: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    with page_errors():
        artifacts = api_artifacts.get_artifacts(engine, kind=kind or None)
    return render(request, "artifacts.html", session, artifacts=artifacts, kind=kind or "",
                  max_size=api_artifacts.max_upload_size(request))


@router.post(CONSOLE_PREFIX + "/artifacts/inspect")
async def inspect_upload(request: Request) -> JSONResponse:
    """Step 1: the verdict on an uploaded file, as JSON for the page's script."""
    session = await run_in_threadpool(session_from_cookie, request)
    try:
        form, upload, fields = await api_artifacts.read_upload(request)
    except ApiError as e:
        return json_response({"ok": False, "status": e.status, "error": e.message}, e.status)
    try:
        check_form(request, session, form, "deploy")
        data = await upload.read()
        try:
            verdict = await run_in_threadpool(api_artifacts.check_upload, data, fields,
                                              request.app.state.settings)
        except ApiError as e:
            return json_response({"ok": False, "status": e.status, "error": e.message}, 200)
        token = await run_in_threadpool(staging_of(request).put, session.name, upload.file,
                                        fields, verdict)
    finally:
        await form.close()
    return json_response({"ok": True, "token": token, "kind": fields.kind, "name": fields.name,
                          "version": fields.version, "sha256": verdict["sha256"],
                          "size": verdict["size"], "checks": describe(verdict)})


@router.post(CONSOLE_PREFIX + "/artifacts/confirm")
async def confirm_upload(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Step 2: keep the inspected file as an artifact (the REST upload's path)."""
    session, form = await checked_form(request, "deploy")
    item = staging_of(request).take(str(form.get("token") or ""), session.name)
    back = f"{CONSOLE_PREFIX}/artifacts"

    async def ingest() -> tuple[dict[str, Any], bool]:
        try:
            source = await run_in_threadpool(open, item.path, "rb")
            try:
                return await api_artifacts.ingest_upload(request, engine, settings, source,
                                                         item.fields)
            finally:
                source.close()
        finally:
            item.path.unlink(missing_ok=True)

    def done(result: tuple[dict[str, Any], bool]) -> str:
        body, created = result
        what = f"{body['kind']} artifact #{body['id']} {body['name']} {body['version']}"
        return f"stored {what}" if created else f"already stored as {what}"
    return await act(request, session, back, ingest, done)


@router.post(CONSOLE_PREFIX + "/artifacts/discard")
async def discard_upload(request: Request) -> Response:
    session, form = await checked_form(request, "deploy")
    back = f"{CONSOLE_PREFIX}/artifacts"
    try:
        item = staging_of(request).take(str(form.get("token") or ""), session.name)
        item.path.unlink(missing_ok=True)
    except ConsoleError:
        pass  # already gone: discarding it again is no error
    return await act(request, session, back, lambda: None, lambda _: "upload discarded")


@router.post(CONSOLE_PREFIX + "/artifacts/{artifact_id}/delete")
async def delete_artifact(request: Request, artifact_id: DbInt, engine: EngineDep,
                          settings: SettingsDep) -> Response:
    session, _ = await checked_form(request, "deploy")

    def done(row: dict[str, Any]) -> str:
        return f"deleted {row['kind']} artifact #{row['id']} {row['name']} {row['version']}"
    return await act(request, session, f"{CONSOLE_PREFIX}/artifacts",
                     lambda: run_in_threadpool(api_artifacts.delete_one, artifact_id, engine,
                                               settings, request), done)
