"""A small spec-following LwM2M 1.1 test client over raw aiocoap, independent of the server code.

It has its own TLV, SenML JSON/CBOR, text and link-format encoders (LwM2M 1.1 §7.4), so a codec bug
in the server does not hide behind the same bug here. Use it in tests::

    client = LwM2MTestClient("dev-1", {"/3/0/0": "ACME", "/3/0/9": 80, "/1/0/1": 300})
    await client.start()                       # binds 127.0.0.1 on a free UDP port
    await client.register(server_port)         # POST /rd?ep=dev-1&lt=60&lwm2m=1.1&b=U
    ... server reads / writes / executes / observes; client.set("/3/0/9", 70) notifies ...
    await client.update(lifetime=120)          # POST /rd/<id>
    await client.sleep(); await client.wake()  # queue mode: offline, then back on a NEW port + Update
    await client.deregister()                  # DELETE /rd/<id>
    await client.stop()

Options: ``lwm2m`` version ("1.0", "1.1", "1.2"), ``binding`` (None sends no b=), ``queue``
(``Q`` parameter, or b=UQ for 1.0), ``root_link`` and ``root_ct`` (``</>;rt="oma.lwm2m";ct=...``),
``formats`` it accepts (others get 4.06 on reads and 4.15 on writes), ``behaviour`` "normal",
"silent" (never answers requests) or "garbage" (answers every read with undecodable bytes).
Everything it received is in ``received`` (method, path, query, content format, accept, payload);
``executed`` has (path, args); ``attributes`` the Write-Attributes per path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2

# An exclusive UDP port per client: with SO_REUSEPORT (aiocoap's default) a port-0 bind can share
# a port with another socket of the same user and receive half of its datagrams.
os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")

from aiocoap import Code, Context, Message  # noqa: E402
from aiocoap.numbers.contentformat import ContentFormat as CF
from aiocoap.resource import ObservableResource, PathCapable

TEXT, LINK, OPAQUE, SENML_JSON, SENML_CBOR, TLV = 0, 40, 42, 110, 112, 11542

Key = tuple[int, ...]


@dataclass(frozen=True)
class Link:
    """An object link value ``object:instance``."""

    object_id: int
    instance_id: int


def parse_path(text: str) -> Key:
    text = text.strip("/")
    return tuple(int(p) for p in text.split("/")) if text else ()


def path_str(key: Key) -> str:
    return "/" + "/".join(str(i) for i in key)


# ---------------------------------------------------------------- value bytes (TLV, opaque)
def _value_bytes(v: Any) -> bytes:
    if isinstance(v, bool):
        return b"\x01" if v else b"\x00"
    if isinstance(v, int):
        for n, fmt in ((1, ">b"), (2, ">h"), (4, ">i"), (8, ">q")):
            try:
                return struct.pack(fmt, v)
            except struct.error:
                continue
        raise ValueError(f"integer {v} too large")
    if isinstance(v, float):
        return struct.pack(">d", v)
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, bytes):
        return v
    if isinstance(v, Link):
        return struct.pack(">HH", v.object_id, v.instance_id)
    raise ValueError(f"cannot encode {v!r}")


def _value_from_bytes(data: bytes, like: Any) -> Any:
    if isinstance(like, bool):
        return data != b"\x00"
    if isinstance(like, int):
        return int.from_bytes(data, "big", signed=True)
    if isinstance(like, float):
        return struct.unpack(">f" if len(data) == 4 else ">d", data)[0]
    if isinstance(like, str):
        return data.decode("utf-8")
    if isinstance(like, Link):
        o, i = struct.unpack(">HH", data)
        return Link(o, i)
    return data


def _text(v: Any) -> bytes:
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, Link):
        return f"{v.object_id}:{v.instance_id}".encode()
    if isinstance(v, float):
        return repr(v).encode()
    if isinstance(v, bytes):
        return base64.b64encode(v)
    return str(v).encode("utf-8")


def _from_text(data: bytes, like: Any) -> Any:
    s = data.decode("utf-8")
    if isinstance(like, bool):
        return s == "1"
    if isinstance(like, int):
        return int(s)
    if isinstance(like, float):
        return float(s)
    if isinstance(like, Link):
        o, i = s.split(":")
        return Link(int(o), int(i))
    if isinstance(like, bytes):
        return base64.b64decode(s)
    return s


# ---------------------------------------------------------------- TLV (LwM2M 1.1 §7.4.3)
def _tlv(kind: int, ident: int, value: bytes) -> bytes:
    t = kind << 6
    head = b""
    if ident > 255:
        t |= 0x20
        head += struct.pack(">H", ident)
    else:
        head += bytes([ident])
    n = len(value)
    if n < 8:
        t |= n
        lb = b""
    elif n < 256:
        t |= 0x08
        lb = bytes([n])
    elif n < 65536:
        t |= 0x10
        lb = struct.pack(">H", n)
    else:
        t |= 0x18
        lb = n.to_bytes(3, "big")
    return bytes([t]) + head + lb + value


def tlv_records(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        t = data[i]
        i += 1
        kind = t >> 6
        if t & 0x20:
            ident = struct.unpack(">H", data[i:i + 2])[0]
            i += 2
        else:
            ident = data[i]
            i += 1
        lt = (t >> 3) & 3
        if lt == 0:
            n = t & 7
        else:
            n = int.from_bytes(data[i:i + lt], "big")
            i += lt
        if i + n > len(data):
            raise ValueError("TLV record runs past the end")
        out.append((kind, ident, data[i:i + n]))
        i += n
    return out


# ---------------------------------------------------------------- SenML (RFC 8428, LwM2M §7.4.4-5)
def senml_records(values: dict[Key, Any], with_values: bool = True) -> list[dict[str, Any]]:
    recs = []
    for k in sorted(values):
        r: dict[str, Any] = {"n": path_str(k)}
        if with_values:
            v = values[k]
            if isinstance(v, bool):
                r["vb"] = v
            elif isinstance(v, (int, float)):
                r["v"] = v
            elif isinstance(v, str):
                r["vs"] = v
            elif isinstance(v, bytes):
                r["vd"] = v
            elif isinstance(v, Link):
                r["vlo"] = f"{v.object_id}:{v.instance_id}"
        recs.append(r)
    return recs


_CBOR_LABELS = {"bn": -2, "bt": -3, "n": 0, "v": 2, "vs": 3, "vb": 4, "vd": 8, "t": 6}
_CBOR_NAMES = {v: k for k, v in _CBOR_LABELS.items()}


def senml_encode(recs: list[dict[str, Any]], fmt: int) -> bytes:
    if fmt == SENML_JSON:
        out = []
        for r in recs:
            r = dict(r)
            if "vd" in r:
                r["vd"] = base64.urlsafe_b64encode(r["vd"]).decode().rstrip("=")
            out.append(r)
        return json.dumps(out).encode()
    return cbor2.dumps([{(_CBOR_LABELS.get(k, k)): v for k, v in r.items()} for r in recs])


def senml_decode(data: bytes, fmt: int) -> list[tuple[Key, Any]]:
    """(path, value) per record with bn/n resolved; value None for name-only records."""
    if fmt == SENML_JSON:
        raw = json.loads(data)
    else:
        raw = [{_CBOR_NAMES.get(k, k): v for k, v in r.items()} for r in cbor2.loads(data)]
    out = []
    bn = ""
    for r in raw:
        bn = r.get("bn", bn)
        name = bn + r.get("n", "")
        v: Any = None
        if "v" in r:
            v = r["v"]
        elif "vs" in r:
            v = r["vs"]
        elif "vb" in r:
            v = r["vb"]
        elif "vd" in r:
            v = r["vd"]
            if isinstance(v, str):
                v = base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))
        elif "vlo" in r:
            o, i = r["vlo"].split(":")
            v = Link(int(o), int(i))
        out.append((parse_path(name), v))
    return out


# ---------------------------------------------------------------- the client
class _Root(ObservableResource, PathCapable):
    def __init__(self, client: LwM2MTestClient) -> None:
        super().__init__()
        self.client = client
        self.observers: list[tuple[Key, Any, Any]] = []  # (path, remote, serverobservation)

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return True

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        if self.client.behaviour != "normal":
            return
        key = parse_path("/".join(request.opt.uri_path))
        entry = (key, request.remote, serverobservation)
        self.observers.append(entry)

        def gone() -> None:
            if entry in self.observers:
                self.observers.remove(entry)

        serverobservation.accept(gone)

    def notify(self, changed: Key) -> None:
        for key, _remote, obs in list(self.observers):
            if changed[: len(key)] == key or key[: len(changed)] == changed or key == ():
                obs.trigger()

    async def render(self, request: Message) -> Message:
        return await self.client._handle(request)


class LwM2MTestClient:
    """See the module docstring."""

    def __init__(self, endpoint: str, values: dict[str, Any] | None = None, *, lwm2m: str = "1.1",
                 binding: str | None = "U", queue: bool = False, lifetime: int = 60,
                 root_link: bool = True, root_ct: int | None = None,
                 formats: tuple[int, ...] = (SENML_CBOR, SENML_JSON, TLV, TEXT, OPAQUE),
                 behaviour: str = "normal", host: str = "127.0.0.1") -> None:
        self.endpoint = endpoint
        self.values: dict[Key, Any] = {parse_path(k): v for k, v in (values or {}).items()}
        self.instances: set[Key] = {k[:2] for k in self.values}
        self.extra_objects: set[int] = set()
        self.lwm2m = lwm2m
        self.binding = binding
        self.queue = queue
        self.lifetime = lifetime
        self.root_link = root_link
        self.root_ct = root_ct
        self.formats = formats
        self.behaviour = behaviour
        self.host = host
        self.context: Context | None = None
        self.root = _Root(self)
        self.server: tuple[str, int] | None = None
        self.location: str | None = None
        self.received: list[dict[str, Any]] = []
        self.executed: list[tuple[str, str]] = []
        self.attributes: dict[str, dict[str, str | None]] = {}
        self.asleep = False

    # --- lifecycle --------------------------------------------------------------
    async def start(self) -> int:
        """Bind the client's UDP socket; returns its port."""
        self.context = await Context.create_server_context(self.root, bind=(self.host, 0),
                                                           transports=["udp6"])
        return self.port

    @property
    def port(self) -> int:
        assert self.context is not None
        for ri in self.context.request_interfaces:
            udp = getattr(getattr(ri, "token_interface", None), "message_interface", None)
            tr = getattr(udp, "transport", None)
            if tr is not None:
                return int(tr.get_extra_info("socket").getsockname()[1])
        raise RuntimeError("not bound")

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    async def sleep(self) -> None:
        """Go to sleep (queue mode): the socket closes, requests to the old port go nowhere."""
        self.asleep = True
        self.root.observers.clear()
        await self.stop()

    async def wake(self, update: bool = True) -> str | None:
        """Wake up on a new source port and (by default) send an Update, as a device would."""
        self.asleep = False
        await self.start()
        if update:
            return await self.update()
        return None

    # --- registration interface -------------------------------------------------------
    def link_payload(self) -> bytes:
        links = []
        if self.root_link:
            root = '</>;rt="oma.lwm2m"'
            if self.root_ct is not None:
                root += f";ct={self.root_ct}"
            links.append(root)
        objs = sorted({k[0] for k in self.instances} | self.extra_objects)
        for o in objs:
            insts = sorted(k for k in self.instances if k[0] == o)
            if not insts:
                links.append(f"</{o}>")
            for k in insts:
                links.append(f"<{path_str(k)}>")
        return ",".join(links).encode()

    async def _request(self, code: Code, path: tuple[str, ...], query: list[str] | None = None,
                       payload: bytes = b"", content_format: int | None = None,
                       timeout: float = 10.0) -> Message:
        assert self.context is not None and self.server is not None, "start() and register() first"
        msg = Message(code=code, uri_path=path, uri_query=query or [], payload=payload)
        if content_format is not None:
            msg.opt.content_format = CF(content_format)
        host, port = self.server
        msg.unresolved_remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return await asyncio.wait_for(self.context.request(msg).response, timeout)

    def register_query(self) -> list[str]:
        q = [f"ep={self.endpoint}", f"lt={self.lifetime}", f"lwm2m={self.lwm2m}"]
        if self.binding is not None:
            q.append(f"b={self.binding}")
        if self.queue and self.lwm2m != "1.0":
            q.append("Q")
        return q

    async def register(self, server_port: int, server_host: str = "127.0.0.1",
                       query: list[str] | None = None, payload: bytes | None = None) -> Message:
        """POST /rd; on 2.01 remembers the location. Returns the response."""
        self.server = (server_host, server_port)
        resp = await self._request(Code.POST, ("rd",), query if query is not None else self.register_query(),
                                   self.link_payload() if payload is None else payload, LINK)
        if resp.code == Code.CREATED:
            self.location = "/".join(resp.opt.location_path)
        return resp

    async def update(self, lifetime: int | None = None, binding: str | None = None,
                     objects: bool = False, payload: bytes | None = None,
                     query: list[str] | None = None) -> Message:
        """POST /rd/<id> with the given changes (objects=True sends the current object links)."""
        assert self.location, "register first"
        q = list(query or [])
        if lifetime is not None:
            q.append(f"lt={lifetime}")
        if binding is not None:
            q.append(f"b={binding}")
        body = payload if payload is not None else (self.link_payload() if objects else b"")
        return await self._request(Code.POST, tuple(self.location.split("/")), q, body,
                                   LINK if body else None)

    async def deregister(self) -> Message:
        assert self.location, "register first"
        return await self._request(Code.DELETE, tuple(self.location.split("/")))

    async def send(self, values: dict[str, Any], fmt: int = SENML_CBOR) -> Message:
        """The Send operation: POST /dp with ``values`` as SenML."""
        data = {parse_path(k): v for k, v in values.items()}
        return await self._request(Code.POST, ("dp",), [], senml_encode(senml_records(data), fmt), fmt)

    # --- local data -----------------------------------------------------------------
    def set(self, path: str, value: Any) -> None:
        """Change a value; observers of it (or of a parent) get a notification."""
        key = parse_path(path)
        self.values[key] = value
        self.instances.add(key[:2])
        self.root.notify(key)

    def _under(self, key: Key) -> dict[Key, Any]:
        return {k: v for k, v in self.values.items() if k[: len(key)] == key}

    # --- requests from the server -----------------------------------------------------
    async def _handle(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        cf = request.opt.content_format
        accept = request.opt.accept
        self.received.append({
            "method": str(request.code), "path": "/" + "/".join(path), "query": list(request.opt.uri_query),
            "content_format": int(cf) if cf is not None else None,
            "accept": int(accept) if accept is not None else None, "payload": bytes(request.payload),
            "observe": request.opt.observe})
        if self.behaviour == "silent":
            await asyncio.Event().wait()
        try:
            key = tuple(int(p) for p in path if p != "")
        except ValueError:
            return Message(code=Code.NOT_FOUND)
        if self.behaviour == "garbage" and request.code in (Code.GET, Code.FETCH):
            return Message(code=Code.CONTENT, payload=b"\xff\x00garbage\x01", content_format=CF(TLV))
        try:
            return self._dispatch(request, key, int(cf) if cf is not None else None,
                                  int(accept) if accept is not None else None)
        except (ValueError, KeyError, struct.error, cbor2.CBORDecodeError) as e:
            return Message(code=Code.BAD_REQUEST, payload=str(e).encode())

    def _dispatch(self, request: Message, key: Key, cf: int | None, accept: int | None) -> Message:
        code = request.code
        if code == Code.GET and request.opt.observe == 1:
            for entry in [e for e in self.root.observers if e[0] == key]:
                self.root.observers.remove(entry)
                entry[2].deregister("cancelled by Observe=1")
        if code == Code.GET:
            if accept == LINK:
                return self._discover(key)
            return self._read(key, accept)
        if code == Code.FETCH and key == ():
            if cf not in (SENML_JSON, SENML_CBOR) or cf not in self.formats:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            paths = [p for p, _ in senml_decode(bytes(request.payload), cf)]
            values = {k: v for p in paths for k, v in self._under(p).items()}
            out = accept if accept is not None else cf
            if out not in (SENML_JSON, SENML_CBOR) or out not in self.formats:
                return Message(code=Code.NOT_ACCEPTABLE)
            return Message(code=Code.CONTENT, payload=senml_encode(senml_records(values), out),
                           content_format=CF(out))
        if code == Code.iPATCH and key == ():
            if cf not in (SENML_JSON, SENML_CBOR) or cf not in self.formats:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            for p, v in senml_decode(bytes(request.payload), cf):
                if p not in self.values:
                    return Message(code=Code.NOT_FOUND, payload=f"{path_str(p)} not found".encode())
            for p, v in senml_decode(bytes(request.payload), cf):
                self.set(path_str(p), v)
            return Message(code=Code.CHANGED)
        if code == Code.PUT and not request.payload and request.opt.uri_query:
            attrs: dict[str, str | None] = {}
            for q in request.opt.uri_query:
                k, sep, v = q.partition("=")
                attrs[k] = v if sep else None
            self.attributes.setdefault(path_str(key), {}).update(attrs)
            return Message(code=Code.CHANGED)
        if code in (Code.PUT, Code.POST) and len(key) >= 2 and not (code == Code.POST and len(key) == 3):
            if cf is None or cf not in self.formats:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            if key[:2] not in self.instances:
                return Message(code=Code.NOT_FOUND)
            values = self._decode(bytes(request.payload), cf, key)
            if code == Code.PUT and len(key) == 2:
                for k in [k for k in self.values if k[:2] == key]:
                    del self.values[k]
            if code == Code.PUT and len(key) == 3:
                for k in [k for k in self.values if k[:3] == key]:
                    del self.values[k]
            for k, v in values.items():
                self.set(path_str(k), v)
            return Message(code=Code.CHANGED)
        if code == Code.POST and len(key) == 3:
            if key not in self.values and not any(k[:3] == key for k in self.values) and key[:2] not in self.instances:
                return Message(code=Code.NOT_FOUND)
            self.executed.append((path_str(key), bytes(request.payload).decode()))
            return Message(code=Code.CHANGED)
        if code == Code.POST and len(key) == 1:
            if cf is None or cf not in self.formats:
                return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
            iid, values = self._decode_create(bytes(request.payload), cf, key[0])
            if (key[0], iid) in self.instances:
                return Message(code=Code.BAD_REQUEST, payload=b"instance exists")
            self.instances.add((key[0], iid))
            for k, v in values.items():
                self.values[k] = v
            return Message(code=Code.CREATED, location_path=(str(key[0]), str(iid)))
        if code == Code.DELETE and len(key) == 2:
            if key not in self.instances:
                return Message(code=Code.NOT_FOUND)
            self.instances.discard(key)
            for k in [k for k in self.values if k[:2] == key]:
                del self.values[k]
            return Message(code=Code.DELETED)
        return Message(code=Code.METHOD_NOT_ALLOWED)

    def _read(self, key: Key, accept: int | None) -> Message:
        values = self._under(key)
        if not values and key not in self.instances and not (len(key) == 1 and key[0] in self.extra_objects):
            return Message(code=Code.NOT_FOUND)
        fmt = accept
        if fmt is None:
            fmt = next(f for f in self.formats if f not in (TEXT, OPAQUE))
        if fmt not in self.formats:
            return Message(code=Code.NOT_ACCEPTABLE)
        if fmt in (TEXT, OPAQUE):
            if len(key) < 3 or list(values) != [key]:
                return Message(code=Code.NOT_ACCEPTABLE)
            v = values[key]
            payload = v if fmt == OPAQUE and isinstance(v, bytes) else _text(v)
            return Message(code=Code.CONTENT, payload=payload, content_format=CF(fmt))
        if fmt in (SENML_JSON, SENML_CBOR):
            return Message(code=Code.CONTENT, payload=senml_encode(senml_records(values), fmt),
                           content_format=CF(fmt))
        if fmt == TLV:
            return Message(code=Code.CONTENT, payload=self._tlv(key, values), content_format=CF(TLV))
        return Message(code=Code.NOT_ACCEPTABLE)

    def _tlv_resource(self, rkey: Key, values: dict[Key, Any]) -> bytes:
        if rkey in values:
            return _tlv(3, rkey[2], _value_bytes(values[rkey]))
        inner = b"".join(_tlv(1, k[3], _value_bytes(v)) for k, v in sorted(values.items()) if k[:3] == rkey)
        return _tlv(2, rkey[2], inner)

    def _tlv_instance_body(self, ikey: Key, values: dict[Key, Any]) -> bytes:
        rids = sorted({k[2] for k in values if k[:2] == ikey})
        return b"".join(self._tlv_resource(ikey + (r,), values) for r in rids)

    def _tlv(self, key: Key, values: dict[Key, Any]) -> bytes:
        if len(key) == 4:
            return _tlv(1, key[3], _value_bytes(values[key]))
        if len(key) == 3:
            return self._tlv_resource(key, values)
        if len(key) == 2:
            return self._tlv_instance_body(key, values)
        iids = sorted(k[1] for k in self.instances if k[0] == key[0])
        return b"".join(_tlv(0, i, self._tlv_instance_body((key[0], i), values)) for i in iids)

    def _like(self, k: Key, v: Any) -> Any:
        like = self.values.get(k)
        if like is None:  # a new instance: type as the same resource of another instance
            like = next((x for kk, x in self.values.items() if kk[:3] == k[:3]
                         or (kk[0] == k[0] and kk[2:3] == k[2:3])), None)
        return _value_from_bytes(v, like) if isinstance(v, bytes) and like is not None else v

    def _decode_tlv(self, data: bytes, base: Key) -> dict[Key, Any]:
        out: dict[Key, Any] = {}

        def walk(recs: list[tuple[int, int, bytes]], at: Key) -> None:
            for kind, ident, value in recs:
                if kind == 0:
                    walk(tlv_records(value), (at[0], ident))
                elif kind == 2:
                    walk(tlv_records(value), at[:2] + (ident,))
                elif kind == 1:
                    k = at[:3] + (ident,)
                    out[k] = self._like(k, value)
                else:
                    k = at[:2] + (ident,)
                    out[k] = self._like(k, value)

        recs = tlv_records(data)
        if len(base) >= 3 and len(recs) == 1 and recs[0][0] in (2, 3) and recs[0][1] == base[2]:
            walk(recs, base[:2])
        elif len(base) == 4:
            walk(recs, base[:3])
        else:
            walk(recs, base if len(base) >= 2 else base + (0,))
        return out

    def _decode(self, data: bytes, cf: int, key: Key) -> dict[Key, Any]:
        if cf == TEXT:
            return {key: _from_text(data, self.values.get(key, ""))}
        if cf == OPAQUE:
            return {key: data}
        if cf == TLV:
            return self._decode_tlv(data, key)
        return {p: v for p, v in senml_decode(data, cf)}

    def _decode_create(self, data: bytes, cf: int, oid: int) -> tuple[int, dict[Key, Any]]:
        free = next(i for i in range(65535) if (oid, i) not in self.instances)
        if cf == TLV:
            recs = tlv_records(data)
            if recs and recs[0][0] == 0:
                iid = recs[0][1]
                return iid, self._decode_tlv(data, (oid,))
            return free, self._decode_tlv(data, (oid, free))
        values = dict(senml_decode(data, cf))
        iids = {k[1] for k in values if len(k) >= 2}
        iid = iids.pop() if len(iids) == 1 else free
        return iid, {(oid, iid) + k[2:]: v for k, v in values.items()}

    def _discover(self, key: Key) -> Message:
        if LINK not in self.formats and LINK != 40:
            return Message(code=Code.NOT_ACCEPTABLE)
        paths: set[Key] = set()
        if len(key) == 1:
            paths.add(key)
        for i in self.instances:
            if i[: len(key)] == key or key[: len(i)] == i:
                if len(key) <= 2:
                    paths.add(i)
        for k in self.values:
            if k[: len(key)] == key or (len(key) == 3 and k[:3] == key):
                if len(k) >= 3:
                    paths.add(k[:3])
        if not paths:
            return Message(code=Code.NOT_FOUND)
        links = []
        for p in sorted(paths, key=lambda p: (len(p) > len(key), p)):
            s = f"<{path_str(p)}>"
            for a, v in self.attributes.get(path_str(p), {}).items():
                s += f";{a}" if v is None else f";{a}={v}"
            links.append(s)
        return Message(code=Code.CONTENT, payload=",".join(links).encode(), content_format=CF(LINK))


def float_equal(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)
