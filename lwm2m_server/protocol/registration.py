"""The registration interface: Register, Update, De-register, lifetime expiry (LwM2M 1.1 §6.2).

Pure protocol logic: the CoAP adapter hands in the query strings, the payload and the peer's
address; this module validates them, keeps the registrations in memory (indexed by endpoint and
by registration id), persists them through the store and publishes events. Never imports aiocoap.

Durability: a Register, a De-register and every Update that changes something a device relies
on (lifetime, binding, SMS number, queue mode, objects, source address) is committed before the call returns (so before the 2.01/2.02/2.04). An Update that
only refreshes ``last_seen`` is written behind, in the store's next group commit (milliseconds
later). Losing such a refresh in a crash is safe: the stored row keeps the older ``last_seen``
with the same lifetime, so after a restart the registration can only expire early (the device
registers again), never live longer than its lifetime allows.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import functools
import heapq
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ..events import EventBus, new_event
from ..metrics import REGISTERED_DEVICES, REGISTRATIONS
from ..model import Path, PathError
from .errors import RegistrationError
from .security import PLAIN, Authentication, SecurityPolicy

__all__ = ["Registration", "RegisterParams", "UpdateParams", "RegistrationManager",
           "parse_register_query", "parse_update_query", "parse_registration_payload",
           "RegistrationPayload", "SUPPORTED_VERSIONS", "DEFAULT_LIFETIME"]

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
DEFAULT_LIFETIME = 86400  # LwM2M 1.1 §6.2.1: lt defaults to 86400 s
MAX_LIFETIME = 10 * 365 * 86400
_BINDINGS = set("UQSTN")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered device, as the rest of the server sees it (a snapshot; never mutated)."""

    endpoint: str
    registration_id: str
    lwm2m_version: str
    binding: str
    lifetime: int
    sms: str | None
    queue_mode: bool
    address: tuple[str, int]
    objects: tuple[Path, ...]
    object_versions: dict[int, str]
    root_path: str
    preferred_format: int | None
    registered_at: datetime
    last_seen: datetime
    online: bool = True
    security: str = "none"  # the channel it registered over: "none" (plain CoAP) or "psk" (DTLS)
    # The server process that receives its datagrams (cluster node id); None: the only process.
    owner: str | None = None

    @property
    def expires_at(self) -> datetime:
        return _utc(self.last_seen.timestamp() + self.lifetime)

    @property
    def object_ids(self) -> set[int]:
        return {p.object_id for p in self.objects if p.object_id is not None}


@dataclass(frozen=True, slots=True)
class RegistrationPayload:
    """What a Register/Update link-format payload says: object/instance paths, object versions,
    the root path (alternate path, ``</>;rt="oma.lwm2m"`` or ``</lwm2m>;rt=...``) and its ``ct``."""

    objects: tuple[Path, ...] = ()
    object_versions: dict[int, str] = field(default_factory=dict)
    root_path: str = "/"
    preferred_format: int | None = None


@dataclass(frozen=True, slots=True)
class RegisterParams:
    endpoint: str
    lifetime: int
    lwm2m_version: str
    binding: str
    sms: str | None
    queue_mode: bool


@dataclass(frozen=True, slots=True)
class UpdateParams:
    lifetime: int | None = None
    binding: str | None = None
    sms: str | None = None
    queue_mode: bool | None = None


