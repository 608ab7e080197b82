"""Bounded duplicate detection for the server's CoAP message layer (RFC 7252 §4.5).

aiocoap remembers every received (peer, message id) with the answer for EXCHANGE_LIFETIME
(247 s) and schedules one timer per message to forget it, and logs every duplicate at INFO. Under
a flood that is memory in proportion to the datagram rate times 247 s (a fuzz run at 2,400
datagrams/s grew the process by 175 MiB in 30 s). ``RecentMessages`` keeps the same answers for
the same time without a timer each, and at most ``max_entries`` of them (the oldest go first:
only a retransmission older than the newest ``max_entries`` messages is then served again
instead of being answered from the cache).

The answers are kept encoded (bytes): aiocoap keeps the response Message, which holds its request
and their options, about twenty objects per exchange that Python's cycle collector walks over
again and again (a fifth of a Register's CPU went to garbage collection with 20,000 of them).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from aiocoap import Message
from aiocoap.message import Direction
from aiocoap.numbers.types import Type

__all__ = ["RecentMessages", "install_bounded_deduplication", "DEDUP_ENTRIES"]

DEDUP_ENTRIES = 20_000
EXCHANGE_LIFETIME = 247.0


class RecentMessages:
    """(peer, message id) -> the answer sent (or None yet), for ``lifetime`` seconds, bounded."""

    def __init__(self, lifetime: float = EXCHANGE_LIFETIME, max_entries: int = DEDUP_ENTRIES) -> None:
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, list[Any]] = OrderedDict()  # key -> [expires, answer]

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        now = time.monotonic()
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if first[0] > now and len(entries) <= self.max_entries:
                return
            entries.popitem(last=False)

    def __contains__(self, key: Any) -> bool:
        self._expire()
        return key in self._entries

    def __getitem__(self, key: Any) -> Any:
        return self._entries[key][1]

    def __setitem__(self, key: Any, answer: Any) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry[1] = answer
            return
        self._entries[key] = [time.monotonic() + self.lifetime, answer]
        self._expire()

    def pop(self, key: Any, default: Any = None) -> Any:
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None else default


def install_bounded_deduplication(manager: Any, max_entries: int = DEDUP_ENTRIES) -> RecentMessages:
    """Give aiocoap's message manager ``manager`` a RecentMessages in place of its own."""
    recent = RecentMessages(max_entries=max_entries)

    def deduplicate(message: Any) -> bool:
        key = (message.remote, message.mid)
        if key in recent:
            answer = recent[key]
            if message.mtype is Type.CON and answer is not None:
                # The same answer again, as aiocoap does (an ACK: its message id is the request's).
                again = Message.decode(answer, message.remote.as_response_address())
                again.direction = Direction.OUTGOING
                manager._send_via_transport(again)
            return True
        recent[key] = None
        return False

    def store(answer: Any) -> None:
        key = (answer.remote, answer.mid)
        if key in recent:
            recent[key] = answer.encode()

    manager._recent_messages = recent
    manager._deduplicate_message = deduplicate
    manager._store_response_for_duplicates = store
    return recent
