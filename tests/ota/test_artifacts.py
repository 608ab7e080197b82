"""Artifact ingestion on real SQLite and PostgreSQL: rows only for files that pass their checks."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from lwm2m_server.rollout.errors import ArtifactInUse, ArtifactUnavailable, InvalidDeployment
from lwm2m_server.rollout.service import (
    DeploymentSpec, cancel_deployment, create_deployment, delete_artifact,
)
from lwm2m_server.store.artifacts import (
    ArtifactError, add_artifact, get_artifact, get_artifact_by_sha256, ingest_artifact,
    list_artifacts, remove_unrecorded_files,
)
from lwm2m_server.store.db import init_db, make_engine
from ota import keys
from ota.mcuboot import sign_image
from ota.sota import build_package
from ota.store import ArtifactStore
from tests.support.postgres import temporary_database


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped at the end."""
    with temporary_database("ota_artifacts_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (f"sqlite:///{tmp_path / 'a.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    eng = make_engine(url)
    init_db(eng)
    yield eng
    if request.param == "postgres":
        SQLModel.metadata.drop_all(eng)
    eng.dispose()


@pytest.fixture()
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts", max_size=256 * 1024)


def _blob_rows(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM artifact_blob")).scalar_one())


def _nothing_left(engine: Engine, store: ArtifactStore) -> None:
    assert list_artifacts(engine) == []
    assert list(store.root.iterdir()) == []
    assert _blob_rows(engine) == 0


def test_the_bytes_go_into_the_database_on_postgresql_only(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes) -> None:
    from lwm2m_server.store.blobs import blob_fetcher

    row = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                          version="1.0.0").artifact
    if engine.dialect.name == "sqlite":  # one process, one folder
        assert _blob_rows(engine) == 0 and blob_fetcher(engine) is None
        return
    assert _blob_rows(engine) == 1
    fetch = blob_fetcher(engine)
    assert fetch is not None and b"".join(fetch(row.sha256)) == example_model_wasm
    assert fetch("0" * 64) is None


def test_model_upload_is_checked_stored_and_recorded(engine: Engine, store: ArtifactStore,
                                                     example_model_wasm: bytes) -> None:
    result = ingest_artifact(engine, store, io.BytesIO(example_model_wasm), kind="model",
                             name="classifier", version="1.0.0")
    row = result.artifact
    assert result.created and row.id is not None
    assert store.read_bytes(row.sha256) == example_model_wasm
    assert row.size == len(example_model_wasm)
    assert row.meta["memory_pages"] == 1 and "infer" in row.meta["exports"]
    assert get_artifact(engine, row.id).sha256 == row.sha256
    assert get_artifact_by_sha256(engine, row.sha256).id == row.id
    summary = row.summary()
    assert summary["kind"] == "model" and summary["metadata"]["format"] == "wasm"


def test_identical_upload_returns_the_same_row(engine: Engine, store: ArtifactStore,
                                               example_model_wasm: bytes) -> None:
    first = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                            version="1.0.0")
    again = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                            version="1.0.0")
    assert not again.created and again.artifact.id == first.artifact.id
    assert len(list_artifacts(engine)) == 1 and len(list(store.root.iterdir())) == 1


def test_same_content_under_another_kind_is_a_conflict(engine: Engine, store: ArtifactStore,
                                                       example_model_wasm: bytes) -> None:
    ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf", version="1.0.0")
    with pytest.raises(ArtifactError, match="already stored as model") as e:
        ingest_artifact(engine, store, example_model_wasm, kind="firmware", name="fw",
                        version="1")
    assert e.value.status == 409
    assert len(list_artifacts(engine)) == 1


def test_upload_over_the_size_limit_leaves_nothing(engine: Engine, store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="limit") as e:
        ingest_artifact(engine, store, io.BytesIO(b"\0" * 300_000), kind="firmware",
                        name="big", version="1.0.0")
    assert e.value.status == 413
    _nothing_left(engine, store)


def test_tampered_firmware_is_refused_and_leaves_nothing(engine: Engine, store: ArtifactStore,
                                                         ed_key: keys.PrivateKey) -> None:
    image = bytearray(sign_image(b"app" * 1000, ed_key, version="1.0.0"))
    image[0x300] ^= 1
    with pytest.raises(ArtifactError, match="firmware check failed: .*SHA-256") as e:
        ingest_artifact(engine, store, bytes(image), kind="firmware", name="app",
                        version="1.0.0", firmware_public_key=keys.public_key_of(ed_key))
    assert e.value.status == 422
    _nothing_left(engine, store)


def test_signed_and_raw_firmware_are_accepted(engine: Engine, store: ArtifactStore,
                                              ed_key: keys.PrivateKey) -> None:
    image = sign_image(b"app" * 1000, ed_key, version="1.0.0+3")
    row = ingest_artifact(engine, store, image, kind="firmware", name="app", version="1.0.0+3",
                          firmware_public_key=keys.public_key_of(ed_key)).artifact
    assert row.meta["format"] == "mcuboot" and row.meta["signature_verified"] is True
    raw = ingest_artifact(engine, store, b"\x01raw image", kind="firmware", name="app",
                          version="0.9").artifact
    assert raw.meta["format"] == "raw"
    assert [r.id for r in list_artifacts(engine, "firmware")] == [raw.id, row.id]


def test_invalid_model_is_refused_and_leaves_nothing(engine: Engine, store: ArtifactStore,
                                                     example_model_wasm: bytes) -> None:
    with pytest.raises(ArtifactError, match="model check failed: .*magic") as e:
        ingest_artifact(engine, store, b"\0ASM" + example_model_wasm[4:], kind="model",
                        name="clf", version="1.0.0")
    assert e.value.status == 422
    _nothing_left(engine, store)


