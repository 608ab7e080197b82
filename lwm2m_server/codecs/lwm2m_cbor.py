"""LwM2M CBOR (content format 11544, LwM2M 1.2 §7.4.4; also sent by 1.1 devices that announce it).

A payload is one CBOR map whose keys are path ids from the root: an unsigned integer (one id)
or an array of unsigned integers (several ids at once), nested until a key path reaches a
resource or resource instance, whose entry is the value:
``{3: {0: {0: "Open Mobile Alliance", 7: {0: 3800, 1: 5000}}}}`` or ``{[3, 0]: {0: "..."}}``.

Values: integers (exact), floats (finite), booleans, text (string, corelnk, and objlnk as
``"3:0"``), byte strings (opaque), and time as tag 1 around an integer (a plain number is
accepted too, and written for times outside the years 1..9999).

We encode one map per level from the object id, definite lengths, doubles for floats; we decode
definite and indefinite maps, array keys, nested keys and mixes of them. Keys always start at the
object id: the spec requires it for everything but Write and Create and allows it there too,
which keeps Create unambiguous. Path lists (composite requests) are the same maps with ``null``
at each listed path. An empty payload reads as an empty map. The format carries no timestamps.
Typing and node building are shared with SenML (:mod:`.senml`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import cbor2

from ..model import Node, ObjectRegistry, Path, PathError, ResourceType, Value
from .base import CodecError, ContentFormat, TimestampedValues
from .senml import (
    MAX_RECORDS,
    MAX_TIME,
    MIN_TIME,
    finite_number,
    leaf_type,
    leaves,
    raw_value,
    typed_value,
    values_to_node,
)
from .senml_cbor import load_cbor

__all__ = ["LwM2mCborCodec", "CODEC"]

_NULL = object()  # marks a path-list leaf


def _key_ids(key: object, prefix: tuple[int, ...]) -> tuple[int, ...]:
    if type(key) is int and 0 <= key <= 65535:  # the common case: one valid id
        return (key,)
    where = Path(prefix).__str__() if prefix else "/"
    ids = key if isinstance(key, tuple) else (key,)
    if not ids:
        raise CodecError("empty array as a map key", f"under {where}")
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise CodecError(f"map keys are path ids (unsigned integers), got {type(i).__name__}",
                             f"under {where}")
        if not 0 <= i <= 65535:
            raise CodecError(f"path id {i} is outside 0..65535", f"under {where}")
    return ids


def _walk(data: bytes) -> list[tuple[Path, Any]]:
    """Every leaf of the payload's maps as (path, raw CBOR value), in payload order."""
    if isinstance(data, (bytes, bytearray, memoryview)) and not data:
        return []  # an empty payload is an empty map, as for SenML
    doc = load_cbor(data)
    if not isinstance(doc, dict):
        raise CodecError(f"an LwM2M CBOR payload is a map, got {type(doc).__name__}")
    out: list[tuple[Path, Any]] = []

    def walk(prefix: tuple[int, ...], mapping: dict) -> None:
        # Every level adds at least one id and paths stop at 4, so this recursion stays shallow.
        for key, value in mapping.items():
            ids = prefix + _key_ids(key, prefix)
            if len(ids) > 4:
                raise CodecError("path deeper than 4 levels", "/" + "/".join(map(str, ids)))
            if len(ids) >= 2 and ids[1] == 65535:  # the one rule _key_ids does not check
                try:
                    Path(ids)
                except PathError as e:
                    raise CodecError(str(e), "/" + "/".join(map(str, ids))) from None
            if isinstance(value, dict):
                walk(ids, value)
            else:
                # ints in 0..65535, at most 4 of them, no instance 65535: checked above
                out.append((Path._trusted(ids), _NULL if value is None else value))
                if len(out) > MAX_RECORDS:
                    raise CodecError(f"too many values (at most {MAX_RECORDS})")

    walk((), doc)
    return out


