"""Artifacts shared through PostgreSQL: uploaded through one server process, served by another
with its own empty artifact folder (lwm2m_server/store/blobs.py), as hosts of a cluster do."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiocoap import GET, Code, Context, Message
from sqlalchemy import text

from lwm2m_server.store.artifacts import share_stored_artifacts
from lwm2m_server.store.blobs import PART_SIZE
from ota.store import ArtifactStore, HashMismatchError
from tests.support.postgres import temporary_database

from .conftest import FAST, Env, firmware_image, start_env, stop_env

pytestmark = pytest.mark.postgres


@pytest.fixture
async def hosts(tmp_path: Path, signing_key: Any,
                example_model_wasm: bytes) -> AsyncIterator[tuple[Env, Env, str]]:
    """Two server processes (each its own data folder) on one throwaway PostgreSQL database."""
    with temporary_database("ota_shared_") as url:
        a = await start_env(tmp_path / "a", url, signing_key, example_model_wasm, **FAST)
        try:
            b = await start_env(tmp_path / "b", url, signing_key, example_model_wasm, **FAST)
            try:
                yield a, b, url
            finally:
                await stop_env(b)
        finally:
            await stop_env(a)


async def upload(env: Env, data: bytes, kind: str = "firmware", version: str = "2.0.0",
                 name: str = "app") -> Any:
    return await env.http.post("/api/v1/artifacts",
                               data={"kind": kind, "name": name, "version": version},
                               files={"file": ("app.bin", data, "application/octet-stream")})


def blob_parts(env: Env, sha: str | None = None) -> list[tuple[str, int, int]]:
    """(sha256, part, length) of the rows of artifact_blob, of one artifact or all."""
    q = "SELECT sha256, part, length(data) FROM artifact_blob"
    with env.server.engine.connect() as c:
        rows = c.execute(text(q + (" WHERE sha256 = :s" if sha else "") + " ORDER BY 1, 2"),
                         {"s": sha}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def coap_get(env: Env, sha: str) -> Message:
    client = await Context.create_client_context()
    try:
        uri = f"coap://127.0.0.1:{env.runner.coap_port}/fw/{sha}"
        return await asyncio.wait_for(client.request(Message(code=GET, uri=uri)).response, 60)
    finally:
        await client.shutdown()


def folder(env: Env) -> Path:
    return env.tmp / "artifacts"


async def test_an_upload_through_one_process_is_served_by_another_over_coap_and_http(
        hosts: tuple[Env, Env, str]) -> None:
    a, b, _ = hosts
    data = firmware_image("2.0.0", size=PART_SIZE + 200_000)  # two parts in the table
    r = await upload(a, data)
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    assert [(p, n) for _s, p, n in blob_parts(a, sha)] == [(0, PART_SIZE),
                                                          (1, len(data) - PART_SIZE)]
    assert not (folder(b) / sha).exists()

    resp = await coap_get(b, sha)  # Block2, 1024-byte blocks, from B
    assert resp.code == Code.CONTENT and bytes(resp.payload) == data
    assert (folder(b) / sha).read_bytes() == data  # fetched once, kept, served from the file
    assert b.runner.rollout.artifacts.temporary_files() == []

    (folder(b) / sha).unlink()  # HTTP fetches on its own too
    r = await b.http.get(f"/fw/{sha}")
    assert r.status_code == 200 and r.content == data
    r = await b.http.get(f"/fw/{sha}", headers={"Range": f"bytes={PART_SIZE - 10}-{PART_SIZE + 9}"})
    assert r.status_code == 206 and r.content == data[PART_SIZE - 10:PART_SIZE + 10]

    (folder(b) / sha).unlink()  # push delivery and the engine read through the same store
    assert await asyncio.to_thread(b.runner.rollout.artifacts.read_bytes, sha) == data

    unknown = hashlib.sha256(b"never uploaded").hexdigest()
    assert (await coap_get(b, unknown)).code == Code.NOT_FOUND
    assert (await b.http.get(f"/fw/{unknown}")).status_code == 404


async def test_a_rollout_pulls_an_artifact_uploaded_through_another_process(
        hosts: tuple[Env, Env, str]) -> None:
    a, b, _ = hosts
    dev = await a.device("shared-1", firmware_version="1.0.0")
    r = await upload(b, firmware_image("1.0.1"), version="1.0.1")
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    assert not (folder(a) / sha).exists()
    dep = await a.deploy(artifact_id=r.json()["id"], endpoints=["shared-1"], delivery="pull")
    (t,) = (await a.wait_done(dep))["targets"]
    assert t["state"] == "succeeded" and dev.firmware_version == "1.0.1", t
    # The reconciler (process A, the first to start) sent A's /fw URL; A fetched the bytes.
    assert (folder(a) / sha).is_file()


async def test_a_tampered_blob_is_not_served_and_the_error_is_logged(
        hosts: tuple[Env, Env, str], caplog: pytest.LogCaptureFixture) -> None:
    a, b, _ = hosts
    data = firmware_image("3.0.0")
    r = await upload(a, data, version="3.0.0")
    sha = r.json()["sha256"]
    with a.server.engine.begin() as c:
        c.execute(text("UPDATE artifact_blob SET data = :d WHERE sha256 = :s AND part = 0"),
                  {"d": data[:-1] + bytes([data[-1] ^ 1]), "s": sha})

    with caplog.at_level(logging.ERROR):
        resp = await coap_get(b, sha)
        assert resp.code == Code.SERVICE_UNAVAILABLE, resp
        r = await b.http.get(f"/fw/{sha}")
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
    logged = [rec.getMessage() for rec in caplog.records if sha in rec.getMessage()]
    assert len(logged) == 2 and all("tampered or damaged" in m for m in logged), logged
    assert "over CoAP" in logged[0] and "over HTTP" in logged[1]
    assert list(folder(b).iterdir()) == []  # nothing kept, no temporary file left
    with pytest.raises(HashMismatchError):
        b.runner.rollout.artifacts.read_bytes(sha)
    r = await a.http.get(f"/fw/{sha}")  # the uploader's own verified file is unaffected
    assert r.status_code == 200 and r.content == data


async def test_a_refused_upload_leaves_no_blob_row(hosts: tuple[Env, Env, str]) -> None:
    a, _, _ = hosts
    r = await upload(a, a.model, kind="firmware")  # a Wasm module is not firmware
    assert r.status_code == 422, r.text
    r = await upload(a, a.sota(a.model, "1.0.0"), kind="sota", version="9.9.9")  # wrong version
    assert r.status_code == 422, r.text
    assert blob_parts(a) == [] and list(folder(a).iterdir()) == []
    r = await upload(a, firmware_image("4.0.0"), version="4.0.0")
    assert r.status_code == 201
    kept = blob_parts(a)
    r = await upload(a, firmware_image("4.0.0"), version="4.0.0", name="other")  # 409
    assert r.status_code == 409 and blob_parts(a) == kept and len(kept) == 1


async def test_the_same_upload_through_two_processes_at_once_is_stored_once(
        hosts: tuple[Env, Env, str]) -> None:
    a, b, _ = hosts
    data = firmware_image("5.0.0", size=PART_SIZE * 2 + 1)
    ra, rb = await asyncio.gather(upload(a, data, version="5.0.0"),
                                  upload(b, data, version="5.0.0"))
    assert sorted([ra.status_code, rb.status_code]) == [200, 201], (ra.text, rb.text)
    assert ra.json()["id"] == rb.json()["id"]
    sha = ra.json()["sha256"]
    assert [p for _s, p, _n in blob_parts(a, sha)] == [0, 1, 2]
    assert ArtifactStore(folder(b)).read_bytes(sha) == data


async def test_artifacts_recorded_without_a_blob_get_one_from_a_process_that_has_the_file(
        hosts: tuple[Env, Env, str]) -> None:
    a, b, _ = hosts
    data = firmware_image("6.0.0")
    r = await upload(a, data, version="6.0.0")
    sha = r.json()["sha256"]
    with a.server.engine.begin() as c:  # as before blobs were shared
        c.execute(text("DELETE FROM artifact_blob"))
    assert (await b.http.get(f"/fw/{sha}")).status_code == 404
    assert share_stored_artifacts(b.server.engine, b.runner.rollout.artifacts) == 0  # no file
    assert share_stored_artifacts(a.server.engine, a.runner.rollout.artifacts) == 1
    assert share_stored_artifacts(a.server.engine, a.runner.rollout.artifacts) == 0
    assert (await b.http.get(f"/fw/{sha}")).content == data

    with a.server.engine.begin() as c:  # the repair of a damaged blob: remove it, upload again
        c.execute(text("DELETE FROM artifact_blob"))
    r = await upload(a, data, version="6.0.0")
    assert r.status_code == 200 and len(blob_parts(a, sha)) == 1
