"""The raw SenML record model shared by SenML JSON (110), SenML CBOR (112) and LwM2M JSON (11543).

A SenML pack is a list of records (RFC 8428). This module holds the format-independent part:
the :class:`Record` value, field validation, base-name / base-time / base-value resolution
(RFC 8428 §4.5, LwM2M 1.1 §7.4.4), typing of values by the object definitions, the mapping of
resolved records to ``{path: value}`` and nodes, and the record layout our encoders write.
The wire modules (``senml_json``, ``senml_cbor``) only turn bytes into field dicts and back.

Layout we encode (the one the LwM2M 1.1 Core spec's examples use, byte for byte):

- a node at ``/3/0``: ``bn`` ``"/3/0/"`` on the first record, every record names its leaf
  relative to it (``"n":"6/0"``); a single resource at ``/3/0/0``: ``bn`` is the full path and
  there is no ``n``; at the root ``bn`` is ``"/"``;
- several paths (Read-Composite, Write-Composite, Send): each record carries its full path in
  ``n`` and there is no ``bn`` (unless the caller gives a base path);
- timestamps: ``bt`` once on the first record, ``t`` relative to it on the others.

An empty payload decodes as an empty pack (some clients answer a read of an empty instance
that way). Decoding accepts any layout RFC 8428 allows (``bn`` anywhere and redefined, ``bt`` + ``t``,
``bv`` + ``v``, fields in any order, unknown fields ignored unless they end with ``_``).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..model import (
    LwM2mObject,
    MultipleResource,
    Node,
    NodeError,
    ObjectInstance,
    ObjectRegistry,
    ObjLnk,
    Path,
    PathError,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
    ValueTypeError,
    build,
    check_value,
    guess_type,
    walk_leaves,
)
from .base import CodecError, ContentFormat, TimestampedValues

__all__ = [
    "MAX_RECORDS",
    "MIN_TIME",
    "MAX_TIME",
    "Record",
    "Entry",
    "SenMLCodec",
    "make_record",
    "check_fields",
    "fields_of",
    "record_maps",
    "resolve",
    "typed_value",
    "value_kind",
    "leaves",
    "values_to_node",
    "group_by_time",
    "finite_number",
    "leaf_type",
    "raw_value",
]

# A pack is refused above this many records: nothing a device sends comes near it, and it
# bounds the work a hostile payload can cause.
MAX_RECORDS = 10_000

# RFC 8428: the version this decoder understands; packs announcing a later one are refused.
SENML_VERSION = 10

# Times must fall in the years 1..9999 (seconds from the epoch), the range datetime allows.
MIN_TIME, MAX_TIME = -62135596800, 253402300799
VALUE_FIELDS = ("v", "vs", "vb", "vd", "vlo")
_INT64_MAX = 2**63 - 1
_NUMBER_FIELDS = ("bt", "t", "v", "bv")
_TEXT_FIELDS = ("bn", "n", "vs", "vlo")
_VALUE_FIELD_SET = frozenset(VALUE_FIELDS)
_FIELD_GROUP = {**{f: 1 for f in _NUMBER_FIELDS}, **{f: 2 for f in _TEXT_FIELDS}}


@dataclass(frozen=True, slots=True)
class Record:
    """One SenML record with the fields LwM2M uses; None where the record has no such field."""

    bn: str | None = None
    bt: int | float | None = None
    bv: int | float | None = None
    n: str | None = None
    v: int | float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: bytes | None = None
    vlo: str | None = None
    t: int | float | None = None

    @property
    def kind(self) -> str | None:
        """Which value field the record carries (``"v"``, ``"vs"``, ...), None for none."""
        # Spelled out (not a loop over VALUE_FIELDS with getattr): asked once per decoded value.
        if self.v is not None:
            return "v"
        if self.vs is not None:
            return "vs"
        if self.vb is not None:
            return "vb"
        if self.vd is not None:
            return "vd"
        if self.vlo is not None:
            return "vlo"
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """A record after base resolution: full name, value kind and raw value, absolute time."""

    index: int
    name: str
    kind: str | None
    raw: Any
    time: int | float | None


def _where(index: int | str, field: str | None = None) -> str:
    if isinstance(index, str):  # already a place (a path): formats without records
        return index
    return f"record {index} field '{field}'" if field else f"record {index}"


def finite_number(value: object, index: int | str, field: str) -> int | float:
    """A finite JSON/CBOR number as int (exact) or float; CBOR decimal fractions included."""
    if type(value) is int:
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CodecError(f"{field} must be a finite number", _where(index, field))
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CodecError(f"{field} must be a number, got {type(value).__name__}", _where(index, field))
    if isinstance(value, float) and not math.isfinite(value):
        raise CodecError(f"{field} must be a finite number, got {value}", _where(index, field))
    return value


def _text(value: object, index: int, field: str) -> str:
    if not isinstance(value, str):
        raise CodecError(f"{field} must be a text string, got {type(value).__name__}", _where(index, field))
    if not value.isascii():  # only non-ASCII text can hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CodecError(f"{field} is not valid UTF-8 text", _where(index, field)) from None
    return value


def record_maps(doc: object, pack: str, record: str, counted: str = "records") -> list[dict[Any, Any]]:
    """The records of a parsed pack: ``doc`` must be an array of at most MAX_RECORDS maps.

    ``pack`` and ``record`` name them in errors ("a SenML JSON pack", "a record is an object").
    """
    if not isinstance(doc, list):
        raise CodecError(f"{pack} is an array, got {type(doc).__name__}")
    if len(doc) > MAX_RECORDS:
        raise CodecError(f"too many {counted}: {len(doc)} (at most {MAX_RECORDS})")
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict):
            raise CodecError(f"{record}, got {type(rec).__name__}", f"record {i}")
    return doc


def make_record(fields: Mapping[str, object], index: int) -> Record:
    """A validated Record from one record's fields (names as in SenML JSON, ``vd`` as bytes)."""
    return Record(**check_fields(fields, index))