def _kind(raw: Any, rtype: ResourceType | None, where: str) -> tuple[str, Any, ResourceType | None]:
    """The SenML value kind a raw CBOR leaf stands for, so SenML's typing rules apply."""
    if raw is _NULL:
        raise CodecError("null is not a resource value", where)
    if isinstance(raw, bool):
        return "vb", raw, rtype
    if isinstance(raw, (int, float, Decimal)):
        return "v", finite_number(raw, where, "value"), rtype
    if isinstance(raw, datetime):  # tag 0 or tag 1
        ts = raw.timestamp()
        return "v", int(ts) if ts.is_integer() else ts, rtype or ResourceType.TIME
    if isinstance(raw, str):
        return ("vlo" if rtype is ResourceType.OBJLNK else "vs"), raw, rtype
    if isinstance(raw, bytes):
        return "vd", raw, rtype
    raise CodecError(f"unsupported CBOR value of type {type(raw).__name__}", where)


class LwM2mCborCodec:
    """NodeCodec and MultiPathCodec for LwM2M CBOR."""

    content_format = ContentFormat.LWM2M_CBOR

    # decoding ----------------------------------------------------------------------------
    def _collect(self, data: bytes, registry: ObjectRegistry
                 ) -> tuple[dict[Path, Value], dict[Path, ResourceType]]:
        values: dict[Path, Value] = {}
        types: dict[Path, ResourceType] = {}
        deep = False
        for path, raw in _walk(data):
            where = str(path)
            if len(path.ids) < 3:
                raise CodecError(f"a value at {path}, which is not a resource", where)
            if path in values:
                raise CodecError(f"duplicate path {path}", where)
            kind, raw, rtype = _kind(raw, registry.resource_type(path), where)
            values[path], types[path] = typed_value(kind, raw, rtype, where)
            deep = deep or len(path.ids) == 4
        if deep:
            for p in values:  # a resource instance listed before its resource's own value
                if len(p.ids) == 4 and p.parent() in values:
                    raise CodecError(f"{p.parent()} has both a value and instances", str(p))
        return values, types

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node:
        values, types = self._collect(data, registry)
        return values_to_node(values, types, path, registry)

    def decode_values(self, data: bytes, registry: ObjectRegistry) -> dict[Path, Value]:
        return self._collect(data, registry)[0]

    def decode_timestamped(self, data: bytes, registry: ObjectRegistry) -> TimestampedValues:
        values = self.decode_values(data, registry)
        return [(None, values)] if values else []

    def decode_paths(self, data: bytes) -> list[Path]:
        out = []
        for path, raw in _walk(data):
            if raw is not _NULL:
                raise CodecError("a path list has null at each path, got a value", str(path))
            out.append(path)
        return out

    # encoding ----------------------------------------------------------------------------
    def _dump(self, items: list[tuple[Path, Any]], base: Path | None = None) -> bytes:
        root: dict[int, Any] = {}
        if not items and base is not None:  # an empty node keeps its maps down to its path
            d = root
            for i in base.ids:
                d = d.setdefault(i, {})
        for path, raw in items:
            d = root
            for i in path.ids[:-1]:
                d = d.setdefault(i, {})
                if not isinstance(d, dict):
                    raise CodecError(f"{path} lies under a path that has a value", str(path))
            if path.ids[-1] in d:
                raise CodecError(f"{path} given twice or together with paths under it", str(path))
            d[path.ids[-1]] = raw
        return cbor2.dumps(root)

    @staticmethod
    def _raw(path: Path, value: Value, rtype: ResourceType) -> Any:
        _kind_, raw = raw_value(value, rtype, str(path))
        # Tag 1 decodes to a datetime, years 1..9999 only: other times go out as bare integers.
        if rtype is ResourceType.TIME and MIN_TIME <= raw <= MAX_TIME:
            return cbor2.CBORTag(1, raw)
        return raw

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        return self._dump([(p, self._raw(p, v, t)) for p, v, t in leaves(node, path)], path)

    def encode_values(self, values: Mapping[Path, Value], registry: ObjectRegistry,
                      base: Path | None = None) -> bytes:
        return self._dump([(p, self._raw(p, v, leaf_type(p, v, registry))) for p, v in values.items()])

    def encode_paths(self, paths: list[Path]) -> bytes:
        if any(p.is_root for p in paths):
            raise CodecError("LwM2M CBOR cannot list the root path; use SenML", "/")
        return self._dump([(p, None) for p in paths])


CODEC = LwM2mCborCodec()
