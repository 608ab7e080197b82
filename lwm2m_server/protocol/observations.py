"""Observations: Observe and Observe-Composite on devices, their notifications, and their
persistence (LwM2M 1.1 §6.4.2-6.4.5; DESIGN.md "Observations").

Every observation is stored (:class:`StoredObservation`) so it can be re-established: at
start-up for devices still registered, on a device's next Update when one is not active, and
after every new Register (the client dropped them, §6.2.1); ``background.py`` does the
re-establishing. They go on Cancel and on De-register. Write-Attributes set on an observed path
are kept with it and set again first.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ..events import EventBus, new_event
from ..metrics import NOTIFICATIONS
from ..model import ObjectRegistry, Path
from .errors import DeviceError, InvalidRequest
from .exchange import Exchange
from .formats import FALLBACK_CODES
from .jsonable import plain_values
from .latest import LatestValues
from .payloads import decode, decode_multi, device_failure
from .registration import Registration
from .requests import ReadResponse
from .transport import IncomingResponse, ObservationHandle, OutgoingRequest

__all__ = ["Observations", "StoredObservation", "OBSERVATION_ORIGINS", "ORIGIN", "RESTORING", "paths_key",
           "parse_paths_key"]

# Who asked for an observation: a REST caller, the rollout engine, or the server itself.
OBSERVATION_ORIGINS = ("api", "rollout", "internal")
# Who is sending (DeviceManager.send's ``origin``): recorded with the observations it starts.
ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("lwm2m_request_origin", default="api")
# Set while ``background.py`` re-establishes this stored observation: if it is cancelled in the
# meantime, the new observation on the device is cancelled too instead of being stored again.
RESTORING: contextvars.ContextVar["StoredObservation | None"] = contextvars.ContextVar(
    "lwm2m_restoring_observation", default=None)


def paths_key(paths: tuple[Path, ...]) -> str:
    """The stored form of an observation's paths: ``"/3/0/9"`` or ``"/3/0/9,/5/0/3"``."""
    return ",".join(str(p) for p in paths)


def parse_paths_key(text: str) -> tuple[Path, ...]:
    """The paths of :func:`paths_key`'s text."""
    return tuple(Path.parse(p) for p in text.split(","))


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """An active observation of ``paths`` on ``endpoint``: Observe (``composite`` False, one
    path) or Observe-Composite. ``attributes`` are the Write-Attributes the server set on an
    observed path (re-applied when the observation is re-established), ``origin`` one of
    :data:`OBSERVATION_ORIGINS`."""

    endpoint: str
    paths: tuple[Path, ...]
    composite: bool
    origin: str
    created_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)


class _Active:
    """An observation running on a device now."""

    __slots__ = ("endpoint", "key", "handle", "fmt")

    def __init__(self, endpoint: str, key: tuple[Path, ...], handle: ObservationHandle, fmt: int) -> None:
        self.endpoint = endpoint
        self.key = key
        self.handle = handle
        self.fmt = fmt


Key = tuple[Path, ...]