def _query_dict(query: Iterable[str], allowed: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in query:
        key, sep, value = item.partition("=")
        if key in out:
            raise RegistrationError(f"query parameter {key!r} given twice")
        if key == "Q" and not sep:
            out[key] = ""
            continue
        if key not in allowed:
            continue  # unknown parameters are ignored: later versions add some ('apn' in 1.2)
        if not sep:
            raise RegistrationError(f"query parameter {item!r} has no value")
        out[key] = value
    return out


def _lifetime(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise RegistrationError(f"lifetime 'lt' must be a positive integer of seconds, got {text!r}")
    lt = int(text)
    if not 1 <= lt <= MAX_LIFETIME:
        raise RegistrationError(f"lifetime 'lt' must be 1..{MAX_LIFETIME} seconds, got {lt}")
    return lt


_VERSION_RE = re.compile(r"(\d{1,3})\.(\d{1,3})(?:\.0)?")


def lwm2m_version(text: str) -> str:
    """The ``lwm2m=`` value as "major.minor"; RegistrationError 4.12 for a version we do not speak.

    ``1.0.0`` is 1.0 (a client in use today sends it). The registration interface answers 4.12
    (Precondition Failed) for an incompatible version (LwM2M 1.1 §6.2.1 / transport §6.4.1), 4.00
    for a value that is no version at all.
    """
    m = _VERSION_RE.fullmatch(text)
    if m is None:
        raise RegistrationError(f"LwM2M version 'lwm2m' must look like 1.1, got {text[:32]!r}")
    version = f"{int(m.group(1))}.{int(m.group(2))}"
    if version not in SUPPORTED_VERSIONS:
        raise RegistrationError(f"unsupported LwM2M version {text!r}; supported: "
                                f"{', '.join(SUPPORTED_VERSIONS)}", "4.12")
    return version


def _binding(text: str) -> str:
    if not text or not set(text) <= _BINDINGS:
        raise RegistrationError(f"binding 'b' must be made of U, Q, S, T, N, got {text!r}")
    return text


def parse_register_query(query: Iterable[str]) -> RegisterParams:
    """Validate the Register query (ep, lt, lwm2m, b, sms, Q); RegistrationError (4.00) if bad."""
    q = _query_dict(query, {"ep", "lt", "lwm2m", "b", "sms", "Q"})
    ep = q.get("ep")
    if not ep:
        raise RegistrationError("missing endpoint name 'ep'")
    if len(ep) > 255 or any(ord(c) < 0x21 or c in "\x7f" for c in ep):
        raise RegistrationError(f"endpoint name {ep[:64]!r} is too long or has control characters")
    if "/" in ep:
        # The endpoint name is a path segment of every REST and console route (/devices/{endpoint}):
        # a name with "/" could be registered but never managed.
        raise RegistrationError(f"endpoint name {ep[:64]!r} contains '/': this server addresses "
                                "devices by name in URL paths and cannot manage such a name")
    lt = _lifetime(q["lt"]) if "lt" in q else DEFAULT_LIFETIME
    version = lwm2m_version(q.get("lwm2m", "1.0"))  # a 1.0 client may omit it
    binding = _binding(q["b"]) if "b" in q else "U"
    # 1.0 spells queue mode as binding "UQ"; 1.1+ as the separate 'Q' parameter.
    queue = "Q" in binding or "Q" in q
    return RegisterParams(ep, lt, version, binding, q.get("sms"), queue)


def parse_update_query(query: Iterable[str]) -> UpdateParams:
    """Validate the Update query (lt, b, sms, Q); RegistrationError (4.00) if bad."""
    q = _query_dict(query, {"lt", "b", "sms", "Q"})
    binding = _binding(q["b"]) if "b" in q else None
    queue: bool | None = None
    if binding is not None or "Q" in q:
        queue = "Q" in q or (binding is not None and "Q" in binding)
    return UpdateParams(_lifetime(q["lt"]) if "lt" in q else None, binding, q.get("sms"), queue)


def parse_registration_payload(payload: bytes) -> RegistrationPayload:
    """Object/instance paths, versions, root path and preferred format from a link-format payload.

    Devices of one fleet send the same payload: results are cached by payload, so thousands of
    registrations share one parse and one tuple of paths (time and memory per device).
    """
    return _parse_payload_cached(bytes(payload))


@functools.lru_cache(maxsize=4096)
def _parse_payload_cached(payload: bytes) -> RegistrationPayload:
    from ..codecs.base import CodecError
    from ..codecs.link_format import parse_registration

    try:
        links = parse_registration(payload)
    except (CodecError, PathError, ValueError) as e:
        raise RegistrationError(f"malformed link-format payload: {e}") from None
    with_instances = {p.object_id for p in links.instances}
    objects = tuple(sorted(links.instances + tuple(o for o in links.objects
                                                    if o.object_id not in with_instances)))
    return RegistrationPayload(objects, dict(links.versions), links.root,
                               links.preferred_content_format)


PeerListener = Callable[[Registration, str], None]

_METRIC_LABEL = {"registered": "register", "updated": "update", "deregistered": "deregister",
                 "expired": "expire"}


class _EndpointLock:
    """An asyncio.Lock per endpoint that lives only while someone holds or awaits it, so 100,000
    idle devices keep no lock objects. A plain class: an asynccontextmanager costs an async
    generator per use, which shows in registrations per second."""

    __slots__ = ("_table", "_endpoint", "_entry")

    def __init__(self, table: dict[str, list[Any]], endpoint: str) -> None:
        self._table = table
        self._endpoint = endpoint

    async def __aenter__(self) -> None:
        entry = self._table.get(self._endpoint)
        if entry is None:
            entry = self._table[self._endpoint] = [asyncio.Lock(), 0]
        entry[1] += 1
        self._entry = entry
        try:
            await entry[0].acquire()
        except BaseException:
            self._release_user()
            raise

    def _release_user(self) -> None:
        self._entry[1] -= 1
        if self._entry[1] == 0 and self._table.get(self._endpoint) is self._entry:
            del self._table[self._endpoint]

    async def __aexit__(self, *exc: object) -> None:
        self._entry[0].release()
        self._release_user()


class RegistrationManager:
    """All registrations of this server: the registration interface and lifetime expiry.

    ``listeners`` are called with ``(registration, kind)`` after every change, kind being
    "registered", "updated", "deregistered" or "expired" (the device manager flushes queues and
    fails pending requests from there).
    """

    def __init__(self, store: Any, events: EventBus, *, max_payload: int = 64 * 1024,
                 clock: Callable[[], float] = time.time,
                 policy: SecurityPolicy | None = None) -> None:
        self._store = store
        self.policy = policy or SecurityPolicy()
        self._events = events
        self._max_payload = max_payload
        self._clock = clock
        self._by_ep: dict[str, Registration] = {}
        self._sorted: builtins.list[str] = []  # every endpoint of _by_ep, in order (listing pages)
        self._by_id: dict[str, str] = {}
        self._peers: dict[str, object] = {}
        self._by_addr: dict[tuple[str, int], str] = {}
        self._expiry: list[tuple[float, str, str]] = []  # (expires_at, endpoint, registration id)
        self._locks: dict[str, list[Any]] = {}  # endpoint -> [lock, users]
        self.listeners: list[PeerListener] = []
        # Cluster (several processes on one PostgreSQL, cluster/): this process's node id, recorded
        # as the owner of what registers here; whether another node is alive; and how to take
        # over a dead node's registration (a conditional write: one live node wins).
        self.node_id: str | None = None
        self.node_alive: Callable[[str], bool] = lambda node: True
        self.claim: Callable[[Registration], Awaitable[bool]] | None = None
        REGISTERED_DEVICES.set_function(lambda: sum(1 for r in self._by_ep.values() if r.online))

    # --- queries ----------------------------------------------------------
    def list(self) -> list[Registration]:
        """Every known registration (online or marked offline after its lifetime passed)."""
        return list(self._by_ep.values())

    def page(self, after: str | None = None, limit: int = 100,
             online: bool | None = None) -> builtins.list[Registration]:
        """Up to ``limit`` registrations in endpoint order, the first one after ``after``
        (keyset pagination: a page costs a binary search and the page, whatever the fleet size),
        only online or offline ones when ``online`` says so."""
        i = 0 if after is None else bisect.bisect_right(self._sorted, after)
        out: builtins.list[Registration] = []
        while i < len(self._sorted) and len(out) < limit:
            reg = self._by_ep[self._sorted[i]]
            if online is None or reg.online == online:
                out.append(reg)
            i += 1
        return out

    def get(self, endpoint: str) -> Registration | None:
        return self._by_ep.get(endpoint)

    def by_id(self, registration_id: str) -> Registration | None:
        ep = self._by_id.get(registration_id)
        return self._by_ep.get(ep) if ep is not None else None

    def by_address(self, address: tuple[str, int]) -> Registration | None:
        """The registration whose device last spoke from ``address`` (host, port)."""
        ep = self._by_addr.get(address)
        return self._by_ep.get(ep) if ep is not None else None

    def peer(self, endpoint: str) -> object | None:
        """The transport's handle of the device's address (None after a restart)."""
        return self._peers.get(endpoint)

    def __len__(self) -> int:
        return len(self._by_ep)

    def owns(self, reg: Registration) -> bool:
        """``reg``'s datagrams come to this process (always so for a single process)."""
        return reg.owner is None or reg.owner == self.node_id

    # --- registration interface -------------------------------------------
    def _check_payload(self, payload: bytes) -> None:
        if len(payload) > self._max_payload:
            raise RegistrationError(f"registration payload of {len(payload)} bytes is larger than "
                                    f"{self._max_payload}", "4.13")

    def _lock(self, endpoint: str) -> _EndpointLock:
        """Serialise changes to one endpoint (see :class:`_EndpointLock`)."""
        return _EndpointLock(self._locks, endpoint)

    def _index(self, reg: Registration, peer: object | None, schedule: bool = True) -> None:
        if reg.endpoint not in self._by_ep:
            bisect.insort(self._sorted, reg.endpoint)
        self._by_ep[reg.endpoint] = reg
        self._by_id[reg.registration_id] = reg.endpoint
        self._by_addr[reg.address] = reg.endpoint
        if peer is not None:
            self._peers[reg.endpoint] = peer
        if reg.online and schedule:
            heapq.heappush(self._expiry, (reg.last_seen.timestamp() + reg.lifetime, reg.endpoint,
                                          reg.registration_id))

    def _unindex(self, reg: Registration) -> None:
        self._by_id.pop(reg.registration_id, None)
        if self._by_addr.get(reg.address) == reg.endpoint:
            del self._by_addr[reg.address]
        if self._by_ep.get(reg.endpoint) is reg:
            del self._by_ep[reg.endpoint]
            del self._sorted[bisect.bisect_left(self._sorted, reg.endpoint)]
            self._peers.pop(reg.endpoint, None)

    def _notify(self, reg: Registration, kind: str) -> None:
        REGISTRATIONS.inc(_METRIC_LABEL[kind])
        self._events.publish(new_event(kind, reg.endpoint, registration_id=reg.registration_id,
                                       address=f"{reg.address[0]}:{reg.address[1]}",
                                       lifetime=reg.lifetime, binding=reg.binding,
                                       security=reg.security))
        for listener in self.listeners:
            listener(reg, kind)

    async def register(self, query: Iterable[str], payload: bytes, address: tuple[str, int],
                       peer: object | None = None, auth: Authentication = PLAIN) -> Registration:
        """Register (POST /rd); a new Register with a known endpoint replaces the old one.

        ``auth`` is the channel the request came over; the policy refuses (4.03) an identity
        that does not belong to the endpoint, and plain CoAP where it is not allowed.
        """
        params = parse_register_query(query)
        await self.policy.check_register(params.endpoint, auth)
        self._check_payload(payload)
        links = parse_registration_payload(payload)
        now = self._clock()
        reg = Registration(
            endpoint=params.endpoint, registration_id=secrets.token_urlsafe(6),
            lwm2m_version=params.lwm2m_version, binding=params.binding, lifetime=params.lifetime,
            sms=params.sms, queue_mode=params.queue_mode, address=address,
            objects=links.objects, object_versions=links.object_versions,
            root_path=links.root_path, preferred_format=links.preferred_format,
            registered_at=_utc(now), last_seen=_utc(now), online=True, security=auth.mode,
            owner=self.node_id)
        async with self._lock(params.endpoint):
            old = self._by_ep.get(params.endpoint)
            await self._store.save_registration(reg)  # stored first: nothing half-kept on failure
            if old is not None:
                self._unindex(old)
            self._index(reg, peer)
        self._notify(reg, "registered")
        return reg

    def _live(self, registration_id: str) -> Registration:
        """The registration an Update names; 4.04 when unknown or expired.

        LwM2M 1.1 §6.2.2: once the lifetime has passed the server removes the registration, and
        the client has to Register again; the offline row stays only for operators to see.
        """
        reg = self.by_id(registration_id)
        if reg is None:
            raise RegistrationError(f"unknown registration id {registration_id!r}", "4.04")
        if not reg.online or reg.last_seen.timestamp() + reg.lifetime <= self._clock():
            raise RegistrationError(f"registration {registration_id!r} expired: register again",
                                    "4.04")
        return reg

    async def update(self, registration_id: str, query: Iterable[str], payload: bytes,
                     address: tuple[str, int], peer: object | None = None,
                     auth: Authentication = PLAIN) -> Registration:
        """Update (POST /rd/{id}): may change lt, b, sms, Q and the objects; an empty payload
        keeps the objects. A new source address replaces the old one. Only the channel and
        identity it registered with may update it (4.03 otherwise)."""
        params = parse_update_query(query)
        self._check_payload(payload)
        links = parse_registration_payload(payload) if payload else None
        old = self._live(registration_id)
        await self.policy.check_same_channel(old, auth, "Update")
        old = self._live(registration_id)  # the check may have waited for the database
        if (links is None and old.online and old.endpoint not in self._locks
                and address == old.address and old.owner == self.node_id
                and params.lifetime in (None, old.lifetime)
                and params.binding in (None, old.binding) and params.sms in (None, old.sms)
                and params.queue_mode in (None, old.queue_mode)):
            # A pure refresh (nothing but last_seen changes) and nobody else is changing this
            # endpoint: no await between the check and the index update, so no lock is needed, and
            # the refresh is written behind (see refresh_registration_nowait in the store).
            reg = Registration(old.endpoint, old.registration_id, old.lwm2m_version, old.binding,
                               old.lifetime, old.sms, old.queue_mode, old.address, old.objects,
                               old.object_versions, old.root_path, old.preferred_format,
                               old.registered_at, _utc(self._clock()), True, old.security,
                               old.owner)
            self._store.refresh_registration_nowait(reg)
            self._by_ep[reg.endpoint] = reg
            if peer is not None:
                self._peers[reg.endpoint] = peer
            self._notify(reg, "updated")
            return reg
        async with self._lock(old.endpoint):
            old = self._live(registration_id)
            changes: dict[str, Any] = {"last_seen": _utc(self._clock()), "online": True,
                                       "address": address, "owner": self.node_id}
            if params.lifetime is not None:
                changes["lifetime"] = params.lifetime
            if params.binding is not None:
                changes["binding"] = params.binding
            if params.sms is not None:
                changes["sms"] = params.sms
            if params.queue_mode is not None:
                changes["queue_mode"] = params.queue_mode
            if links is not None:
                changes.update(objects=links.objects, object_versions=links.object_versions,
                               root_path=links.root_path, preferred_format=links.preferred_format)
            reg = replace(old, **changes)
            await self._store.save_registration(reg)
            if old.address != reg.address and self._by_addr.get(old.address) == reg.endpoint:
                del self._by_addr[old.address]
            # The expiry heap keeps one entry per registration: an entry that comes due early is
            # pushed back to the real deadline (expire_due), so an Update only needs a new entry
            # when its deadline is earlier than the old one (an expired one gets no Update).
            old_deadline = old.last_seen.timestamp() + old.lifetime
            new_deadline = reg.last_seen.timestamp() + reg.lifetime
            self._index(reg, peer, schedule=new_deadline < old_deadline)
        self._notify(reg, "updated")
        return reg

    async def deregister(self, registration_id: str, auth: Authentication = PLAIN) -> Registration:
        """De-register (DELETE /rd/{id}); the registration is removed (only by its own channel)."""
        reg = self.by_id(registration_id)
        if reg is None:
            raise RegistrationError(f"unknown registration id {registration_id!r}", "4.04")
        await self.policy.check_same_channel(reg, auth, "De-register")
        async with self._lock(reg.endpoint):
            await self._store.delete_registration(reg.endpoint, reg.registration_id)
            self._unindex(reg)
        self._notify(reg, "deregistered")
        return reg

    async def purge_offline(self, expired_before: datetime, limit: int) -> builtins.list[Registration]:
        """Forget at most ``limit`` registrations that expired before ``expired_before``: the
        stored row with its latest values and observations, and the in-memory entry. Listeners
        hear "purged" (no event: nobody needs one per forgotten device)."""
        due = [r for r in self._by_ep.values()
               if not r.online and r.expires_at < expired_before][:limit]
        purged: builtins.list[Registration] = []
        for reg in due:
            async with self._lock(reg.endpoint):
                if self._by_ep.get(reg.endpoint) is not reg:  # registered again meanwhile
                    continue
                await self._store.delete_registration(reg.endpoint, reg.registration_id)
                self._unindex(reg)
            purged.append(reg)
            for listener in self.listeners:
                listener(reg, "purged")
        return purged

    # --- lifetime expiry and restore -----------------------------------------
    async def expire_due(self) -> builtins.list[Registration]:
        """Mark offline every registration whose lifetime has passed; returns them."""
        now = self._clock()
        expired: builtins.list[Registration] = []
        while self._expiry and self._expiry[0][0] <= now:
            deadline, ep, rid = heapq.heappop(self._expiry)
            reg = self._by_ep.get(ep)
            if reg is None or reg.registration_id != rid or not reg.online:
                continue
            real = reg.last_seen.timestamp() + reg.lifetime
            if real > now:  # updated since this entry was pushed: wait for the real deadline
                heapq.heappush(self._expiry, (real, ep, rid))
                continue
            if not self.owns(reg):
                if self.node_alive(reg.owner or ""):  # its owner expires it and tells us
                    heapq.heappush(self._expiry, (now + 5.0, ep, rid))
                    continue
                # Its owner is gone: one live process takes it over to expire it.
                taken = await self.take_over(reg)
                if taken is None:
                    continue
                reg = taken
            off = replace(reg, online=False)
            try:
                await self._store.save_registration(off)
            except Exception:
                heapq.heappush(self._expiry, (deadline, ep, rid))
                raise
            self._by_ep[ep] = off
            expired.append(off)
            self._notify(off, "expired")
        return expired

    # --- changes made by another process of a cluster ------------------------------
    def apply_remote(self, reg: Registration) -> None:
        """Another process stored ``reg``: keep it in the indexes (it answers ``get``, listings
        and Updates that reach this process later). When this process owned the endpoint until
        now, listeners hear "released" (it moved: stop what runs for it here)."""
        old = self._by_ep.get(reg.endpoint)
        if old is not None and old.registration_id == reg.registration_id:
            if old.last_seen > reg.last_seen:
                return  # an older snapshot than ours (ours was written meanwhile)
            deadline = reg.last_seen.timestamp() + reg.lifetime
            schedule = not old.online or deadline < old.last_seen.timestamp() + old.lifetime
            if old.address != reg.address and self._by_addr.get(old.address) == reg.endpoint:
                del self._by_addr[old.address]
            self._index(reg, None, schedule=schedule)
        else:
            if old is not None:
                self._unindex(old)
            self._index(reg, None)
        if old is not None and self.owns(old) and not self.owns(reg):
            for listener in self.listeners:
                listener(reg, "released")

    async def take_over(self, reg: Registration) -> Registration | None:
        """Make this process the owner of ``reg``, whose owner process is gone (a conditional
        write through ``claim``: when several processes try, one wins); None if another did."""
        if self.claim is None or not await self.claim(reg):
            return None
        cur = self._by_ep.get(reg.endpoint)
        if cur is None or cur.registration_id != reg.registration_id:
            return None
        mine = self._by_ep[reg.endpoint] = replace(cur, owner=self.node_id)
        return mine

    def seen_remote(self, endpoint: str, registration_id: str, last_seen: datetime) -> None:
        """Another process refreshed ``endpoint``'s registration (an Update that changed nothing
        else). Its expiry entry stays: an early entry is pushed back when it comes due."""
        reg = self._by_ep.get(endpoint)
        if reg is not None and reg.registration_id == registration_id and reg.last_seen < last_seen:
            self._by_ep[endpoint] = replace(reg, last_seen=last_seen, online=True)

    def remove_remote(self, endpoint: str, registration_id: str) -> None:
        """Another process deleted ``endpoint``'s registration (De-register or purge)."""
        reg = self._by_ep.get(endpoint)
        if reg is None or reg.registration_id != registration_id:
            return
        self._unindex(reg)
        for listener in self.listeners:
            listener(reg, "removed")

    async def resync(self) -> int:
        """Bring what other processes own up to date with the store, after this process missed
        their messages (the cluster channel was down): registrations stored or changed meanwhile
        are applied, those gone from the store are removed. This process's own registrations
        are left as they are unless another process took one over. Returns how many changed."""
        stored = {r.endpoint: r for r in await self._store.load_registrations()}
        changed = 0
        for ep, reg in stored.items():
            cur = self._by_ep.get(ep)
            if cur == reg or (cur is not None and self.owns(cur) and self.owns(reg)
                              and cur.registration_id == reg.registration_id):
                continue
            self.apply_remote(reg)
            changed += 1
        for ep, cur in list(self._by_ep.items()):
            if ep not in stored and not self.owns(cur):
                self.remove_remote(ep, cur.registration_id)
                changed += 1
        return changed

    async def run_expiry(self, interval: float = 1.0) -> None:
        """Check lifetimes every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_due()
            except Exception:  # keep checking; the store may come back
                pass

    async def restore(self) -> int:
        """Load the stored registrations; those whose lifetime passed come back offline."""
        now = self._clock()
        regs = await self._store.load_registrations()
        for reg in regs:
            if reg.online and reg.last_seen.timestamp() + reg.lifetime <= now:
                reg = replace(reg, online=False)
            elif reg.online and reg.security != "none" and (
                    reg.owner is None or not self.node_alive(reg.owner)):
                # Its DTLS session did not survive the restart and a server cannot open one
                # towards a device: it is reachable again once it registers anew.
                reg = replace(reg, online=False)
            self._index(reg, None)
        return len(regs)
