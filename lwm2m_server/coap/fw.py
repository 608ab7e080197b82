"""CoAP ``/fw/<sha256>``: artifact bytes for device downloads, in Block2 blocks.

Each block request is answered on its own from the artifact file, mapped into memory once (a
block is a slice: no system call, no file read per block), with no per-download state on the
server: a device that lost its link, rebooted, or talks to a
restarted server asks for the block where it stopped and gets it. Blocks are 1024 bytes unless
the device asks for smaller ones (RFC 7959 Block2 size negotiation). The first block carries
Size2 (the total size) and every block an ETag (the first 8 bytes of the SHA-256), so a
device notices when a URL would ever serve other bytes.

A file that is not in this process's folder is brought in by ``fetch`` (from the database in
a PostgreSQL cluster), in a worker thread; when that fails (bytes whose SHA-256 differs, a
database that cannot be reached) the error is logged and the device gets 5.03.

``DownloadTracker`` remembers how far each device got (by address), for rollout progress.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path as FsPath

from aiocoap import Code, Message
from aiocoap.numbers.contentformat import ContentFormat
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import PathCapable, Resource

from ..metrics import ROLLOUT_BYTES
from .datagrams import host_port
from .rawmsg import (CONTENT, OPT_BLOCK2, OPT_CONTENT_FORMAT, OPT_ETAG, OPT_SIZE2, RawGet,
                      encode_uint)

__all__ = ["FwResource", "DownloadTracker", "DEFAULT_SZX"]

DEFAULT_SZX = 6  # 1024-byte blocks
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_OCTETSTREAM = encode_uint(int(ContentFormat.OCTETSTREAM))

log = logging.getLogger(__name__)


class DownloadTracker:
    """Highest byte each peer fetched of each artifact (bounded LRU), shared by CoAP and HTTP."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._max = max_entries
        self._seen: OrderedDict[tuple[str, str, int | None], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()  # the HTTP side may record from a worker thread
        self.bytes_sent = 0

    def record(self, sha256: str, host: str, port: int | None, end: int, total: int,
               sent: int) -> None:
        key = (sha256, host, port)
        with self._lock:
            prev = self._seen.pop(key, (0, total))
            self._seen[key] = (max(prev[0], end), total)
            self.bytes_sent += sent
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        ROLLOUT_BYTES.inc("http" if port is None else "coap", amount=sent)

    def fraction(self, sha256: str, address: tuple[str, int] | None) -> float | None:
        """How much of ``sha256`` the device at ``address`` fetched (0..1), None if unknown."""
        if address is None:
            return None
        with self._lock:
            got = self._seen.get((sha256, address[0], address[1]))
            if got is None:
                got = self._seen.get((sha256, address[0], None))
        if got is None or got[1] <= 0:
            return None
        return min(1.0, got[0] / got[1])


def _peer(remote: object) -> tuple[str, int | None]:
    sockaddr = getattr(remote, "sockaddr", None)
    if not sockaddr:
        return str(getattr(remote, "hostinfo", "?")), None
    return host_port(sockaddr)


def _error(code: Code, text: str) -> Message:
    return Message(code=code, payload=text.encode("utf-8"))


class _FileCache:
    """A few artifact files mapped into memory, by SHA-256 (artifact files never change under
    their name), with each file's size and ETag: a block costs one slice."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._files: OrderedDict[str, tuple[mmap.mmap | bytes, int, bytes]] = OrderedDict()

    def get(self, sha256: str, path_for: Callable[[str], FsPath]
            ) -> tuple[mmap.mmap | bytes, int, bytes] | None:
        hit = self._files.get(sha256)
        if hit is not None:
            self._files.move_to_end(sha256)
            return hit
        try:
            fd = os.open(path_for(sha256), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            # An empty file cannot be mapped; the pages of a mapped one stay the kernel's to
            # keep or drop (the page cache), so mapping costs no memory of ours.
            data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else b""
        finally:
            os.close(fd)
        entry = (data, size, bytes.fromhex(sha256[:16]))
        self._files[sha256] = entry
        while len(self._files) > self._size:
            _sha, (old, _n, _etag) = self._files.popitem(last=False)
            if isinstance(old, mmap.mmap):
                old.close()
        return entry

    def forget(self, sha256: str) -> None:
        """Unmap one file (its artifact was deleted)."""
        entry = self._files.pop(sha256, None)
        if entry is not None and isinstance(entry[0], mmap.mmap):
            entry[0].close()

    def close(self) -> None:
        for data, _n, _etag in self._files.values():
            if isinstance(data, mmap.mmap):
                data.close()
        self._files.clear()


class FwResource(Resource, PathCapable):
    """GET ``/fw/<sha256>`` with Block2; ``path_for(sha256)`` says where the artifact file is.

    ``fetch(sha256)``, when given, brings a file that is not there yet and says whether it
    exists (``ArtifactStore.ensure``); it may block, so it runs in a worker thread.
    Mount it under ``fw`` in a Site, or dispatch to it with the full ``("fw", sha)`` path.
    """

    def __init__(self, path_for: Callable[[str], FsPath], *,
                 tracker: DownloadTracker | None = None, max_szx: int = DEFAULT_SZX,
                 fetch: Callable[[str], bool] | None = None) -> None:
        super().__init__()
        self._path_for = path_for
        self._fetch = fetch
        self.tracker = tracker
        self._max_szx = max_szx
        self._files = _FileCache()

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False  # every block is answered on its own

    def get_link_description(self) -> dict[str, str] | None:
        return None

    def forget(self, sha256: str) -> None:
        """Stop serving ``sha256`` from memory (its artifact was deleted; the file goes too)."""
        self._files.forget(sha256)

    def close(self) -> None:
        self._files.close()

    async def render(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        if path[:1] == ("fw",):
            path = path[1:]
        if request.code != Code.GET:
            return _error(Code.METHOD_NOT_ALLOWED, "only GET is allowed on /fw/<sha256>")
        if len(path) != 1 or not _SHA_RE.fullmatch(path[0]):
            return _error(Code.NOT_FOUND, "use /fw/<sha256> with a lowercase hex SHA-256")
        sha = path[0]
        entry = self._files.get(sha, self._path_for)
        if entry is None and self._fetch is not None:
            try:
                if await asyncio.to_thread(self._fetch, sha):
                    entry = self._files.get(sha, self._path_for)
            except Exception as e:  # noqa: BLE001 - whatever failed, the device gets 5.03
                log.error("artifact %s cannot be served over CoAP: %s", sha, e)
                return _error(Code.SERVICE_UNAVAILABLE, f"artifact {sha} cannot be served now")
        if entry is None:
            return _error(Code.NOT_FOUND, f"no artifact {sha}")
        total, etag = entry[1], entry[2]
        block2 = request.opt.block2
        if block2 is None:
            got = self._block(entry, 0, self._max_szx)
        else:
            got = self._block(entry, block2.block_number, block2.size_exponent)
        if got is None:
            num = block2.block_number if block2 is not None else 0
            return _error(Code.BAD_OPTION, f"block {num} is past the end ({total} bytes)")
        num, szx, start, chunk, more = got
        msg = Message(code=Code.CONTENT, payload=chunk, content_format=ContentFormat.OCTETSTREAM)
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, more, szx)
        msg.opt.etag = etag
        if num == 0:
            msg.opt.size2 = total
        if self.tracker is not None:
            host, port = _peer(request.remote)
            self.tracker.record(sha, host, port, start + len(chunk), total, len(chunk))
        return msg

    def _block(self, entry: tuple[mmap.mmap | bytes, int, bytes], num: int, asked_szx: int
               ) -> tuple[int, int, int, bytes, bool] | None:
        """(number, size exponent, start, bytes, more) of the block asked for, in our block
        size; None when it starts past the end."""
        data, total, _etag = entry
        szx = min(asked_szx, self._max_szx)
        if asked_szx > szx:
            # The device asked for larger blocks than we send: renumber to our size (RFC 7959 §2.4).
            num = num * (1 << (asked_szx - szx))
        size = 1 << (szx + 4)
        start = num * size
        if start >= total and not (start == 0 and total == 0):
            return None
        chunk = data[start:start + size]
        return num, szx, start, chunk, start + len(chunk) < total

    def answer_get(self, request: RawGet, host: str, port: int
                   ) -> tuple[int, list[tuple[int, bytes]], bytes] | None:
        """The answer to a plain block GET read straight off its datagram (coap/rawmsg.py):
        (code, options, payload), or None to leave it to ``render`` (an artifact not in this
        process's folder yet, a block past the end, an empty file, a reserved block size)."""
        path = request.path
        if len(path) != 2 or path[0] != "fw" or not _SHA_RE.fullmatch(path[1]):
            return None
        sha = path[1]
        entry = self._files.get(sha, self._path_for)
        if entry is None or entry[1] == 0:
            return None
        if request.block2 is None:
            num, asked = 0, self._max_szx
        else:
            num, asked = request.block2 >> 4, request.block2 & 0x07
            if asked == 7:  # reserved (RFC 7959 §2.2; BERT is for CoAP over TCP only)
                return None
        got = self._block(entry, num, asked)
        if got is None:
            return None
        num, szx, start, chunk, more = got
        total, etag = entry[1], entry[2]
        options = [(OPT_ETAG, etag), (OPT_CONTENT_FORMAT, _OCTETSTREAM),
                   (OPT_BLOCK2, encode_uint(num << 4 | more << 3 | szx))]
        if num == 0:
            options.append((OPT_SIZE2, encode_uint(total)))
        if self.tracker is not None:
            self.tracker.record(sha, host, port, start + len(chunk), total, len(chunk))
        return CONTENT, options, chunk
