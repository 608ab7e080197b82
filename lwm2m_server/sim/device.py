"""One simulated LwM2M 1.1 client: its objects, the LwM2M operations, and its registration.

``SimDevice`` owns one aiocoap context bound to its own UDP socket on 127.0.0.1: it sends
Register / Update / De-register from there and serves the server's requests on it (coap_site.py
translates CoAP to the operations below). Operations take and return the typed node tree of
``lwm2m_server.model``; content formats are the codecs' business.

A fleet keeps ten thousand of these in one process, so an idle device is small: ``__slots__``,
no asyncio task between two Updates (a timer handle starts the registration loop again when the
next Update is due or asked for), and no waiter list in ``registered`` until someone waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any

import aiocoap

from ..codecs.link_format import Link, RegistrationLinks, format_links
from ..model import (
    MODEL_OBJECT_ID,
    LwM2mObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectRegistry,
    Path,
    ResourceType,
    Value,
    build,
    default_registry,
)
from .dtls import DTLS_ERRORS, add_dtls_client, session_port
from .errors import BAD_REQUEST, METHOD_NOT_ALLOWED, NOT_FOUND, RequestError, SimError
from .firmware import FirmwareObject
from .host import DeviceConfig
from .model_host import ModelHost
from .model_object import ModelObject
from .objects import (
    ConnectivityObject,
    DeviceObject,
    SecurityObject,
    ServerObject,
    SimObject,
    group_values,
    instance_values,
)
from .observe import Attributes, Observation, parse_attributes
from .rawget import RawGets
from .software import SoftwareObject
from .storage import DeviceStorage, SlotInfo
from .transfer import coap_request

__all__ = ["SimDevice", "DeviceConfig", "AccessControlObject", "Flag"]

log = logging.getLogger(__name__)


class AccessControlObject(SimObject):
    """Object 2: plain stored instances; the one object a server may Create and Delete here."""

    object_id = 2
    creatable = True


class Flag:
    """``asyncio.Event``'s ``is_set``, ``set``, ``clear`` and ``wait``, with no waiter deque
    until something waits (an Event costs about 0.7 KiB, this 56 bytes)."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            return await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)