class Observations:
    """The observations running on devices and the stored ones, per endpoint and paths."""

    def __init__(self, exchange: Exchange, latest: LatestValues, store: Any, events: EventBus,
                 registry: ObjectRegistry, on_answer: Callable[[str], None]) -> None:
        self._exchange = exchange
        self._latest = latest
        self._store = store
        self._events = events
        self._registry = registry
        self._on_answer = on_answer
        self._active: dict[tuple[str, Key], _Active] = {}
        self._stored: dict[str, dict[Key, StoredObservation]] = {}
        self._attributes: dict[tuple[str, Path], dict[str, Any]] = {}

    # --- what is observed ---------------------------------------------------------
    def active(self, endpoint: str) -> list[Key]:
        """The paths (one tuple per observation) running on ``endpoint`` now."""
        return [k[1] for k in self._active if k[0] == endpoint]

    def stored(self, endpoint: str) -> list[StoredObservation]:
        """The persisted observations of ``endpoint``, active or waiting to be re-established."""
        return list(self._stored.get(endpoint, {}).values())

    def has_stored(self, endpoint: str) -> bool:
        return bool(self._stored.get(endpoint))

    def stored_endpoints(self) -> list[str]:
        return list(self._stored)

    def is_active(self, endpoint: str, key: Key) -> bool:
        return (endpoint, key) in self._active

    def is_stored(self, endpoint: str, key: Key, stored: StoredObservation) -> bool:
        """``stored`` is still the stored observation of ``key`` (not cancelled or replaced)."""
        return self._stored.get(endpoint, {}).get(key) is stored

    def inactive(self, endpoint: str) -> bool:
        """Some stored observation of ``endpoint`` is not running on the device."""
        mine = self._stored.get(endpoint)
        return bool(mine) and any((endpoint, key) not in self._active for key in mine)  # type: ignore[union-attr]

    # --- starting and ending ----------------------------------------------------------
    async def observe(self, reg: Registration, paths: Key, make: Callable[[int], OutgoingRequest],
                      formats: list[int], timeout: float, what: str) -> ReadResponse:
        """Observe ``paths`` on ``reg`` with the request ``make(fmt)``, trying each format."""
        self._exchange.running()
        ep = reg.endpoint
        key = (ep, paths)
        old = self._active.pop(key, None)
        if old is not None:
            old.handle.cancel()
        composite = len(paths) != 1 or make(formats[0]).method == "FETCH"
        resp: IncomingResponse | None = None
        for fmt in formats:
            holder: dict[str, _Active] = {}

            def on_notify(n: IncomingResponse, fmt: int = fmt, holder: dict[str, _Active] = holder) -> None:
                self._notification(reg, paths, composite, n, fmt)

            def on_end(reason: str, holder: dict[str, _Active] = holder) -> None:
                o = holder.get("o")
                if o is not None and self._active.get(key) is o:
                    del self._active[key]
                    self._events.publish(new_event("observation_ended", ep, paths=[str(p) for p in paths],
                                                   reason=reason))

            resp, handle = await self._exchange.observe(reg, make(fmt), timeout, on_notify, on_end)
            if resp.code in FALLBACK_CODES:
                handle.cancel()
                continue
            if resp.code != "2.05":
                handle.cancel()
                raise device_failure(reg, resp, what)
            try:
                values = (decode_multi(self._registry, reg, resp, fmt, what) if composite
                          else decode(self._registry, reg, resp, fmt, paths[0], what))
            except DeviceError:
                handle.cancel()
                raise
            restoring = RESTORING.get()
            if restoring is not None and not self.is_stored(ep, paths, restoring):
                handle.cancel()  # cancelled while it was being re-established: it stays cancelled
                return ReadResponse(values)
            obs = _Active(ep, paths, handle, fmt)
            holder["o"] = obs
            prev = self._active.get(key)
            if prev is not None:  # observed again meanwhile (e.g. re-established and by a caller)
                # Locally only: a cancel sent now could cross this new observation on the device;
                # the old one's next notification gets a Reset.
                prev.handle.cancel(notify_device=False)
            self._active[key] = obs
            try:
                await self._persist(ep, paths, composite)
            except Exception:  # not kept if it cannot be persisted: nothing half-written
                if self._active.get(key) is obs:
                    del self._active[key]
                handle.cancel()
                raise
            self._exchange.formats.learn(ep, fmt, refused=fmt != formats[0])
            self._latest.put(ep, values)
            return ReadResponse(values)
        assert resp is not None
        raise device_failure(reg, resp, f"{what} in every format it may support")

    async def cancel(self, endpoint: str, key: Key) -> None:
        """Cancel the observation of ``key`` on the device and forget it (InvalidRequest if none)."""
        obs = self._active.pop((endpoint, key), None)
        stored = self._stored.get(endpoint, {}).get(key)
        if obs is None and stored is None:
            raise InvalidRequest(f"no observation of {', '.join(str(p) for p in key)} on {endpoint!r}")
        if obs is not None:
            obs.handle.cancel()
        if stored is not None:
            await self.forget(endpoint, key)

    def drop_running(self, endpoint: str) -> None:
        """The device no longer has them (a new Register, it left or went silent): end them here
        without telling it (a GET with Observe=1 would reach a new registration as a stray Read,
        and a silent device as CON retransmissions); a late notification still gets a Reset."""
        for key in [k for k in self._active if k[0] == endpoint]:
            self._active.pop(key).handle.cancel(notify_device=False)

    def drop(self, endpoint: str) -> None:
        """Forget everything of ``endpoint`` (it de-registered; the store dropped its rows)."""
        self.drop_running(endpoint)
        self._stored.pop(endpoint, None)
        for attr_key in [k for k in self._attributes if k[0] == endpoint]:
            del self._attributes[attr_key]

    # --- persistence --------------------------------------------------------------------
    async def _persist(self, ep: str, paths: Key, composite: bool) -> None:
        """Store the observation of ``paths`` unless it is stored already (re-established)."""
        known = self._stored.get(ep, {}).get(paths)
        if known is not None and known.composite == composite:
            return
        attrs = {} if composite else self._attributes.get((ep, paths[0]), {})
        stored = StoredObservation(ep, paths, composite, ORIGIN.get(), datetime.now(timezone.utc),
                                   dict(attrs))
        await self._store.save_observation(stored)
        self._stored.setdefault(ep, {})[paths] = stored

    async def forget(self, ep: str, paths: Key) -> None:
        """Remove the stored observation of ``paths`` (Cancel, or the device refuses it now)."""
        mine = self._stored.get(ep, {})
        # Out of the mirror before the await, so a re-observe running meanwhile skips it.
        stored = mine.pop(paths, None)
        try:
            await self._store.delete_observation(ep, paths)
        except Exception:
            if stored is not None:
                self._stored.setdefault(ep, {})[paths] = stored
            raise
        if not mine:
            self._stored.pop(ep, None)

    async def remember_attributes(self, ep: str, path: Path, attributes: Mapping[str, Any]) -> None:
        """Keep the Write-Attributes set on ``path``; a stored observation of it keeps them too."""
        attrs = dict(self._attributes.get((ep, path), {}))
        for k, v in attributes.items():
            if v is None:
                attrs.pop(k, None)
            else:
                attrs[k] = v
        if attrs:
            self._attributes[(ep, path)] = attrs
        else:
            self._attributes.pop((ep, path), None)
        stored = self._stored.get(ep, {}).get((path,))
        if stored is not None and not stored.composite and stored.attributes != attrs:
            stored = replace(stored, attributes=attrs)
            await self._store.save_observation(stored)
            self._stored[ep][(path,)] = stored

    def apply_remote(self, stored: StoredObservation) -> None:
        """Another process of the cluster stored ``stored`` (started or changed it)."""
        self._stored.setdefault(stored.endpoint, {})[stored.paths] = stored
        if stored.attributes and not stored.composite:
            self._attributes[(stored.endpoint, stored.paths[0])] = dict(stored.attributes)

    def remove_remote(self, endpoint: str, paths: Key) -> None:
        """Another process of the cluster forgot the stored observation of ``paths``."""
        mine = self._stored.get(endpoint)
        if mine is not None:
            mine.pop(paths, None)
            if not mine:
                del self._stored[endpoint]

    async def restore(self) -> None:
        """Load the stored observations (and their attributes) at start-up."""
        self._stored = {}
        for stored in await self._store.load_observations():
            self._stored.setdefault(stored.endpoint, {})[stored.paths] = stored
            if stored.attributes and not stored.composite:
                self._attributes[(stored.endpoint, stored.paths[0])] = dict(stored.attributes)

    def close(self) -> None:
        """Tell devices to stop (no notifications to a closed port); stored ones stay stored and
        are re-established by the next start."""
        for obs in list(self._active.values()):
            obs.handle.cancel()
        self._active.clear()

    # --- notifications ----------------------------------------------------------------
    def _notification(self, reg: Registration, paths: Key, composite: bool,
                      n: IncomingResponse, fmt: int) -> None:
        ep = reg.endpoint
        NOTIFICATIONS.inc()
        self._on_answer(ep)
        what = f"notification of {', '.join(str(p) for p in paths)}"
        try:
            if not n.success:
                raise device_failure(reg, n, what)
            values = (decode_multi(self._registry, reg, n, fmt, what) if composite
                      else decode(self._registry, reg, n, fmt, paths[0], what))
        except DeviceError as e:
            self._events.publish(new_event("notification_error", ep, paths=[str(p) for p in paths],
                                           error=e.message, coap_code=e.coap_code))
            return
        self._latest.put(ep, values)
        self._events.publish(new_event("notification", ep, paths=[str(p) for p in paths],
                                       values=plain_values(values)))
