"""Notification attributes (LwM2M 1.1 §5.1.2) and the per-observation notify schedule.

``Attributes`` are attached to paths by Write-Attributes; an observation uses the merge of the
object, instance and resource levels (the more specific wins), with pmin/pmax defaulting to
the Server object's. ``Observation`` decides when to notify: never sooner than pmin after the
last notification, at the latest pmax after it, and in between when the value changed - for a
numeric resource with gt/lt/st, only when it crossed gt or lt or moved by at least st.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

from ..model import Path, Value
from .errors import BAD_REQUEST, RequestError

__all__ = ["Attributes", "parse_attributes", "Observation", "qualifies"]

_NUMERIC = ("gt", "lt", "st")


@dataclass(frozen=True, slots=True)
class Attributes:
    """Notification attributes; None means 'not set at this level'."""

    pmin: float | None = None
    pmax: float | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: float | None = None
    epmax: float | None = None

    def merged(self, more_specific: Attributes) -> Attributes:
        return Attributes(**{f.name: getattr(more_specific, f.name)
                             if getattr(more_specific, f.name) is not None else getattr(self, f.name)
                             for f in fields(self)})

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def parse_attributes(query: list[str], path: Path, current: Attributes,
                     numeric: bool) -> Attributes:
    """Apply Write-Attributes query items (``pmin=5``, ``gt=20.5``, ``st`` to unset) to ``current``.

    RequestError (4.00) for unknown names, bad numbers, gt/lt/st where they do not apply, or
    inconsistent values (pmax < pmin, lt + 2*st >= gt).
    """
    changes: dict[str, float | None] = {}
    names = {f.name for f in fields(Attributes)}
    for item in query:
        name, sep, text = item.partition("=")
        if name not in names:
            raise RequestError(BAD_REQUEST, f"unknown attribute {name!r}")
        if not sep:
            changes[name] = None
            continue
        try:
            v = float(text)
        except ValueError:
            raise RequestError(BAD_REQUEST, f"attribute {name} needs a number, got {text!r}") from None
        if not math.isfinite(v) or (name in ("pmin", "pmax", "epmin", "epmax", "st") and v < 0):
            raise RequestError(BAD_REQUEST, f"attribute {name}={text} is out of range")
        if name in ("pmin", "pmax", "epmin", "epmax") and not v.is_integer():
            raise RequestError(BAD_REQUEST, f"attribute {name} is a whole number of seconds")
        changes[name] = v
    if any(n in changes for n in _NUMERIC) and (path.level < 3 or not numeric):
        raise RequestError(BAD_REQUEST, f"gt, lt and st apply to numeric resources only, not {path}")
    new = replace(current, **changes)
    if new.pmin is not None and new.pmax is not None and new.pmax < new.pmin:
        raise RequestError(BAD_REQUEST, f"pmax {new.pmax} is smaller than pmin {new.pmin}")
    if new.gt is not None and new.lt is not None:
        if new.lt >= new.gt or (new.st is not None and new.lt + 2 * new.st >= new.gt):
            raise RequestError(BAD_REQUEST, "lt must be below gt by more than 2*st")
    return new


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def qualifies(attrs: Attributes, last: Mapping[Path, Value], now: Mapping[Path, Value]) -> bool:
    """Whether a change from ``last`` (the value last notified) to ``now`` is worth a notification."""
    if dict(last) == dict(now):
        return False
    conditional = attrs.gt is not None or attrs.lt is not None or attrs.st is not None
    if not conditional or len(now) != 1 or len(last) != 1:
        return True
    a, b = _num(next(iter(last.values()))), _num(next(iter(now.values())))
    if a is None or b is None:
        return True
    for limit in (attrs.gt, attrs.lt):
        if limit is not None and (a > limit) != (b > limit):
            return True
    return attrs.st is not None and abs(b - a) >= attrs.st


class Observation:
    """One accepted observation: notify via ``send`` when the schedule says so."""

    def __init__(self, path: Path, attrs: Callable[[], Attributes],
                 current: Callable[[], dict[Path, Value]], send: Callable[[], None]) -> None:
        self.path = path
        self._attrs = attrs
        self._current = current
        self._send = send
        self.last_values: dict[Path, Value] = {}
        self.last_sent = 0.0
        self.notifications = 0
        self._timer: asyncio.TimerHandle | None = None
        self._pmax_timer: asyncio.TimerHandle | None = None
        self.closed = False

    def started(self, values: dict[Path, Value]) -> None:
        """The first answer went out with ``values``."""
        self.last_values = values
        self.last_sent = time.monotonic()
        self._arm_pmax()

    def changed(self) -> None:
        """Something under the path may have changed: notify now, at pmin, or not at all."""
        if self.closed or self._timer is not None:
            return
        try:
            values = self._current()
        except RequestError:
            values = {}
        attrs = self._attrs()
        if not qualifies(attrs, self.last_values, values):
            return
        wait = (attrs.pmin or 0.0) - (time.monotonic() - self.last_sent)
        if wait > 0:
            self._timer = asyncio.get_running_loop().call_later(wait, self._due)
        else:
            self._notify(values)

    def _due(self) -> None:
        self._timer = None
        self.changed()

    def _arm_pmax(self) -> None:
        if self._pmax_timer is not None:
            self._pmax_timer.cancel()
            self._pmax_timer = None
        attrs = self._attrs()
        if attrs.pmax and attrs.pmax > 0 and not self.closed:
            wait = max(attrs.pmax, attrs.pmin or 0.0)
            self._pmax_timer = asyncio.get_running_loop().call_later(wait, self._pmax_due)

    def _pmax_due(self) -> None:
        self._pmax_timer = None
        try:
            values = self._current()
        except RequestError:
            values = {}
        self._notify(values)

    def _notify(self, values: dict[Path, Value]) -> None:
        if self.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.last_values = values
        self.last_sent = time.monotonic()
        self.notifications += 1
        self._send()
        self._arm_pmax()

    def close(self) -> None:
        self.closed = True
        for t in (self._timer, self._pmax_timer):
            if t is not None:
                t.cancel()
        self._timer = self._pmax_timer = None
