"""Package pulls by URI for objects 5 and 9: CoAP block2 from the device's own socket, or HTTP.

Blocks are fetched one by one (not by aiocoap's automatic block-wise), so the device can report
progress, stop at its storage limit, and simulate faults: a device that dies mid-download, or a
download that arrives corrupted. Every failure raises TransferError with a ``kind`` the update
objects map to their result codes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiocoap
import httpx
from aiocoap.optiontypes import BlockOption

from .errors import TransferError

__all__ = ["Faults", "fetch_package", "check_uri", "coap_request"]

BLOCK_SZX = 6  # 1024-byte blocks


@dataclass
class Faults:
    """Fault injection for a simulated device (fleet flags); the defaults inject nothing."""

    drop_rate: float = 0.0          # share of incoming requests silently dropped
    latency_ms: float = 0.0         # added before every answer and every request sent
    die_mid_download: bool = False  # the next download breaks off half-way
    corrupt_download: bool = False  # the next download arrives with one byte flipped
    block_timeout: float = 5.0      # seconds to wait for one block before giving up

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
    if scheme in ("coaps", "https", "coap+tcp", "coaps+tcp"):
        raise TransferError("protocol", f"{scheme} is not supported by this device (coap, http)")
    if scheme not in ("coap", "http"):
        raise TransferError("protocol", f"unknown protocol {scheme!r}")
    return scheme


async def fetch_package(uri: str, context: aiocoap.Context, max_size: int, faults: Faults,
                        progress: Callable[[int], None] = lambda n: None) -> bytes:
    """Download ``uri``; at most ``max_size`` bytes (TransferError 'size' beyond)."""
    scheme = check_uri(uri)
    die_at = None
    if faults.die_mid_download:
        faults.die_mid_download = False
        die_at = 1  # break off after the first block/chunk
    if scheme == "coap":
        data = await _fetch_coap(uri, context, max_size, faults, progress, die_at)
    else:
        data = await _fetch_http(uri, max_size, faults, progress, die_at)
    if faults.corrupt_download:
        faults.corrupt_download = False
        data = faults.corrupt(data)
    return data


async def _fetch_coap(uri: str, context: aiocoap.Context, max_size: int, faults: Faults,
                      progress: Callable[[int], None], die_at: int | None) -> bytes:
    buf = bytearray()
    num = 0
    szx = BLOCK_SZX
    while True:
        if die_at is not None and num >= die_at:
            raise TransferError("died", f"device died after {len(buf)} bytes")
        msg = aiocoap.Message(code=aiocoap.GET, uri=uri)
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
        try:
            resp = await coap_request(context, msg, faults.block_timeout, handle_blockwise=False)
        except (asyncio.TimeoutError, aiocoap.error.Error, OSError) as e:
            raise TransferError("connection", f"connection lost after {len(buf)} bytes: "
                                f"{type(e).__name__}") from None
        if resp.code == aiocoap.NOT_FOUND or resp.code == aiocoap.BAD_REQUEST:
            raise TransferError("uri", f"{uri} answered {resp.code}")
        if not resp.code.is_successful():
            raise TransferError("connection", f"{uri} answered {resp.code}")
        block = resp.opt.block2
        if block is None:
            buf = bytearray(resp.payload)
            if len(buf) > max_size:
                raise TransferError("size", f"package of {len(buf)} bytes exceeds {max_size}")
            progress(len(buf))
            return bytes(buf)
        if resp.opt.size2 is not None and resp.opt.size2 > max_size:
            raise TransferError("size", f"package of {resp.opt.size2} bytes exceeds {max_size}")
        offset = block.block_number * (1 << (block.size_exponent + 4))
        if offset != len(buf):
            raise TransferError("connection", f"block {block.block_number} out of order")
        buf += resp.payload
        if len(buf) > max_size:
            raise TransferError("size", f"package exceeds {max_size} bytes")
        progress(len(buf))
        if not block.more:
            return bytes(buf)
        szx = block.size_exponent
        num = block.block_number + 1


async def _fetch_http(uri: str, max_size: int, faults: Faults,
                      progress: Callable[[int], None], die_at: int | None) -> bytes:
    buf = bytearray()
    try:
        async with httpx.AsyncClient(timeout=faults.block_timeout, trust_env=False) as client:
            async with client.stream("GET", uri) as resp:
                if resp.status_code in (400, 404, 410):
                    raise TransferError("uri", f"{uri} answered HTTP {resp.status_code}")
                if resp.status_code != 200:
                    raise TransferError("connection", f"{uri} answered HTTP {resp.status_code}")
                length = resp.headers.get("content-length")
                if length and length.isdigit() and int(length) > max_size:
                    raise TransferError("size", f"package of {length} bytes exceeds {max_size}")
                chunks = 0
                async for chunk in resp.aiter_bytes(1024):
                    if die_at is not None and chunks >= die_at:
                        raise TransferError("died", f"device died after {len(buf)} bytes")
                    chunks += 1
                    buf += chunk
                    if len(buf) > max_size:
                        raise TransferError("size", f"package exceeds {max_size} bytes")
                    progress(len(buf))
    except httpx.HTTPError as e:
        raise TransferError("connection", f"connection lost after {len(buf)} bytes: "
                            f"{type(e).__name__}") from None
    return bytes(buf)
