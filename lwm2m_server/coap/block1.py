"""Block1 (RFC 7959) assembly of requests to the server's resources, bounded in size and memory.

aiocoap's own spool keeps appending blocks without a limit (a Register of 3,000 blocks of 1 KiB
got 2.31 Continue for each) and turns a gap in the sequence into an empty 5.00 with a traceback.
``BoundedBlock1Spool`` takes its place on the site (aiocoap calls ``feed_and_take`` for every
request of a resource that wants block-wise assembly):

- 4.13 Request Entity Too Large with Size1 (the limit) as soon as the announced (Size1) or the
  assembled size passes ``max_payload``, and the partial body is dropped;
- 4.08 Request Entity Incomplete for a block that does not continue the assembly (a gap, an
  overlap, or no block 0 first);
- at most ``max_assemblies`` bodies in progress and ``max_total`` bytes buffered at once; the
  oldest assembly gives way (its client gets 4.08 and starts again), and each expires after
  EXCHANGE_LIFETIME-like ``lifetime`` seconds without a block.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from aiocoap import Message
from aiocoap.blockwise import ContinueException
from aiocoap.error import ConstructionRenderableError
from aiocoap.numbers import codes
from aiocoap.numbers.optionnumbers import OptionNumber

__all__ = ["BoundedBlock1Spool", "TooLarge", "Incomplete"]


class TooLarge(ConstructionRenderableError):
    """4.13 with Size1: the largest body this server takes (RFC 7959 §2.9.3, RFC 7252 §5.10.9)."""

    code = codes.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int, message: str) -> None:
        super().__init__(message)
        self.limit = limit

    def to_message(self) -> Message:
        m = super().to_message()
        m.opt.size1 = self.limit
        return m


class Incomplete(ConstructionRenderableError):
    """4.08: the block does not continue a body in progress."""

    code = codes.REQUEST_ENTITY_INCOMPLETE


def _key(req: Message) -> Any:
    """What all blocks of one body share: the peer, the method and the options but Block1/2."""
    return (req.remote.blockwise_key, req.code,
            req.get_cache_key([OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE]))


class BoundedBlock1Spool:
    """Drop-in for ``aiocoap.blockwise.Block1Spool`` with the bounds of the module docstring."""

    def __init__(self, max_payload: int, *, max_assemblies: int = 256,
                 max_total: int = 16 * 1024 * 1024, lifetime: float = 247.0) -> None:
        self.max_payload = max_payload
        self.max_assemblies = max_assemblies
        self.max_total = max_total
        self.lifetime = lifetime
        self._assemblies: OrderedDict[Any, tuple[Message, float]] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return len(self._assemblies)

    @property
    def buffered(self) -> int:
        """Bytes held in bodies in progress."""
        return self._total

    def _drop(self, key: Any) -> None:
        entry = self._assemblies.pop(key, None)
        if entry is not None:
            self._total -= len(entry[0].payload)

    def _expire(self, now: float) -> None:
        while self._assemblies:
            key, (_, touched) = next(iter(self._assemblies.items()))
            if now - touched < self.lifetime and len(self._assemblies) <= self.max_assemblies \
                    and self._total <= self.max_total:
                return
            self._drop(key)

    def _too_large(self, size: int) -> TooLarge:
        return TooLarge(self.max_payload, f"request body of {size} bytes or more is larger than "
                                          f"{self.max_payload} bytes")

    def feed_and_take(self, req: Message) -> Message:
        """The whole request once its last block is in; raises 2.31 Continue, 4.08 or 4.13."""
        block1 = req.opt.block1
        if block1 is None:
            return req
        now = time.monotonic()
        key = _key(req)
        if block1.block_number == 0:
            self._drop(key)  # a new body replaces one in progress
            if req.opt.size1 is not None and req.opt.size1 > self.max_payload:
                raise self._too_large(req.opt.size1)
            if len(req.payload) > self.max_payload:
                raise self._too_large(len(req.payload))
            assembly = req
        else:
            entry = self._assemblies.get(key)
            if entry is None:
                raise Incomplete("no body in progress for this block: start again with block 0")
            assembly = entry[0]
            end = block1.start + len(req.payload)
            if end > self.max_payload:
                self._drop(key)
                raise self._too_large(end)
            before = len(assembly.payload)
            try:
                assembly._append_request_block(req)
            except ValueError:  # a gap or an overlap (BadRequest for a wrong size passes through)
                self._drop(key)
                raise Incomplete(f"block {block1.block_number} starts at byte {block1.start}, "
                                 f"the body so far has {before}: start again with block 0") from None
            self._total -= before
            del self._assemblies[key]
        if not block1.more:
            self._drop(key)
            return assembly
        self._assemblies[key] = (assembly, now)
        self._total += len(assembly.payload)
        self._expire(now)
        raise ContinueException(block1)
