"""Package pulls by URI for objects 5 and 9: CoAP block2 from the device's own socket, or HTTP.

Blocks are fetched one by one (not by aiocoap's automatic block-wise), so the device can report
progress, stop at its storage limit, and simulate faults: a device that dies mid-download, or a
download that arrives corrupted. Every failure raises TransferError with a ``kind`` the update
objects map to their result codes.

Downloads resume. The bytes received so far stay in the device's flash (``PartialDownload``)
with the URI and the package's identity (the ETag the server sent, else a SHA-256 in the URI;
a download with neither is not kept). When the same URI is pulled again - the server writes
Package URI again after a connection loss or a power cut, or the device retries on its own
after a connection loss (``Faults.download_retries``) - the device asks for the next block
(CoAP Block2 NUM = bytes held / block size) or the rest (HTTP ``Range: bytes=N-``). Held bytes
are dropped on success, for another URI, on 4.04/4.00/404 and friends, and when the server
says they are stale: another ETag or size, 4.12, 4.02 (block past the end), 416; the download
then starts again from the first byte, once. A connection loss or power cut keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiocoap
import httpx
from aiocoap.credentials import CredentialsMissingError
from aiocoap.optiontypes import BlockOption

from ..coap.rawmsg import OPT_BLOCK2, OPT_ETAG, OPT_SIZE2
from .dtls import DTLS_ERRORS
from .errors import StorageError, TransferError
from .rawget import RawGets
from .storage import PartialDownload, PartialInfo

__all__ = ["Faults", "fetch_package", "check_uri", "coap_request"]

BLOCK_SZX = 6  # 1024-byte blocks


@dataclass
class Faults:
    """Fault injection for a simulated device (fleet flags); the defaults inject nothing."""

    drop_rate: float = 0.0          # share of incoming requests silently dropped
    latency_ms: float = 0.0         # added before every answer and every request sent
    die_mid_download: bool = False  # the next download breaks off (power loss) ...
    die_after: float = 0.0          # ... after this share of the package (0: its first block)
    corrupt_download: bool = False  # the next download arrives with one byte flipped
    block_timeout: float = 5.0      # seconds to wait for one block before giving up
    # A device that retries a download itself after a connection loss (after reporting it):
    download_retries: int = 0       # how many times (0: it waits for the server to retry)
    retry_after: float = 1.0        # seconds after the loss

    def corrupt(self, data: bytes) -> bytes:
        if not data:
            return data
        i = random.randrange(len(data))
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def _consume(fut: asyncio.Future[aiocoap.Message]) -> None:
    if not fut.cancelled():
        fut.exception()


async def coap_request(context: aiocoap.Context, msg: aiocoap.Message, timeout: float,
                       handle_blockwise: bool = True) -> aiocoap.Message:
    """Send ``msg`` and wait at most ``timeout`` seconds for the response.

    The response future is shielded: cancelling it would make aiocoap fail when the context
    shuts down later (it sets the exception of every pending request).
    """
    fut = context.request(msg, handle_blockwise=handle_blockwise).response
    fut.add_done_callback(_consume)
    return await asyncio.wait_for(asyncio.shield(fut), timeout)


def check_uri(uri: str) -> str:
    """The scheme of a package URI we can pull from; TransferError 'uri' or 'protocol' if not."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise TransferError("uri", f"invalid package URI {uri!r}: {e}") from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        raise TransferError("uri", f"invalid package URI {uri!r}: scheme and host are required")
    if scheme in ("https", "coap+tcp", "coaps+tcp"):
        raise TransferError("protocol", f"{scheme} is not supported by this device (coap, coaps, http)")
    if scheme not in ("coap", "coaps", "http"):
        raise TransferError("protocol", f"unknown protocol {scheme!r}")
    return scheme


