"""The latest value per path of each device, with when it arrived (read, notification, Send),
kept in memory for quick answers and written through to the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..model import Path, Value

__all__ = ["LatestValues"]


class LatestValues:
    """Latest values per endpoint; ``store`` persists them (``save_values_nowait``, ``load_latest``)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._latest: dict[str, dict[Path, tuple[Value, datetime]]] = {}

    def of(self, endpoint: str) -> dict[Path, tuple[Value, datetime]]:
        """A copy of ``endpoint``'s latest values."""
        return dict(self._latest.get(endpoint, {}))

    def paths(self, endpoint: str) -> Iterable[Path]:
        """The paths ``endpoint`` has a latest value for."""
        return self._latest.get(endpoint, {}).keys()

    def put(self, endpoint: str, values: Mapping[Path, Value], when: datetime | None = None) -> None:
        """Keep ``values`` as ``endpoint``'s latest (arrived now unless ``when`` says otherwise)."""
        if not values:
            return
        when = when or datetime.now(timezone.utc)
        latest = self._latest.setdefault(endpoint, {})
        for p, v in values.items():
            latest[p] = (v, when)
        self._store.save_values_nowait(endpoint, values, when)

    def apply_remote(self, endpoint: str, values: Mapping[Path, Value], when: datetime) -> None:
        """Another process of the cluster stored these values (it keeps them in the store)."""
        latest = self._latest.setdefault(endpoint, {})
        for p, v in values.items():
            latest[p] = (v, when)

    def drop_under(self, endpoint: str, path: Path) -> None:
        """Forget the values under ``path`` (the device deleted that instance)."""
        latest = self._latest.get(endpoint)
        if latest:
            for p in [p for p in latest if p.starts_with(path)]:
                del latest[p]

    def drop(self, endpoint: str) -> None:
        """Forget every value of ``endpoint`` (it de-registered; the store dropped them too)."""
        self._latest.pop(endpoint, None)

    async def restore(self) -> None:
        """Load the latest values from the store (at start-up)."""
        self._latest = await self._store.load_latest()