def check_fields(fields: Mapping[str, object], index: int) -> dict[str, Any]:
    """The fields of one record, validated as :func:`make_record` does, as a dict of the Record
    fields present (the decoders' fast path: no Record object per value)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        group = _FIELD_GROUP.get(name)
        if group == 1:
            out[name] = finite_number(value, index, name)
        elif group == 2:
            out[name] = _text(value, index, name)
        elif name == "vb":
            if not isinstance(value, bool):
                raise CodecError(f"vb must be true or false, got {type(value).__name__}", _where(index, name))
            out[name] = value
        elif name == "vd":
            if not isinstance(value, bytes):
                raise CodecError("vd must be a byte string", _where(index, name))
            out[name] = value
        elif name == "bver":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SENML_VERSION:
                raise CodecError(f"unsupported SenML version {value!r} (this server reads up to "
                                 f"{SENML_VERSION})", _where(index, name))
        elif name.endswith("_"):
            # RFC 8428 §4.4: a field ending in "_" must be understood or the pack refused.
            raise CodecError(f"unknown must-understand field {name!r}", _where(index, name))
        # Other unknown fields (and units, sums) are ignored as RFC 8428 asks.
    if len(out) > 1 and len(_VALUE_FIELD_SET.intersection(out)) > 1:
        kinds = [f for f in VALUE_FIELDS if f in out]
        if len(kinds) > 1:
            raise CodecError(f"a record carries one value, got {', '.join(kinds)}", _where(index))
    return out


# A record as resolution needs it: (bn, bt, bv, n, t, value kind, raw value).
_Fields = tuple[Any, Any, Any, Any, Any, "str | None", Any]
# A resolved record: (index, full name, value kind, raw value, absolute time) - Entry's fields.
_Resolved = tuple[int, str, "str | None", Any, "int | float | None"]


def resolve(records: Iterable[Record]) -> list[Entry]:
    """Apply base name, base time and base value (RFC 8428 §4.5) to every record, in order."""
    return [Entry(*e) for e in _resolve(_record_fields(r) for r in records)]


def _record_fields(r: Record) -> _Fields:
    kind = r.kind
    return r.bn, r.bt, r.bv, r.n, r.t, kind, getattr(r, kind) if kind else None


def fields_of(fields: Mapping[str, Any]) -> _Fields:
    """What :func:`_resolve` needs from a dict that :func:`check_fields` returned."""
    get = fields.get
    kind = ("v" if "v" in fields else "vs" if "vs" in fields else "vb" if "vb" in fields
            else "vd" if "vd" in fields else "vlo" if "vlo" in fields else None)
    return get("bn"), get("bt"), get("bv"), get("n"), get("t"), kind, get(kind) if kind else None


def _resolve(records: Iterable[_Fields]) -> list[_Resolved]:
    """Base name, base time and base value applied to every record, in order (all records are
    resolved before any is typed, so a bad time is reported before a bad name further on)."""
    bn = ""
    bt: int | float | None = None
    bv: int | float | None = None
    out: list[_Resolved] = []
    now: float | None = None
    for i, (r_bn, r_bt, r_bv, r_n, r_t, kind, raw) in enumerate(records):
        if r_bn is not None:
            bn = r_bn
        if r_bt is not None:
            bt = r_bt
        if r_bv is not None:
            bv = r_bv
        name = bn + r_n if r_n else bn
        if bt is None and r_t is None:
            when: int | float | None = None
        else:
            when = (bt or 0) + (r_t or 0)
            # RFC 8428 §4.5.3 takes times below 2**28 as relative to "now", but LwM2M clients
            # and Leshan send absolute times like 25462634 (the spec's own example): only a
            # negative result is relative here.
            if when < 0:
                if now is None:
                    now = _time.time()
                when = now + when
            if not MIN_TIME <= when <= MAX_TIME:
                raise CodecError(f"time {when} is out of range (years 1..9999)",
                                 _where(i, "t" if r_t is not None else "bt"))
        if kind == "v" and bv is not None:
            raw = raw + bv
        out.append((i, name, kind, raw, when))
    return out


@lru_cache(maxsize=4096)
def _parse_name(name: str) -> Path | str:
    """The path of a full SenML name, or why it is none (cached: devices repeat their names)."""
    if not name.startswith("/"):
        return "is not an LwM2M path (must start with '/')"
    if name != "/" and (name.endswith("/") or "//" in name):
        return "is not a valid LwM2M path"
    try:
        return Path.parse(name)
    except PathError as e:
        return str(e)


def name_to_path(name: str, index: int, min_level: int = 3) -> Path:
    """The LwM2M path a resolved SenML name stands for, at least ``min_level`` deep."""
    path = _parse_name(name) if len(name) <= 32 else _parse_name.__wrapped__(name)
    if isinstance(path, str):
        raise CodecError(f"name {name!r} {path}" if path.startswith("is ") else f"name {name!r}: {path}",
                         _where(index, "n"))
    if path.level < min_level:
        raise CodecError(f"name {name!r} is not a resource or resource instance path", _where(index, "n"))
    return path


# --- values ------------------------------------------------------------------------------

_KIND_OF_TYPE = {
    ResourceType.STRING: "vs",
    ResourceType.CORELNK: "vs",
    ResourceType.INTEGER: "v",
    ResourceType.UNSIGNED_INTEGER: "v",
    ResourceType.TIME: "v",
    ResourceType.FLOAT: "v",
    ResourceType.BOOLEAN: "vb",
    ResourceType.OPAQUE: "vd",
    ResourceType.OBJLNK: "vlo",
}


def value_kind(rtype: ResourceType, where: str | None = None) -> str:
    """The SenML value field that carries a value of ``rtype``."""
    kind = _KIND_OF_TYPE.get(rtype)
    if kind is None:
        raise CodecError(f"a {rtype.value} resource has no value to encode", where)
    return kind


def _type_of_kind(kind: str, raw: Any) -> ResourceType:
    if kind == "v":
        if isinstance(raw, int):
            return ResourceType.UNSIGNED_INTEGER if raw > _INT64_MAX else ResourceType.INTEGER
        return ResourceType.FLOAT
    return {"vs": ResourceType.STRING, "vb": ResourceType.BOOLEAN, "vd": ResourceType.OPAQUE,
            "vlo": ResourceType.OBJLNK}[kind]


def typed_value(kind: str | None, raw: Any, rtype: ResourceType | None,
                where: str) -> tuple[Value, ResourceType]:
    """The typed value of one record: ``rtype`` from the definitions, else implied by ``kind``."""
    if kind is None:
        raise CodecError("record has no value", where)
    if rtype is None:
        rtype = _type_of_kind(kind, raw)
    elif rtype is ResourceType.NONE:
        raise CodecError("resource has no value (executable) but the record carries one", where)
    expected = value_kind(rtype, where)
    if kind != expected:
        raise CodecError(f"a {rtype.value} resource needs {expected}, got {kind}", where)
    value: Any = raw
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.TIME):
        if isinstance(raw, float):
            if not raw.is_integer():
                raise CodecError(f"{raw!r} is not an integer ({rtype.value} resource)", where)
            value = int(raw)
    elif rtype is ResourceType.OBJLNK:
        try:
            value = ObjLnk.parse(raw)
        except ValueTypeError as e:
            raise CodecError(str(e), where) from None
    try:
        return check_value(value, rtype), rtype
    except ValueTypeError as e:
        raise CodecError(str(e), where) from None


def raw_value(value: Value, rtype: ResourceType, where: str | None = None) -> tuple[str, Any]:
    """``(kind, raw)`` for encoding ``value`` of ``rtype``; raw is str/int/float/bool/bytes."""
    kind = value_kind(rtype, where)
    try:
        value = check_value(value, rtype)
    except ValueTypeError as e:
        raise CodecError(str(e), where) from None
    if kind == "vlo":
        return kind, str(value)
    return kind, value


# --- nodes ---------------------------------------------------------------------------------

_NODE_LEVEL = {LwM2mObject: 1, ObjectInstance: 2, SingleResource: 3, MultipleResource: 3, ResourceInstance: 4}


def leaves(node: Node, path: Path) -> list[tuple[Path, Value, ResourceType]]:
    """Every leaf of ``node`` (at ``path``) with its value and type, in path order."""
    level = _NODE_LEVEL.get(type(node))
    if level != path.level:
        raise CodecError(f"a {type(node).__name__} cannot sit at {path}", str(path))
    if node.id is not None and node.id != path.ids[-1]:
        raise CodecError(f"node id {node.id} does not match the path {path}", str(path))
    try:
        out = list(walk_leaves(node, path))
    except (PathError, TypeError) as e:  # e.g. an instance without id inside an object
        raise CodecError(f"cannot encode this node at {path}: {e}", str(path)) from None
    out.sort(key=_ids_of_leaf)
    return out


def _ids_of_leaf(leaf: tuple[Path, Value, ResourceType]) -> tuple[int, ...]:
    return leaf[0].ids


def values_to_node(values: Mapping[Path, Value], types: Mapping[Path, ResourceType], path: Path,
                   registry: ObjectRegistry) -> Node:
    """The node at ``path`` holding decoded leaf values; every leaf must lie under ``path``.

    ``values`` and ``types`` are what :func:`typed_value` returned for each leaf (values already
    checked against their types, so the node tree is built without checking them again).
    """
    for p in values:
        if not p.starts_with(path):
            raise CodecError(f"{p} is not under the requested path {path}", str(p))
    if path.is_root:
        raise CodecError("a node cannot sit at the root path; decode values instead", "/")
    if not values and path.is_resource:
        d = registry.resource_for(path)
        if d is not None and d.multiple:
            return MultipleResource(path.resource_id, {}, d.type)  # type: ignore[arg-type]
        raise CodecError(f"no value for {path}", str(path))
    if not values and path.is_object:
        return LwM2mObject(path.object_id, {})  # type: ignore[arg-type]
    try:
        return build(values, path, registry, types, checked=True)
    except (NodeError, ValueTypeError, PathError) as e:
        raise CodecError(str(e), str(path)) from None


def group_by_time(items: Iterable[tuple[int | float | None, Path, Value]],
                  where: Callable[[int], str] | None = None) -> TimestampedValues:
    """Group consecutive leaves sharing one timestamp; a path twice in one group is an error."""
    out: TimestampedValues = []
    for n, (when, p, v) in enumerate(items):
        if not out or out[-1][0] != when:
            out.append((when, {}))
        group = out[-1][1]
        if p in group:
            raise CodecError(f"duplicate path {p} with the same timestamp", where(n) if where else str(p))
        group[p] = v
    return out


# --- the codec, parameterised by the wire format ---------------------------------------------

class SenMLCodec:
    """NodeCodec and MultiPathCodec for SenML packs; subclasses supply ``load`` and ``dump``."""

    content_format: ContentFormat

    # wire layer --------------------------------------------------------------------------
    def load(self, data: bytes) -> list[Record]:
        """Records from bytes; CodecError on anything malformed."""
        raise NotImplementedError

    def dump(self, records: list[Record]) -> bytes:
        raise NotImplementedError

    def dump_fields(self, records: list[dict[str, Any]]) -> bytes:
        """Bytes for records given as field dicts in Record field order (the encoders' fast
        path); by default through :meth:`dump`."""
        return self.dump([Record(**r) for r in records])

    # decoding ----------------------------------------------------------------------------
    def load_at(self, data: bytes, path: Path | None) -> list[Record]:
        """Records of a payload read for ``path`` (None: a payload of several paths)."""
        return self.load(data)

    def load_fields(self, data: bytes) -> list[dict[str, Any]] | None:
        """The records of ``data`` as :func:`check_fields` dicts, where the wire format can give
        them without Record objects (faster); None: use :meth:`load_at`."""
        return None

    def _resolved(self, data: bytes, path: Path | None) -> list[_Resolved]:
        if not data:
            return []
        if type(self).load_at is SenMLCodec.load_at:
            maps = self.load_fields(data)
            if maps is not None:
                return _resolve(map(fields_of, maps))
        return _resolve(map(_record_fields, self.load_at(data, path)))

    def adapt(self, entry: Entry, rtype: ResourceType | None) -> Entry:
        """Hook for formats whose value fields depend on the resource type (LwM2M JSON)."""
        return entry

    def _typed(self, data: bytes, registry: ObjectRegistry, path: Path | None = None
               ) -> list[tuple[int, int | float | None, Path, Value, ResourceType]]:
        """(record index, time, path, value, type) of every record."""
        out = []
        adapts = type(self).adapt is not SenMLCodec.adapt
        resource_type = registry.resource_type
        for e in self._resolved(data, path):
            index, name, kind, raw, when = e
            p = name_to_path(name, index)
            rtype = resource_type(p)
            if adapts:
                adapted = self.adapt(Entry(*e), rtype)
                kind, raw = adapted.kind, adapted.raw
            v, t = typed_value(kind, raw, rtype, _where(index, kind))
            out.append((index, when, p, v, t))
        return out

    def _collect(self, data: bytes, registry: ObjectRegistry, path: Path | None = None
                 ) -> tuple[dict[Path, Value], dict[Path, ResourceType]]:
        values: dict[Path, Value] = {}
        types: dict[Path, ResourceType] = {}
        for index, _when, p, v, t in self._typed(data, registry, path):
            n = len(values)
            values[p] = v
            if len(values) == n:  # one hash per path instead of a lookup and a store
                raise CodecError(f"duplicate path {p}", _where(index, "n"))
            types[p] = t
        return values, types

    def decode_values(self, data: bytes, registry: ObjectRegistry) -> dict[Path, Value]:
        return self._collect(data, registry)[0]

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node:
        values, types = self._collect(data, registry, path)
        return values_to_node(values, types, path, registry)

    def decode_timestamped(self, data: bytes, registry: ObjectRegistry) -> TimestampedValues:
        typed = self._typed(data, registry)
        return group_by_time(((when, p, v) for _i, when, p, v, _t in typed),
                             lambda n: _where(typed[n][0], "n"))

    def decode_paths(self, data: bytes) -> list[Path]:
        out: list[Path] = []
        for e in resolve(self.load(data) if data else []):
            if e.kind is not None:
                raise CodecError("a path list carries no values", _where(e.index, e.kind))
            out.append(name_to_path(e.name, e.index, min_level=0))
        return out

    # encoding ----------------------------------------------------------------------------
    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        return self.dump_fields(_records([(None, p, v, t) for p, v, t in leaves(node, path)], path))

    def encode_values(self, values: Mapping[Path, Value], registry: ObjectRegistry,
                      base: Path | None = None) -> bytes:
        return self.dump_fields(_records(
            [(None, p, v, leaf_type(p, v, registry)) for p, v in values.items()], base))

    def encode_timestamped(self, entries: TimestampedValues, registry: ObjectRegistry,
                           base: Path | None = None) -> bytes:
        """A pack of timestamped values (notifications, Send), the inverse of decode_timestamped."""
        return self.dump_fields(_records(
            [(when, p, v, leaf_type(p, v, registry)) for when, values in entries
             for p, v in values.items()], base))

    def encode_paths(self, paths: list[Path]) -> bytes:
        return self.dump([Record(n=str(p)) for p in paths])


def leaf_type(p: Path, v: Value, registry: ObjectRegistry) -> ResourceType:
    """The type to encode a leaf value with: the definition's, else what the value implies."""
    if p.level < 3:
        raise CodecError(f"{p} is not a resource or resource instance path", str(p))
    return registry.resource_type(p) or guess_type(v)