class SimDevice:
    """A simulated device: call ``start()``, later ``stop()`` (De-register) or ``die()``."""

    __slots__ = ("config", "registry", "endpoint", "faults", "storage", "serial",
                 "firmware_version", "binding", "model", "context", "location", "registered",
                 "awake", "alive", "registrations", "started_at", "registered_after", "updates",
                 "notes", "attributes", "observations", "_tasks", "_update_asked", "_update_timed",
                 "_timer", "_reregister", "_main", "_site", "_infer_task", "_infer_period",
                 "inference_times", "objects", "_session", "bootstrap_site", "bootstraps",
                 "_raw", "__weakref__")

    def __init__(self, config: DeviceConfig, registry: ObjectRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or default_registry()
        self.endpoint = config.endpoint
        self.faults = config.faults
        self.storage = DeviceStorage(config.state_dir)
        st = self.storage.state()
        self.serial = str(st.get("serial")
                          or "SIM-" + hashlib.sha256(config.endpoint.encode()).hexdigest()[:10].upper())
        self.firmware_version = str(st.get("firmware_version") or config.firmware_version)
        self.binding = str(st.get("binding") or config.binding)
        if "serial" not in st:
            self.storage.update_state(serial=self.serial, firmware_version=self.firmware_version)
        self.model = ModelHost(self.storage, on_change=self._model_changed)
        self.model.load()
        if config.initial_model is not None and self.model.runner is None:
            info = config.initial_model_info
            if not info.sha256:
                info = SlotInfo(info.name, info.version, hashlib.sha256(config.initial_model).hexdigest())
            self.model.provision(config.initial_model, info)
        self.context: aiocoap.Context | None = None
        self._raw: RawGets | None = None  # block GETs on the socket, from the first download
        self.location: str | None = None
        self.registered = Flag()
        self.awake = True
        self.alive = False
        self.registrations = 0
        self.started_at = 0.0
        self.registered_after: float | None = None  # seconds from start to the first 2.01
        self.updates = 0
        self.notes: list[str] = []
        self.attributes: dict[Path, Attributes] = {}
        self.observations: dict[Path, list[Observation]] = {}
        self._tasks: set[asyncio.Task[Any]] | None = None  # created with the first task
        self._update_asked = False   # an Update with lt and b is wanted now (Lifetime written, ...)
        self._update_timed = False   # the Update interval ran out
        self._timer: asyncio.TimerHandle | None = None
        self._reregister = False
        self._main: asyncio.Task[None] | None = None
        self._site: Any = None
        self._infer_task: asyncio.Task[None] | None = None
        self._infer_period = float(st.get("inference_period", 0) or 0)
        self.inference_times: list[float] = []
        self.objects: dict[int, SimObject] = {}
        self._session: Any = None  # the DTLS session to the server, kept while registered
        self.bootstrap_site: Any = None  # sim/bootstrap.py's site while bootstrapping
        self.bootstraps = 0
        self._build_objects()

    def _build_objects(self) -> None:
        cfg = self.config
        identity = (cfg.psk_identity or "").encode()
        key = cfg.psk_key or b""
        mode = 0 if cfg.psk_key else 3  # Security Mode: 0 PSK, 3 NoSec
        if cfg.bootstrap:  # factory state: only the Bootstrap-Server account
            security = {0: {0: cfg.bootstrap, 1: True, 2: mode, 3: identity, 4: b"", 5: key}}
            servers: dict[int, dict[int, Any]] = {}
        else:
            security = {0: {0: cfg.server, 1: False, 2: mode, 3: identity, 4: b"", 5: key, 10: 1}}
            servers = {0: {0: 1, 1: cfg.lifetime, 2: 0, 3: 0, 6: True, 7: self.binding}}
        objs: list[SimObject] = [
            SecurityObject(self, security),
            ServerObject(self, servers),
            AccessControlObject(self),
            DeviceObject(self),
            ConnectivityObject(self),
            FirmwareObject(self),
            SoftwareObject(self),
            ModelObject(self),
        ]
        self.objects = {o.object_id: o for o in objs}

    # --- hooks the objects call ----------------------------------------------
    def changed(self, path: Path) -> None:
        """Values at or under ``path`` changed: let overlapping observations decide."""
        if not self.observations:
            return
        for opath, obs_list in list(self.observations.items()):
            if opath.starts_with(path) or path.starts_with(opath):
                for obs in list(obs_list):
                    obs.changed()

    def _model_changed(self) -> None:
        if self.observations:
            self.changed(Path.of(MODEL_OBJECT_ID, 0))

    def report_error(self, code: int) -> None:
        """Add an error code to /3/0/11 (5 out of memory, 7 IP connectivity failure, ...)."""
        device = self.objects[3]
        assert isinstance(device, DeviceObject)
        device.add_error(code)

    def note(self, message: str) -> None:
        self.notes.append(message)
        del self.notes[:-100]
        log.info("%s: %s", self.endpoint, message)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._tasks = None

    def request_update(self) -> None:
        self._update_asked = True
        self._resume()

    def _resume(self) -> None:
        """Run the registration loop now (between two Updates a device has no task, a timer)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.alive and (self._main is None or self._main.done()):
            self._main = self.spawn(self._run())

    def _update_due(self) -> None:
        self._timer = None
        self._update_timed = True
        self._resume()

    def request_reboot(self) -> None:
        self.spawn(self.reboot(delay=0.05))

    def request_disable(self, seconds: int) -> None:
        self.spawn(self._disable(seconds))

    def memory_free_kib(self) -> int:
        return 180 - (8 if self.model.runner is not None else 0)

    def local_address(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self.context is None:
            return 0
        dtls_port = session_port(self._session) if self._session is not None else None
        if dtls_port is not None:
            return dtls_port
        mi = self.context.request_interfaces[0].token_interface.message_interface  # type: ignore[attr-defined]
        return int(mi._local_port())

    def set_inference_period(self, seconds: float) -> None:
        self._infer_period = seconds
        self.storage.update_state(inference_period=seconds)
        if self._infer_task is not None:
            self._infer_task.cancel()
            self._infer_task = None
        if seconds > 0 and self.alive:
            self._infer_task = self.spawn(self._infer_loop())

    async def _infer_loop(self) -> None:
        while True:
            try:
                self.model.run()
                self.inference_times.append(time.monotonic())
                del self.inference_times[:-10000]
            except SimError:
                pass
            await asyncio.sleep(self._infer_period)

    # --- LwM2M operations ------------------------------------------------------
    def _object(self, path: Path) -> SimObject:
        if path.is_root:
            raise RequestError(METHOD_NOT_ALLOWED, "the root path is not addressable here")
        obj = self.objects.get(path.object_id)  # type: ignore[arg-type]
        if obj is None:
            raise RequestError(NOT_FOUND, f"no object {path.object_id}")
        return obj

    def read_values(self, path: Path) -> dict[Path, Value]:
        """Every readable leaf at or under ``path``; RequestError when absent or not readable."""
        obj = self._object(path)
        if path.level >= 3:
            d = obj.resource_def(path.resource_id)  # type: ignore[arg-type]
            if not d.readable:
                raise RequestError(METHOD_NOT_ALLOWED, f"{path} is not readable")
        if path.is_object:
            out: dict[Path, Value] = {}
            for iid in sorted(obj.data):
                out.update(obj.readable_values(iid))
            return out
        values = obj.readable_values(path.instance_id)  # type: ignore[arg-type]
        if path.is_instance:
            return values
        out = {p: v for p, v in values.items() if p.starts_with(path)}
        if not out:
            inst = obj.data.get(path.instance_id, {})  # type: ignore[arg-type]
            if path.is_resource and isinstance(inst.get(path.resource_id), dict):  # type: ignore[arg-type]
                return {}
            raise RequestError(NOT_FOUND, f"{path} is not set")
        return out

    def read(self, path: Path) -> Node:
        values = self.read_values(path)
        if path.is_resource and not values:
            return MultipleResource(path.resource_id,  # type: ignore[arg-type]
                                    {}, self.registry.resource_type(path) or ResourceType.OPAQUE)
        return build(values, path, self.registry)

    def write(self, path: Path, node: Node, replace: bool) -> None:
        """Write ``node`` at ``path`` (replace: PUT, else partial update: POST)."""
        obj = self._object(path)
        if path.is_object or path.is_root:
            raise RequestError(METHOD_NOT_ALLOWED, "Write addresses an instance or a resource")
        grouped = group_values(node, path)
        for iid, values in grouped.items():
            if iid != path.instance_id:
                raise RequestError(BAD_REQUEST, f"payload is for instance {iid}, not {path}")
            resource_replace = replace or path.level >= 3 and not path.is_resource_instance
            obj.write(iid, values, replace=resource_replace)

    def execute(self, path: Path, args: str) -> None:
        obj = self._object(path)
        if not path.is_resource:
            raise RequestError(METHOD_NOT_ALLOWED, "Execute addresses a resource")
        obj.instance(path.instance_id)  # type: ignore[arg-type]
        d = obj.resource_def(path.resource_id)  # type: ignore[arg-type]
        if not d.executable:
            raise RequestError(METHOD_NOT_ALLOWED, f"{path} is not executable")
        obj.execute(path.instance_id, path.resource_id, args)  # type: ignore[arg-type]

    def create(self, path: Path, node: Node) -> list[int]:
        obj = self._object(path)
        if not path.is_object:
            raise RequestError(METHOD_NOT_ALLOWED, "Create addresses an object")
        if isinstance(node, LwM2mObject):
            instances = list(node.instances.values())
        elif isinstance(node, ObjectInstance):
            instances = [node]
        else:
            raise RequestError(BAD_REQUEST, "Create needs an object instance in the payload")
        created: list[int] = []
        try:
            for inst in instances:
                created.append(obj.create(inst.id, instance_values(inst)))
        except RequestError:
            for iid in created:  # all or nothing
                obj.delete(iid)
            raise
        return created

    def delete(self, path: Path) -> None:
        obj = self._object(path)
        if not path.is_instance:
            raise RequestError(METHOD_NOT_ALLOWED, "Delete addresses an object instance")
        obj.delete(path.instance_id)  # type: ignore[arg-type]

    def effective_attributes(self, path: Path) -> Attributes:
        srv = self.objects[1].data[0]
        attrs = Attributes(pmin=float(srv.get(2) or 0) or None,  # type: ignore[arg-type]
                           pmax=float(srv.get(3) or 0) or None)  # type: ignore[arg-type]
        for n in range(1, path.level + 1):
            a = self.attributes.get(Path(path.ids[:n]))
            if a is not None:
                attrs = attrs.merged(a)
        return attrs

    def write_attributes(self, path: Path, query: list[str]) -> None:
        obj = self._object(path)
        if path.level >= 2:
            obj.instance(path.instance_id)  # type: ignore[arg-type]
        numeric = False
        if path.level >= 3:
            d = obj.resource_def(path.resource_id)  # type: ignore[arg-type]
            numeric = d.type.value in ("integer", "unsigned integer", "float")
        new = parse_attributes(query, path, self.attributes.get(path, Attributes()), numeric)
        if new.is_empty():
            self.attributes.pop(path, None)
        else:
            self.attributes[path] = new

    def discover(self, path: Path) -> str:
        """The Discover answer (link format) for an object, instance or resource."""
        obj = self._object(path)
        links: list[Link] = []

        def link(p: Path, **params: str) -> Link:
            a = self.attributes.get(p)
            for name, value in _attr_params(a).items():
                params.setdefault(name, value)
            return Link(str(p), dict(params))

        if path.is_object:
            ver = obj.definition.version
            links.append(link(path, **({"ver": ver} if ver not in ("", "1.0") else {})))
            iids = sorted(obj.data)
        else:
            obj.instance(path.instance_id)  # type: ignore[arg-type]
            iids = [path.instance_id]  # type: ignore[list-item]
        for iid in iids:
            ip = Path.of(obj.object_id, iid)
            if path.level <= 2:
                links.append(link(ip))
            inst = obj.data[iid]
            rids = set(inst) | {r for r, d in obj.definition.resources.items() if d.executable}
            for rid in sorted(rids):
                rp = ip.child(rid)
                if path.level == 3 and rp != path:
                    continue
                v = inst.get(rid)
                links.append(link(rp, **({"dim": str(len(v))} if isinstance(v, dict) else {})))
        if path.level == 3 and not links:
            raise RequestError(NOT_FOUND, f"{path} is not set")
        return format_links(links)

    def registration_links(self) -> str:
        """The Register payload: root link with the preferred format, objects and instances."""
        objs = [o for oid, o in sorted(self.objects.items()) if oid != 0]
        reg = RegistrationLinks(
            root="/",
            objects=tuple(Path.of(o.object_id) for o in objs),
            instances=tuple(Path.of(o.object_id, i) for o in objs for i in sorted(o.data)),
            versions={o.object_id: o.definition.version for o in objs
                      if o.definition.version not in ("", "1.0")},
            content_formats=(self.config.preferred_format,),
        )
        return format_links(reg.links())

    # --- lifecycle ---------------------------------------------------------------
    async def start(self, site_factory: Any = None, delay: float = 0.0) -> None:
        """Bind the socket, start serving, and start the registration loop (``delay`` s later:
        a fleet opens every socket first and spreads the Registers with a timer each)."""
        from .coap_site import DeviceSite

        self._site = (site_factory or DeviceSite)(self)
        self.context = await self._open_socket()
        self.alive = True
        self.started_at = time.monotonic() + delay
        if delay > 0:
            self._timer = asyncio.get_running_loop().call_later(delay, self._begin)
        else:
            self._begin()

    def _begin(self) -> None:
        self._timer = None
        self._resume()
        if self._infer_period > 0:
            self._infer_task = self.spawn(self._infer_loop())

    async def _open_socket(self) -> aiocoap.Context:
        # One logger for every device's context: a logger per endpoint would live as long as the
        # process (logging keeps them all), about 1 KiB each; the notes name the endpoint.
        ctx = await _exclusive_udp_context(self._site, "lwm2m_server.sim.coap")
        mi = ctx.request_interfaces[0].token_interface.message_interface  # type: ignore[attr-defined]
        orig = mi.datagram_msg_received
        self._raw = None

        def receive(data: bytes, ancdata: Any, flags: int, address: Any) -> None:
            # The radio: a sleeping (UQ) device hears nothing; a lossy link drops some packets.
            if not self.awake or (self.faults.drop_rate and random.random() < self.faults.drop_rate):
                return
            raw = self._raw
            if raw is not None and raw.interface is mi and raw.take(data, address):
                return
            orig(data, ancdata, flags, address)

        mi.datagram_msg_received = receive
        _cache_resolution(mi)
        if self._wants_dtls():
            await add_dtls_client(ctx, self._radio)
        return ctx

    @property
    def raw_gets(self) -> RawGets | None:
        """Block GETs on this device's socket without aiocoap's requests (sim/rawget.py)."""
        if self._raw is None and self.context is not None:
            self._raw = RawGets(
                self.context.request_interfaces[0].token_interface.message_interface)  # type: ignore[attr-defined]
        return self._raw

    def _wants_dtls(self) -> bool:
        uris = [self.config.server, self.config.bootstrap or ""]
        return any(u.startswith("coaps:") for u in uris) or bool(self.config.bootstrap)

    def _radio(self) -> bool:
        """Whether an incoming datagram is heard (asleep in UQ, or lost on a lossy link)."""
        return self.awake and not (self.faults.drop_rate and random.random() < self.faults.drop_rate)

    async def _request(self, msg: aiocoap.Message, timeout: float = 100.0) -> aiocoap.Message:
        # The default outlasts CoAP's own retransmissions (MAX_TRANSMIT_WAIT, 93 s): giving up
        # earlier would leave the exchange running and queue every later request behind it.
        assert self.context is not None
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        return await coap_request(self.context, msg, timeout)

    @property
    def server_uri(self) -> str:
        """The LwM2M server this device registers with (its Security object's server account)."""
        from .bootstrap import accounts

        found = accounts(self, bootstrap=False)
        return str(found[0][1][0]).rstrip("/") if found else self.config.server.rstrip("/")

    def _use_account(self, bootstrap: bool) -> str:
        """The URI of the (bootstrap) server account, its PSK set for coaps requests."""
        from .bootstrap import accounts
        from .dtls import set_psk

        found = accounts(self, bootstrap)
        if not found:
            raise SimError("no " + ("bootstrap" if bootstrap else "LwM2M server") + " account")
        res = found[0][1]
        uri = str(res[0]).rstrip("/")
        if uri.startswith("coaps:") and self.context is not None:
            set_psk(self.context, uri, bytes(res.get(3) or b""), bytes(res.get(5) or b""))
        return uri

    def needs_bootstrap(self) -> bool:
        """True when the device has a bootstrap account and no usable server account."""
        from .bootstrap import accounts

        return bool(accounts(self, True)) and not (accounts(self, False) and self.objects[1].data)

    async def bootstrap(self) -> None:
        """Client-initiated bootstrap: Bootstrap-Request, then serve the server's sequence."""
        from .bootstrap import BootstrapSite

        uri = self._use_account(bootstrap=True)
        site = BootstrapSite(self)
        self.bootstrap_site = site
        try:
            msg = aiocoap.Message(code=aiocoap.POST, uri=f"{uri}/bs")
            msg.opt.uri_query = (f"ep={self.endpoint}",)
            resp = await self._request(msg, timeout=30.0)
            if resp.code != aiocoap.CHANGED:
                raise SimError(f"Bootstrap-Request answered {resp.code}: {resp.payload[:200]!r}")
            session = resp.remote  # keep the DTLS session open while the server writes
            await asyncio.wait_for(site.finished.wait(), self.config.bootstrap_wait)
            del session
        finally:
            self.bootstrap_site = None
        self.bootstraps += 1
        server = self.objects[1].data.get(0, {})
        self.binding = str(server.get(7) or self.binding)  # what the bootstrap server gave
        self.note(f"bootstrapped: server {self.server_uri}")

    async def register(self) -> None:
        q = [f"ep={self.endpoint}", f"lt={self.objects[1].data[0][1]}",
             f"lwm2m={self.config.lwm2m_version}", *self._binding_params()]
        uri = self._use_account(bootstrap=False)
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"{uri}/rd",
                              payload=self.registration_links().encode(),
                              content_format=40)
        msg.opt.uri_query = tuple(q)
        resp = await self._request(msg)
        if resp.code != aiocoap.CREATED:
            raise SimError(f"Register answered {resp.code}: {resp.payload[:200]!r}")
        # aiocoap holds DTLS sessions weakly; the server's requests need this one to stay open.
        self._session = resp.remote if uri.startswith("coaps:") else None
        self.location = "/" + "/".join(resp.opt.location_path)
        self.registrations += 1
        if not self.registered.is_set():
            self.registered_after = time.monotonic() - self.started_at
        self.registered.set()

    async def send_update(self, with_params: bool = False) -> bool:
        """Registration Update; False when the server no longer knows us (register again)."""
        if self.location is None:
            return False
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"{self.server_uri}{self.location}")
        if with_params:
            msg.opt.uri_query = (f"lt={self.objects[1].data[0][1]}", *self._binding_params())
        resp = await self._request(msg)
        if resp.code == aiocoap.CHANGED:
            self.updates += 1
            return True
        return False

    def _binding_params(self) -> list[str]:
        """Queue mode is binding ``UQ`` in LwM2M 1.0 and the flag ``Q`` from 1.1 on (§6.2.1)."""
        if self.binding == "UQ" and self.config.lwm2m_version != "1.0":
            return ["b=U", "Q"]
        return [f"b={self.binding}"]

    def _update_interval(self) -> float:
        if self.config.update_interval is not None:
            return self.config.update_interval
        return max(1.0, int(self.objects[1].data[0][1]) * 0.75)  # type: ignore[arg-type]

    async def _run(self) -> None:
        """Register, then Update before the lifetime runs out; UQ sleeps in between."""
        while self.alive:
            try:
                if self.needs_bootstrap():
                    await self.bootstrap()
                    continue
                if self.location is None or self._reregister:
                    self._reregister = False
                    self.location = None
                    await self.register()
                    if self.binding == "UQ":
                        await self._stay_awake()
                    continue
                if not (self._update_asked or self._update_timed):
                    # Idle until the next Update: the task ends, a timer (or request_update)
                    # starts the loop again.
                    self._timer = asyncio.get_running_loop().call_later(self._update_interval(),
                                                                        self._update_due)
                    self._main = None
                    return
                params = self._update_asked
                self._update_asked = self._update_timed = False
                if self.binding == "UQ":
                    self.awake = True
                new_binding = str(self.objects[1].data[0][7])
                if new_binding != self.binding:
                    self.binding = new_binding
                    self.storage.update_state(binding=new_binding)
                if not await self.send_update(with_params=params):
                    self.location = None
                    continue
                if self.binding == "UQ":
                    await self._stay_awake()
                else:
                    self.awake = True
            except (asyncio.TimeoutError, aiocoap.error.Error, OSError, SimError, *DTLS_ERRORS) as e:
                self.note(f"registration step failed: {e!r}")
                self.awake = True
                await asyncio.sleep(self.config.register_retry * (0.5 + random.random()))

    def busy(self) -> bool:
        """True while a package transfer or update is running (a UQ device stays awake)."""
        return any(not t.done() for obj in self.objects.values()
                   for t in getattr(obj, "_tasks", {}).values())

    async def _stay_awake(self) -> None:
        self.awake = True
        await asyncio.sleep(self.config.awake_seconds)
        while self.busy():
            await asyncio.sleep(0.1)
        if self.binding == "UQ" and self.alive:
            self.awake = False

    async def reboot(self, delay: float = 0.0) -> None:
        """A restart: the model keeps its slot, the device registers again.

        With ``new_port_on_reboot`` it also comes back on a new UDP port (a new NAT binding,
        as real devices do), and the server's observations are gone.
        """
        await asyncio.sleep(delay)
        if self.config.new_port_on_reboot and self.context is not None and self.alive:
            self._close_observations()
            old, self.context = self.context, await self._open_socket()
            await old.shutdown()
        self._reregister = True
        self._update_asked = True
        self._resume()

    async def _disable(self, seconds: int) -> None:
        if self.location is not None:
            await self._deregister()
        self.awake = False
        await asyncio.sleep(seconds)
        self.awake = True
        self._reregister = True
        self._update_asked = True
        self._resume()

    async def _deregister(self) -> None:
        if self.location is None or self.context is None:
            return
        msg = aiocoap.Message(code=aiocoap.DELETE,
                              uri=f"{self.server_uri}{self.location}")
        try:
            await self._request(msg, timeout=5.0)
        except (asyncio.TimeoutError, aiocoap.error.Error, OSError):
            pass
        self.location = None

    async def stop(self, deregister: bool = True) -> None:
        """Orderly stop: De-register (unless told not to), cancel tasks, close the socket."""
        self.awake = True
        if deregister:
            await self._deregister()
        await self._shutdown()

    async def die(self) -> None:
        """Power loss: no De-register, nothing more answered."""
        self.note("device died")
        await self._shutdown()

    def _close_observations(self) -> None:
        for obs_list in self.observations.values():
            for o in obs_list:
                o.close()
        self.observations.clear()

    async def _shutdown(self) -> None:
        self.alive = False
        self._close_observations()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        current = asyncio.current_task()
        for t in list(self._tasks or ()):
            if t is not current:
                t.cancel()
        for obj in self.objects.values():
            for t in list(getattr(obj, "_tasks", {}).values()):
                if t is not current:
                    t.cancel()
        self._session = None
        if self.context is not None:
            ctx, self.context = self.context, None
            await ctx.shutdown()


