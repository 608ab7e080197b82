"""Where each shown value came from (read, write, notification, send) and the recent numeric
values per path, for the console's value table and charts.

The server keeps only the latest value and its time per path (``DeviceManager.latest``). The
console adds the source: notifications and Send records arrive as events on the server's bus
(``ValueHistory.sink``), the console's own Read and Write buttons report theirs
(``record``), and a latest value none of those explains came from a request made elsewhere
(a REST or CLI Read or Write, or the server's read at registration): source ``request``.
Numeric values are also kept as a short series per path (``series``), whatever their source,
so a chart shows every value the server saw.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..events import Event
from ..model import Path, Value

__all__ = ["ValueHistory", "Seen", "SOURCES", "MAX_POINTS"]

SOURCES = ("read", "write", "notification", "send", "request")
MAX_POINTS = 240  # per path: four minutes of one value a second
MAX_ENDPOINTS = 2000  # a large fleet keeps the history of the devices looked at last
# A notification's event is stamped a moment after its value was stored.
_SAME_MOMENT = 2.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One value as the console tells it: value, time (UTC) and source."""

    value: Any
    time: datetime
    source: str


def _numeric(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


class ValueHistory:
    """Sources and numeric series per endpoint and path (in memory, bounded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # page handlers run in threads, the sink in the loop
        self._seen: OrderedDict[str, dict[str, Seen]] = OrderedDict()
        self._series: dict[str, dict[str, deque[tuple[float, float]]]] = {}

    # --- what comes in ------------------------------------------------------------------
    def sink(self, event: Event) -> None:
        """EventBus sink: keep notification and Send values with their source."""
        if event.endpoint is None or event.kind not in ("notification", "send"):
            return
        if event.kind == "send" and isinstance(event.data.get("records"), list):
            for rec in event.data["records"]:
                ts = rec.get("time") if isinstance(rec, dict) else None
                when = datetime.fromtimestamp(ts, timezone.utc) if isinstance(ts, (int, float)) \
                    and ts else event.time
                self.record(event.endpoint, rec.get("values") or {}, "send", when)
            return
        values = event.data.get("values")
        if isinstance(values, dict):
            self.record(event.endpoint, values, event.kind, event.time)

    def record(self, endpoint: str, values: Mapping[Any, Any], source: str,
               when: datetime | None = None) -> None:
        """``values`` (path -> value) came from ``source`` at ``when`` (default now)."""
        when = _aware(when or datetime.now(timezone.utc))
        with self._lock:
            seen = self._seen.setdefault(endpoint, {})
            self._seen.move_to_end(endpoint)
            while len(self._seen) > MAX_ENDPOINTS:
                old, _ = self._seen.popitem(last=False)
                self._series.pop(old, None)
            for path, v in values.items():
                key = str(path)
                seen[key] = Seen(v, when, source)
                self._add_point(endpoint, key, when, v)

    def _add_point(self, endpoint: str, key: str, when: datetime, v: Any) -> None:
        num = _numeric(v)
        if num is None:
            return
        series = self._series.setdefault(endpoint, {}).setdefault(key, deque(maxlen=MAX_POINTS))
        t = when.timestamp()
        if series and series[-1][0] >= t:
            if series[-1][0] == t:
                return  # the same value seen again (a page refresh)
            return  # older than what the chart shows (a late Send record): keep time order
        series.append((t, num))

    # --- what goes out ------------------------------------------------------------------
    def merge(self, endpoint: str, latest: Mapping[Path, tuple[Value, datetime]]) -> dict[str, Seen]:
        """Every latest value of ``endpoint`` with its source; values none of the recorded
        sources explains get ``request`` and join the series."""
        out: dict[str, Seen] = {}
        with self._lock:
            seen = self._seen.get(endpoint, {})
            for p, (v, when) in latest.items():
                key, when = str(p), _aware(when)
                known = seen.get(key)
                if known is not None and abs((known.time - when).total_seconds()) <= _SAME_MOMENT:
                    out[key] = Seen(v, when, known.source)
                    continue
                out[key] = Seen(v, when, "request")
                self._add_point(endpoint, key, when, v)
        return out

    def series(self, endpoint: str) -> dict[str, list[list[float]]]:
        """Numeric points per path: ``[[unix seconds, value], ...]`` in time order."""
        with self._lock:
            return {k: [[t, v] for t, v in pts] for k, pts in self._series.get(endpoint, {}).items()
                    if pts}
