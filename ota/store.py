"""Content-addressed artifact files: one file per SHA-256 in a folder from config.

Uploads stream into a temporary file in the same folder while being hashed and counted; past
the size limit the write stops and the temporary file is removed. A finished upload is
fsynced and renamed atomically to its SHA-256; an identical upload finds the file already
there and is a no-op. Nothing half-written is ever visible under a content name.

A store may be given ``fetch``: where to get the bytes of a SHA-256 that is not in the folder
(the server passes the database's copy, so several hosts share artifacts). ``ensure`` brings such
a file in through the same temporary-file-and-rename path, keeping it only when its SHA-256 is
the one asked for; threads of one process asking for one file at once fetch it once. Bytes
refused that way are refused again without fetching for ``REFUSED_FOR`` seconds, so devices
retrying a damaged artifact do not each pull it from the database.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ota.errors import OtaError

__all__ = ["ArtifactStore", "StoredBlob", "StoreError", "SizeLimitError", "NotStoredError",
           "HashMismatchError", "Fetch", "DEFAULT_MAX_SIZE", "CHUNK_SIZE", "REFUSED_FOR"]

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
CHUNK_SIZE = 64 * 1024
REFUSED_FOR = 10.0
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".upload-"


class StoreError(OtaError):
    """The artifact folder cannot take or give a file."""


class SizeLimitError(StoreError):
    """An upload exceeded the size limit; nothing was kept."""


class NotStoredError(StoreError, KeyError):
    """No file with that SHA-256 is in the store."""


class HashMismatchError(StoreError):
    """Bytes that should have had one SHA-256 have another (tampered or damaged); not kept."""


# Chunks of the file with this SHA-256 from elsewhere, or None when there is none.
Fetch = Callable[[str], "Iterable[bytes] | None"]


@dataclass(frozen=True)
class StoredBlob:
    """A file in the store; ``created`` is False when identical content was already there."""

    sha256: str
    size: int
    path: Path
    created: bool


def _chunks(source: BinaryIO | Iterable[bytes] | bytes) -> Iterable[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(CHUNK_SIZE):
            yield chunk
        return
    yield from source  # type: ignore[misc]


class ArtifactStore:
    """A folder of files named by their SHA-256 (lowercase hex)."""

    def __init__(self, root: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE,
                 fetch: Fetch | None = None) -> None:
        self.root = Path(root)
        self.max_size = max_size
        self.fetch = fetch
        self.root.mkdir(parents=True, exist_ok=True)
        self._fetching: dict[str, threading.Lock] = {}
        self._fetching_lock = threading.Lock()
        self._refused: dict[str, tuple[float, str]] = {}  # sha256 -> (monotonic time, why)

    def path(self, sha256: str) -> Path:
        """Where the file with this SHA-256 lives (whether or not it exists)."""
        if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256):
            raise StoreError(f"{sha256!r} is not a lowercase hex SHA-256")
        return self.root / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read_bytes(self, sha256: str) -> bytes:
        """The content of a stored file (fetched first when it is only elsewhere)."""
        self.ensure(sha256)
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotStoredError(f"no artifact file {sha256}") from None

    def open(self, sha256: str) -> BinaryIO:
        """A binary file object for streaming a stored file (caller closes it)."""
        self.ensure(sha256)
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotStoredError(f"no artifact file {sha256}") from None

    def ensure(self, sha256: str) -> bool:
        """Whether the file is in the folder, fetched now when it is only elsewhere.

        ``HashMismatchError`` when the fetched bytes have another SHA-256 (nothing is kept);
        errors of ``fetch`` itself (a database that cannot be reached) pass through.
        """
        path = self.path(sha256)
        if path.is_file():
            return True
        if self.fetch is None:
            return False
        with self._fetching_lock:
            lock = self._fetching.setdefault(sha256, threading.Lock())
        try:
            with lock:  # one fetch per file per process; the others find it done
                if path.is_file():
                    return True
                refused = self._refused.get(sha256)
                if refused is not None and time.monotonic() - refused[0] < REFUSED_FOR:
                    raise HashMismatchError(refused[1])
                chunks = self.fetch(sha256)
                if chunks is None:
                    return False
                try:
                    # Bytes already accepted once: the hash decides, not this store's size limit.
                    self.put(chunks, max_size=sys.maxsize, expect_sha256=sha256)
                except HashMismatchError as e:
                    self._remember_refused(sha256, str(e))
                    raise
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()  # a generator holding a database connection lets it go now
                self._refused.pop(sha256, None)
                return True
        finally:
            # Forget the lock (unknown hashes must not pile up); a thread that comes in between
            # may fetch once more, and the rename keeps that correct.
            with self._fetching_lock:
                self._fetching.pop(sha256, None)

    def _remember_refused(self, sha256: str, why: str) -> None:
        now = time.monotonic()
        with self._fetching_lock:
            for old in [k for k, (t, _) in self._refused.items() if now - t >= REFUSED_FOR]:
                del self._refused[old]
            self._refused[sha256] = (now, why)

    def put(self, source: BinaryIO | Iterable[bytes] | bytes, *,
            max_size: int | None = None, expect_sha256: str | None = None) -> StoredBlob:
        """Stream ``source`` (file object, chunks or bytes) into the store.

        Hash while writing to a temporary file in the same folder; over ``max_size`` (default the
        store's) raise ``SizeLimitError`` and keep nothing; with ``expect_sha256``, other content
        raises ``HashMismatchError`` and keeps nothing; else fsync and rename atomically.
        """
        if expect_sha256 is not None:
            self.path(expect_sha256)  # refuse a malformed hash before writing anything
        limit = self.max_size if max_size is None else max_size
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.root)
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as f:
                for chunk in _chunks(source):
                    size += len(chunk)
                    if size > limit:
                        raise SizeLimitError(f"upload exceeds the limit of {limit} bytes")
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            sha = h.hexdigest()
            if expect_sha256 is not None and sha != expect_sha256:
                raise HashMismatchError(f"bytes for artifact {expect_sha256} have SHA-256 {sha} "
                                        f"({size} bytes): tampered or damaged, not kept")
            final = self.path(sha)
            if final.is_file():
                tmp.unlink()
                return StoredBlob(sha, size, final, created=False)
            os.replace(tmp, final)
            self._fsync_dir()
            return StoredBlob(sha, size, final, created=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, sha256: str) -> None:
        """Remove a stored file (no error when absent)."""
        self.path(sha256).unlink(missing_ok=True)
        self._fsync_dir()

    def stored(self) -> list[str]:
        """The SHA-256s of the files in the folder."""
        return sorted(p.name for p in self.root.iterdir() if _SHA_RE.fullmatch(p.name))

    def temporary_files(self) -> list[Path]:
        """Leftover temporary files (only a crash mid-upload leaves any)."""
        return sorted(self.root.glob(_TMP_PREFIX + "*"))

    def _fsync_dir(self) -> None:
        try:
            dfd = os.open(self.root, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)
