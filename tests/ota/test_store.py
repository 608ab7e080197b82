"""Content-addressed artifact folder: streamed writes, size limit, idempotent uploads."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path

import pytest

from ota.store import (
    ArtifactStore,
    HashMismatchError,
    NotStoredError,
    SizeLimitError,
    StoreError,
)


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


def test_a_file_that_is_elsewhere_is_fetched_verified_and_kept(tmp_path: Path) -> None:
    data = b"shared" * 100_000
    sha = hashlib.sha256(data).hexdigest()
    asked: list[str] = []

    def fetch(wanted: str):
        asked.append(wanted)
        return [data[i:i + 4096] for i in range(0, len(data), 4096)] if wanted == sha else None

    store = ArtifactStore(tmp_path, max_size=10, fetch=fetch)  # its upload limit does not apply
    assert store.read_bytes(sha) == data
    assert (tmp_path / sha).read_bytes() == data and store.temporary_files() == []
    with store.open(sha) as f:
        assert f.read() == data
    assert asked == [sha]  # kept: asked once
    other = hashlib.sha256(b"nowhere").hexdigest()
    assert store.ensure(other) is False
    with pytest.raises(NotStoredError):
        store.read_bytes(other)


def test_fetched_bytes_with_another_sha256_are_refused_and_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = hashlib.sha256(b"original").hexdigest()
    served = [b"tampered"]
    fetched: list[str] = []

    def fetch(wanted: str):
        fetched.append(wanted)
        return list(served)

    store = ArtifactStore(tmp_path, fetch=fetch)
    with pytest.raises(HashMismatchError, match=f"artifact {sha} have SHA-256 "
                       f"{hashlib.sha256(b'tampered').hexdigest()}.*tampered or damaged"):
        store.ensure(sha)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(HashMismatchError, match="tampered or damaged"):
        store.read_bytes(sha)
    assert len(fetched) == 1  # refused again from memory, not fetched again
    served[:] = [b"original"]  # repaired: after REFUSED_FOR it is fetched and kept
    monkeypatch.setattr("ota.store.REFUSED_FOR", 0.0)
    assert store.read_bytes(sha) == b"original" and len(fetched) == 2


def test_put_with_an_expected_sha256_keeps_only_that_content(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(HashMismatchError):
        store.put(b"abc", expect_sha256="0" * 64)
    with pytest.raises(StoreError, match="not a lowercase hex SHA-256"):
        store.put(b"abc", expect_sha256="../x")
    assert list(tmp_path.iterdir()) == []
    blob = store.put(b"abc", expect_sha256=hashlib.sha256(b"abc").hexdigest())
    assert blob.created and store.read_bytes(blob.sha256) == b"abc"


def test_threads_asking_for_one_missing_file_fetch_it_once(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    sha = hashlib.sha256(data).hexdigest()
    calls = []

    def slow_fetch(_sha: str):
        calls.append(_sha)
        time.sleep(0.2)  # long enough for every thread to arrive while the first one fetches
        return [data]

    store = ArtifactStore(tmp_path, fetch=slow_fetch)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(store.read_bytes(sha)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data] * 8 and len(calls) == 1


def test_two_stores_on_one_folder_fetching_at_once_leave_one_file(tmp_path: Path) -> None:
    """Two processes on one folder: each writes a temporary file, the renames keep one."""
    data = b"x" * 300_000
    sha = hashlib.sha256(data).hexdigest()
    barrier = threading.Barrier(2)

    def fetch(_sha: str):
        barrier.wait(timeout=5)  # both are fetching before either renames
        return [data[:100_000], data[100_000:]]

    a, b = ArtifactStore(tmp_path, fetch=fetch), ArtifactStore(tmp_path, fetch=fetch)
    threads = [threading.Thread(target=s.ensure, args=(sha,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.name for p in tmp_path.iterdir()] == [sha]
    assert (tmp_path / sha).read_bytes() == data