async def fetch_package(uri: str, context: aiocoap.Context, max_size: int, faults: Faults,
                        progress: Callable[[int], None] = lambda n: None,
                        partial: PartialDownload | None = None,
                        raw: RawGets | None = None) -> bytes:
    """Download ``uri``; at most ``max_size`` bytes (TransferError 'size' beyond).

    With ``partial`` the download resumes from the bytes held for ``uri`` and keeps what it
    receives there until it completes or fails for good (see the module docstring). With
    ``raw`` (the device's socket) plain CoAP blocks are fetched without aiocoap's request
    machinery (sim/rawget.py); coaps and URIs with a host name or a query go through ``context``.
    """
    scheme = check_uri(uri)
    die = faults.die_mid_download
    faults.die_mid_download = False
    fetch: Callable[[_Received, bool], Awaitable[bytes]]
    if scheme in ("coap", "coaps"):
        ask = (_raw_asker(uri, raw, faults.block_timeout) if raw is not None else None) \
            or _aiocoap_asker(uri, context, faults.block_timeout)

        def fetch(got: _Received, die: bool) -> Awaitable[bytes]:
            return _fetch_coap(uri, ask, faults, got, die)
    else:
        def fetch(got: _Received, die: bool) -> Awaitable[bytes]:
            return _fetch_http(uri, faults, got, die)
    try:
        got = _Received(uri, partial, max_size, progress)
        try:
            data = await fetch(got, die)
        except _Stale as e:
            # The held bytes belong to another package: start again from the first byte, once.
            got.restart()
            try:
                data = await fetch(got, die)
            except _Stale as e2:
                raise TransferError("connection", f"{uri} changed during the download: {e2}") from e
        got.finish()
    except (TransferError, StorageError) as e:
        err = e if isinstance(e, TransferError) else TransferError(
            "size", f"cannot keep the download in flash: {e}")
        if err.kind not in ("connection", "died") and partial is not None:
            with contextlib.suppress(StorageError):  # a failure for good: nothing to resume
                partial.drop()
        raise err from None
    if faults.corrupt_download:
        faults.corrupt_download = False
        data = faults.corrupt(data)
    return data


_SHA_IN_URI = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


class _Stale(Exception):
    """The server says the held bytes are not (or no longer) its package's."""


class _Received:
    """The bytes of one download so far, mirrored into the device's partial-download file."""

    def __init__(self, uri: str, partial: PartialDownload | None, max_size: int,
                 progress: Callable[[int], None]) -> None:
        self.uri = uri
        self.partial = partial
        self.max_size = max_size
        self.progress = progress
        held = partial.load(uri) if partial is not None else None
        if held is None and partial is not None:
            partial.drop()  # another URI's bytes, or nothing
        self.info: PartialInfo | None = held[0] if held else None
        self.buf = bytearray(held[1]) if held else bytearray()
        self.resumed_at = len(self.buf)
        self._keep = held is not None

    def check(self, etag: str, total: int | None) -> None:
        """Check the identity a response carries; the first one starts keeping the bytes."""
        if total is not None and total > self.max_size:
            raise TransferError("size", f"package of {total} bytes exceeds {self.max_size}")
        if self.info is None:
            self.info = PartialInfo(self.uri, etag, total)
            self._keep = self.partial is not None and bool(etag or _SHA_IN_URI.search(self.uri))
            if self._keep:
                assert self.partial is not None
                self.partial.begin(self.info)
            return
        if self.info.etag and etag and etag != self.info.etag:
            raise _Stale(f"ETag {etag} is not {self.info.etag}")
        if self.info.total is not None and total is not None and total != self.info.total:
            raise _Stale(f"size {total} is not {self.info.total}")

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > self.max_size:
            raise TransferError("size", f"package exceeds {self.max_size} bytes")
        if self._keep:
            assert self.partial is not None
            self.partial.append(data)
        self.progress(len(self.buf))

    def died_at(self, die: bool, after: float, total: int | None) -> int | None:
        """Where a device told to die mid-download breaks off: after the share ``after`` of
        ``total``, and at least one block (or chunk) after where it started."""
        if not die:
            return None
        return max(len(self.buf), self.resumed_at + 1, int((total or 0) * after))

    def restart(self) -> None:
        self.buf.clear()
        self.info = None
        self.resumed_at = 0
        self._keep = False
        if self.partial is not None:
            self.partial.drop()

    def finish(self) -> None:
        if self.partial is not None:
            self.partial.drop()


def _szx_for(held: int) -> int:
    """The largest block size (up to 1024) that ``held`` bytes are a whole number of blocks of."""
    szx = BLOCK_SZX
    while szx > 0 and held % (1 << (szx + 4)):
        szx -= 1
    return szx


@dataclass(slots=True)
class _Answer:
    """One block's answer, however it was fetched."""

    code: aiocoap.Code
    block2: tuple[int, bool, int] | None  # (number, more, size exponent)
    etag: str  # hex, "" when none
    size2: int | None
    payload: bytes


BlockAsker = Callable[[int, int], Awaitable[_Answer]]  # (number, size exponent) -> answer


def _aiocoap_asker(uri: str, context: aiocoap.Context, timeout: float) -> BlockAsker:
    async def ask(num: int, szx: int) -> _Answer:
        msg = aiocoap.Message(code=aiocoap.GET, uri=uri)
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
        resp = await coap_request(context, msg, timeout, handle_blockwise=False)
        b = resp.opt.block2
        return _Answer(resp.code, (b.block_number, bool(b.more), b.size_exponent) if b else None,
                       resp.opt.etag.hex() if resp.opt.etag else "", resp.opt.size2,
                       bytes(resp.payload))
    return ask