async def _exclusive_udp_context(site: Any, loggername: str) -> aiocoap.Context:
    """An aiocoap context on its own UDP socket (127.0.0.1, a free port).

    aiocoap's udp6 transport sets SO_REUSEPORT, and with port 0 Linux may then hand out a port
    that another SO_REUSEPORT socket of the same user already has: the two sockets share the
    traffic, so answers reach the wrong device (or another program). A device binds its socket
    itself, without that option, and hands it to the udp6 transport.
    """
    import socket

    from aiocoap.transports.udp6 import MessageInterfaceUDP6

    loop = asyncio.get_running_loop()
    ctx = aiocoap.Context(loop=loop, serversite=site, loggername=loggername)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::ffff:127.0.0.1", 0))
    except OSError:
        sock.close()
        raise
    await ctx._append_tokenmanaged_messagemanaged_transport(  # noqa: SLF001 - no public hook
        lambda mman: MessageInterfaceUDP6._create_transport_endpoint(sock, mman, ctx.log, loop))
    return ctx


def _cache_resolution(mi: Any) -> None:
    """Resolve each server address once per socket instead of once per request.

    aiocoap looks up a request's host (getaddrinfo in a worker thread) for every request made
    from a URI, which for a 64-block download is 64 lookups and thread hand-offs per device.
    A device talks to one or two hosts, and its socket lives until it reboots or stops, so the
    first answer per (scheme, host, port) is kept for the socket's life (failures are not kept).
    """
    original = mi.determine_remote
    resolved: dict[tuple[Any, ...], Any] = {}

    async def determine_remote(request: aiocoap.Message) -> Any:
        key = (request.requested_scheme, request.unresolved_remote, request.opt.uri_host,
               request.opt.uri_port)
        hit = resolved.get(key)
        if hit is None:
            hit = await original(request)
            if hit is not None and len(resolved) < 16:
                resolved[key] = hit
        return hit

    mi.determine_remote = determine_remote


def _attr_params(attrs: Attributes | None) -> dict[str, str]:
    if attrs is None:
        return {}
    out = {}
    for name in ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"):
        v = getattr(attrs, name)
        if v is not None:
            out[name] = str(int(v)) if float(v).is_integer() else repr(v)
    return out