def _records(items: list[tuple[int | float | None, Path, Value, ResourceType]],
             base: Path | None) -> list[dict[str, Any]]:
    """Records for leaves, as field dicts in Record field order: names relative to ``base`` (see
    the module docstring for the layout)."""
    out: list[dict[str, Any]] = []
    bt: int | float | None = None
    # Values all at the base path itself (one resource, or its time series): no names at all.
    exact = base is not None and bool(items) and all(p == base for _w, p, _v, _t in items)
    depth = len(base.ids) if base is not None else 0
    for i, (when, p, v, t) in enumerate(items):
        kind = _KIND_OF_TYPE.get(t)
        try:
            raw = check_value(v, t) if kind is not None else None
        except ValueTypeError:
            kind = None
        if kind is None:
            raw_value(v, t, str(p))  # raises the error that says what is wrong
        if kind == "vlo":
            raw = str(raw)
        fields: dict[str, Any] = {}
        if base is None:
            fields["n"] = str(p)
        else:
            if not p.starts_with(base):
                raise CodecError(f"{p} is not under the base path {base}", str(p))
            if i == 0:
                fields["bn"] = str(base) if exact or base.is_root else f"{base}/"
            if not exact:
                fields["n"] = "/".join(map(str, p.ids[depth:]))
        if when is not None and bt is None:
            bt = when
            fields["bt"] = when
            if "n" in fields:  # keep Record's field order: bn, bt, n, value, t
                fields["n"] = fields.pop("n")
        fields[kind] = raw  # type: ignore[index]
        if when is not None and when != bt:
            fields["t"] = when - bt  # type: ignore[operator]
        out.append(fields)
    return out