def test_sota_package_is_verified_with_the_configured_key(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes,
        ed_key: keys.PrivateKey) -> None:
    pkg = build_package(example_model_wasm, name="clf", version="1.0.1", private_key=ed_key,
                        slot_size=65536)
    row = ingest_artifact(engine, store, pkg, kind="sota", name="clf", version="1.0.1",
                          sota_public_key=keys.public_key_of(ed_key)).artifact
    assert row.meta["manifest"]["version"] == "1.0.1"
    assert row.meta["signature_verified"] is True


@pytest.mark.parametrize("case", ["tampered", "wrong key", "no key", "version mismatch"])
def test_bad_sota_upload_is_refused_and_leaves_nothing(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes,
        ed_key: keys.PrivateKey, case: str) -> None:
    pkg = bytearray(build_package(example_model_wasm, name="clf", version="1.0.1",
                                  private_key=ed_key, slot_size=65536))
    key: keys.PublicKey | None = keys.public_key_of(ed_key)
    version = "1.0.1"
    if case == "tampered":
        pkg[-5] ^= 0xFF
    elif case == "wrong key":
        key = keys.public_key_of(keys.generate_private_key("ed25519"))
    elif case == "no key":
        key = None
    else:
        version = "1.0.2"
    with pytest.raises(ArtifactError) as e:
        ingest_artifact(engine, store, bytes(pkg), kind="sota", name="clf", version=version,
                        sota_public_key=key)
    assert e.value.status == 422
    _nothing_left(engine, store)


@pytest.mark.parametrize("kind, name, version, message", [
    ("bundle", "x", "1.0.0", "unknown artifact kind"),
    ("model", "", "1.0.0", "artifact name"),
    ("model", "../x", "1.0.0", "artifact name"),
    ("model", "clf", "1.0", "MAJOR.MINOR.PATCH"),
    ("firmware", "app", "1 0", "firmware version"),
])
def test_bad_fields_are_refused_before_anything_is_written(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes, kind: str, name: str,
        version: str, message: str) -> None:
    with pytest.raises(ArtifactError, match=message) as e:
        ingest_artifact(engine, store, example_model_wasm, kind=kind, name=name, version=version)
    assert e.value.status == 400
    _nothing_left(engine, store)


def test_add_artifact_twice_with_the_same_hash_keeps_one_row(engine: Engine) -> None:
    a = add_artifact(engine, kind="firmware", name="a", version="1", sha256="ab" * 32, size=3)
    b = add_artifact(engine, kind="firmware", name="b", version="2", sha256="ab" * 32, size=3)
    assert a.id == b.id and b.name == "a"
    assert len(list_artifacts(engine)) == 1


def test_concurrent_identical_uploads_make_one_row_and_one_file(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes) -> None:
    def upload(_: int) -> bool:
        return ingest_artifact(engine, store, io.BytesIO(example_model_wasm), kind="model",
                               name="clf", version="1.0.0").created

    with ThreadPoolExecutor(4) as pool:
        created = list(pool.map(upload, range(4)))
    assert created.count(True) == 1
    assert len(list_artifacts(engine)) == 1 and len(list(store.root.iterdir())) == 1


def test_delete_removes_row_and_bytes_and_never_gives_the_id_again(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes) -> None:
    first = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                            version="1.0.0").artifact
    assert first.id is not None
    deleted = delete_artifact(engine, first.id)
    assert (deleted["id"], deleted["sha256"]) == (first.id, first.sha256)
    assert get_artifact(engine, first.id) is None and _blob_rows(engine) == 0
    with pytest.raises(ArtifactUnavailable, match=f"artifact {first.id} does not exist"):
        delete_artifact(engine, first.id)
    # The same bytes again: a new row with a new id (old deployments name artifacts by id).
    again = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                            version="1.0.0").artifact
    assert again.id is not None and again.id > first.id


def test_delete_is_refused_while_a_deployment_needs_the_artifact(
        engine: Engine, store: ArtifactStore) -> None:
    art = ingest_artifact(engine, store, b"raw image" + bytes(4000), kind="firmware", name="fw",
                          version="1.0.0").artifact
    assert art.id is not None
    dep = create_deployment(engine, DeploymentSpec(artifact_id=art.id, endpoints=["a", "b"]))
    with pytest.raises(ArtifactInUse) as refused:
        delete_artifact(engine, art.id)
    assert refused.value.deployments == [dep.id] and refused.value.http_status == 409
    assert get_artifact(engine, art.id) is not None  # nothing of the refused delete was kept
    assert store.exists(art.sha256) and _blob_rows(engine) == (1 if engine.dialect.name ==
                                                               "postgresql" else 0)
    # Cancelled: its targets were all pending, so none is still updating.
    cancel_deployment(engine, int(dep.id or 0))
    delete_artifact(engine, art.id)
    with pytest.raises(InvalidDeployment, match="does not exist"):
        create_deployment(engine, DeploymentSpec(artifact_id=art.id, endpoints=["a"]))


def test_files_of_artifacts_deleted_while_down_are_removed_when_old_enough(
        engine: Engine, store: ArtifactStore, example_model_wasm: bytes) -> None:
    kept = ingest_artifact(engine, store, example_model_wasm, kind="model", name="clf",
                           version="1.0.0").artifact
    old = store.put(b"deleted elsewhere" * 10).sha256
    young = store.put(b"an upload whose row is being written").sha256
    past = time.time() - 3600
    for sha in (kept.sha256, old):
        os.utime(store.path(sha), (past, past))
    assert remove_unrecorded_files(engine, store, min_age=600) == 1
    assert store.stored() == sorted([kept.sha256, young])
