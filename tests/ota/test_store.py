"""Content-addressed artifact folder: streamed writes, size limit, idempotent uploads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ota.store import ArtifactStore, NotStoredError, SizeLimitError, StoreError


def test_upload_is_stored_under_its_sha256(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    data = b"firmware" * 50000
    blob = store.put(io.BytesIO(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == len(data) and blob.created
    assert blob.path == tmp_path / "a" / blob.sha256
    assert store.read_bytes(blob.sha256) == data
    with store.open(blob.sha256) as f:
        assert f.read() == data


def test_identical_upload_is_idempotent(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put([b"abc", b"def"])
    second = store.put(b"abcdef")
    assert second.sha256 == first.sha256 and not second.created
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.sha256]


def test_upload_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, max_size=1000)
    chunks_sent = []

    def chunks():
        for i in range(100):
            chunks_sent.append(i)
            yield b"x" * 100

    with pytest.raises(SizeLimitError, match="limit of 1000 bytes"):
        store.put(chunks())
    assert list(tmp_path.iterdir()) == []
    assert len(chunks_sent) == 11  # streaming stops at the first chunk past the limit
    assert store.put(b"y" * 1000).size == 1000  # exactly the limit is fine


def test_failing_source_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    def broken():
        yield b"part"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(broken())
    assert list(tmp_path.iterdir()) == []
    assert store.temporary_files() == []


def test_names_that_are_not_sha256_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    for bad in ("../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(StoreError, match="not a lowercase hex SHA-256"):
            store.path(bad)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(NotStoredError):
        ArtifactStore(tmp_path).read_bytes("0" * 64)


def test_delete_removes_the_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    blob = store.put(b"gone")
    store.delete(blob.sha256)
    assert not store.exists(blob.sha256)