def _raw_asker(uri: str, raw: RawGets, timeout: float) -> BlockAsker | None:
    """Blocks by ``raw`` for a coap:// URI to an IP address with a path and nothing else (no
    Uri-Host, no query: what aiocoap would send for it is then exactly Uri-Path and Block2);
    None for any other URI."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme.lower() != "coap" or parts.query or parts.fragment or parts.username:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    port = parts.port or 5683
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    segments = tuple(unquote(seg) for seg in path.split("/")) if path else ()

    async def ask(num: int, szx: int) -> _Answer:
        msg = await raw.get(host, port, segments, num << 4 | szx, timeout)
        b = msg.option(OPT_BLOCK2)
        block = None
        if b is not None:
            v = int.from_bytes(b, "big")
            block = (v >> 4, bool(v & 0x08), v & 0x07)
        size2 = msg.option(OPT_SIZE2)
        etag = msg.option(OPT_ETAG)
        return _Answer(aiocoap.Code(msg.code), block, etag.hex() if etag else "",
                       int.from_bytes(size2, "big") if size2 is not None else None, msg.payload)
    return ask


async def _fetch_coap(uri: str, ask: BlockAsker, faults: Faults, got: _Received,
                      die: bool) -> bytes:
    szx = _szx_for(len(got.buf))
    die_at: int | None = None
    while True:
        if die_at is not None and len(got.buf) >= die_at:
            raise TransferError("died", f"device died after {len(got.buf)} bytes")
        resuming = len(got.buf) > 0
        num = len(got.buf) >> (szx + 4)
        try:
            resp = await ask(num, szx)
        except CredentialsMissingError:
            raise TransferError("protocol", f"{uri}: this device has no DTLS credentials for that "
                                "server") from None
        except (asyncio.TimeoutError, aiocoap.error.Error, OSError, *DTLS_ERRORS) as e:
            raise TransferError("connection", f"connection lost after {len(got.buf)} bytes: "
                                f"{type(e).__name__}") from None
        if resuming and resp.code in (aiocoap.PRECONDITION_FAILED, aiocoap.BAD_OPTION):
            raise _Stale(f"{uri} answered {resp.code} for block {num}")
        if resp.code == aiocoap.NOT_FOUND or resp.code == aiocoap.BAD_REQUEST:
            raise TransferError("uri", f"{uri} answered {resp.code}")
        if not resp.code.is_successful():
            raise TransferError("connection", f"{uri} answered {resp.code}")
        block = resp.block2
        if block is None:
            if resuming:  # the whole package in one answer: nothing to resume
                got.restart()
            got.check(resp.etag, len(resp.payload))
            got.add(resp.payload)
            return bytes(got.buf)
        got.check(resp.etag, resp.size2)
        number, more, size_exponent = block
        offset = number * (1 << (size_exponent + 4))
        if offset != len(got.buf):
            raise TransferError("connection", f"block {number} out of order")
        got.add(resp.payload)
        if not more:
            return bytes(got.buf)
        if die_at is None:
            die_at = got.died_at(die, faults.die_after, resp.size2)
        szx = size_exponent


def _http_total(resp: httpx.Response) -> int | None:
    """The package size from Content-Range (206) or Content-Length (200)."""
    if resp.status_code == 206:
        total = resp.headers.get("content-range", "").rpartition("/")[2]
    else:
        total = resp.headers.get("content-length", "")
    return int(total) if total.isdigit() else None


async def _fetch_http(uri: str, faults: Faults, got: _Received, die: bool) -> bytes:
    start = len(got.buf)
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        async with httpx.AsyncClient(timeout=faults.block_timeout, trust_env=False) as client:
            async with client.stream("GET", uri, headers=headers) as resp:
                if start and resp.status_code == 416:
                    raise _Stale(f"{uri} answered HTTP 416 for bytes {start}-")
                if resp.status_code in (400, 404, 410):
                    raise TransferError("uri", f"{uri} answered HTTP {resp.status_code}")
                if resp.status_code not in (200, 206) or (resp.status_code == 206 and not start):
                    raise TransferError("connection", f"{uri} answered HTTP {resp.status_code}")
                if start and resp.status_code == 200:  # the server ignored Range: from byte 0
                    got.restart()
                elif start and not resp.headers.get("content-range", "").startswith(
                        f"bytes {start}-"):
                    raise TransferError("connection", f"{uri} sent another range than bytes {start}-")
                total = _http_total(resp)
                got.check(resp.headers.get("etag", ""), total)
                die_at = got.died_at(die, faults.die_after, total)
                async for chunk in resp.aiter_bytes(1024):
                    if die_at is not None and len(got.buf) >= die_at:
                        raise TransferError("died", f"device died after {len(got.buf)} bytes")
                    got.add(chunk)
    except httpx.HTTPError as e:
        raise TransferError("connection", f"connection lost after {len(got.buf)} bytes: "
                            f"{type(e).__name__}") from None
    return bytes(got.buf)
