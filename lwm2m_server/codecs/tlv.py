"""OMA TLV (content formats 11542 and the old 1542), LwM2M 1.1 §7.4.3.

Two layers, kept apart as the wire format and its meaning are: :func:`read_tlv` and
:func:`write_tlv` turn bytes into :class:`Tlv` records and back (headers, ids, lengths, the
record nesting TLV allows); :class:`TlvCodec` maps records to the node tree and back, typing
values by the object definitions (unknown resources are opaque bytes).

What is accepted where (as real clients differ, and as Leshan accepts):

* object path ``/o``: object-instance records; for a single-instance or unknown object also
  bare resource records, taken as instance 0;
* instance path ``/o/i``: its resource records, bare or wrapped in one object-instance record;
* resource path ``/o/i/r``: one resource or multiple-resource record, or the resource-instance
  records of a multiple resource, optionally wrapped in the object-instance record;
* resource-instance path: one resource-instance record, optionally wrapped in its
  multiple-resource and object-instance records.

Encoding writes the spec's form: an object is a sequence of object-instance records, an
instance its bare resources, ids and lengths in the fewest bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from ..model import (
    LwM2mObject,
    MultipleResource,
    Node,
    NodeError,
    ObjectInstance,
    ObjectRegistry,
    ObjLnk,
    Path,
    PathLevel,
    Resource,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
    ValueTypeError,
)
from .base import CodecError, ContentFormat

__all__ = [
    "TlvType", "Tlv", "read_tlv", "write_tlv", "encode_tlv_value", "decode_tlv_value",
    "TlvCodec", "CODEC", "MAX_RECORDS",
]

# A 16 MiB payload could hold millions of 2-byte records; no real object needs more than this.
MAX_RECORDS = 65536
_MAX_LENGTH = (1 << 24) - 1
_NO_INSTANCE = 65535


class TlvType(IntEnum):
    """Bits 7-6 of a TLV type byte."""

    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE_VALUE = 3


# Which record types a container record may hold; leaves hold bytes.
_CHILDREN: dict[TlvType, tuple[TlvType, ...]] = {
    TlvType.OBJECT_INSTANCE: (TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE),
    TlvType.MULTIPLE_RESOURCE: (TlvType.RESOURCE_INSTANCE,),
}
_TYPES = tuple(TlvType)
_NAMES = {TlvType.OBJECT_INSTANCE: "object instance", TlvType.RESOURCE_INSTANCE: "resource instance",
          TlvType.MULTIPLE_RESOURCE: "multiple resource", TlvType.RESOURCE_VALUE: "resource"}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV record: a leaf with ``value`` bytes, or a container with ``children``.

    ``offset`` and ``value_offset`` are where the record and its value start in the buffer it
    was read from (0 for built ones).
    """

    type: TlvType
    id: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()
    offset: int = field(default=0, compare=False)
    value_offset: int = field(default=0, compare=False)

    @property
    def is_container(self) -> bool:
        return self.type in _CHILDREN

    @property
    def name(self) -> str:
        return _record_name(self.type, self.id, self.offset)


def _record_name(rtype: TlvType, id_: int, offset: int) -> str:
    return f"{_NAMES[rtype]} record {id_} at offset {offset}"


def _where(offset: int) -> str:
    return f"offset {offset}"


# --- raw records -----------------------------------------------------------------------------

def _length_size(length: int) -> int:
    return 0 if length < 8 else 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3


def read_tlv(data: bytes) -> list[Tlv]:
    """The records in ``data``; CodecError names the offset of the first thing wrong.

    Containers are read into their children: an object instance holds resources and multiple
    resources, a multiple resource holds resource instances, nothing else nests. At most
    :data:`MAX_RECORDS` records in all.
    """
    buf = bytes(data)
    count = [0]
    return _read(buf, 0, len(buf), None, count)


def _read(buf: bytes, start: int, end: int, parent: tuple[TlvType, str] | None,
          count: list[int]) -> list[Tlv]:
    """The records in ``buf[start:end]``; ``parent`` is the enclosing record's type and name."""
    records: list[Tlv] = []
    allowed = _CHILDREN[parent[0]] if parent is not None else None
    pos = start
    while pos < end:
        count[0] += 1
        if count[0] > MAX_RECORDS:
            raise CodecError(f"more than {MAX_RECORDS} TLV records", _where(pos))
        offset = pos
        kind = buf[pos]
        rtype = _TYPES[kind >> 6]
        id_size = 2 if kind & 0x20 else 1
        len_size = (kind >> 3) & 0x03
        header = 1 + id_size + len_size
        if offset + header > end:
            raise CodecError(f"TLV header needs {header} bytes, {end - offset} left", _where(offset))
        id_ = int.from_bytes(buf[pos + 1:pos + 1 + id_size], "big")
        length = kind & 0x07 if len_size == 0 else int.from_bytes(
            buf[pos + 1 + id_size:pos + header], "big")
        value_start = offset + header
        value_end = value_start + length
        if value_end > end:
            raise CodecError(f"{_NAMES[rtype]} record {id_} has length {length} but the "
                             f"{'buffer' if parent is None else parent[1]} ends "
                             f"{end - value_start} bytes after its header", _where(offset))
        if allowed is not None and rtype not in allowed:
            raise CodecError(f"a {_NAMES[rtype]} record cannot sit inside a {parent[1]}",  # type: ignore[index]
                             _where(offset))
        if rtype in _CHILDREN:
            children = _read(buf, value_start, value_end,
                             (rtype, _record_name(rtype, id_, offset)), count)
            records.append(Tlv(rtype, id_, b"", tuple(children), offset, value_start))
        else:
            records.append(Tlv(rtype, id_, buf[value_start:value_end], (), offset, value_start))
        pos = value_end
    return records


def write_tlv(records: Iterable[Tlv]) -> bytes:
    """The bytes of ``records``, each with the shortest id and length fields."""
    out = bytearray()
    for rec in records:
        if not 0 <= rec.id <= 0xFFFF:
            raise CodecError(f"TLV id {rec.id} is outside 0..65535")
        value = write_tlv(rec.children) if rec.is_container else rec.value
        length = len(value)
        if length > _MAX_LENGTH:
            raise CodecError(f"{_NAMES[rec.type]} {rec.id} is {length} bytes; TLV allows at most "
                             f"{_MAX_LENGTH}")
        len_size = _length_size(length)
        kind = (rec.type << 6) | (0x20 if rec.id > 0xFF else 0) | (len_size << 3)
        if len_size == 0:
            kind |= length
        out.append(kind)
        out += rec.id.to_bytes(2 if rec.id > 0xFF else 1, "big")
        if len_size:
            out += length.to_bytes(len_size, "big")
        out += value
    return bytes(out)


# --- values ----------------------------------------------------------------------------------

_INT_SIZES = (1, 2, 4, 8)


def encode_tlv_value(value: Value, rtype: ResourceType) -> bytes:
    """The TLV value bytes of ``value`` typed ``rtype`` (integers in the fewest of 1/2/4/8 bytes,
    floats in 4 bytes when exact, else 8)."""
    if rtype in (ResourceType.INTEGER, ResourceType.TIME, ResourceType.UNSIGNED_INTEGER):
        signed = rtype is not ResourceType.UNSIGNED_INTEGER
        for size in _INT_SIZES:
            try:
                return value.to_bytes(size, "big", signed=signed)  # type: ignore[union-attr]
            except OverflowError:
                continue
        raise CodecError(f"{value!r} does not fit a 64-bit {rtype.value}")
    if rtype is ResourceType.FLOAT:
        try:
            single = struct.pack(">f", value)
            if struct.unpack(">f", single)[0] == value:
                return single
        except OverflowError:
            pass
        return struct.pack(">d", value)
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if rtype is ResourceType.OBJLNK:
        return struct.pack(">HH", value.object_id, value.instance_id)  # type: ignore[union-attr]
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return value.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError as e:
            raise CodecError(f"string cannot be written as UTF-8: {e.reason}") from None
    if rtype is ResourceType.NONE:
        return b""
    return bytes(value)  # type: ignore[arg-type]


def decode_tlv_value(raw: bytes, rtype: ResourceType, offset: int = 0) -> Value:
    """The value of ``rtype`` in TLV value bytes ``raw`` (found at ``offset``, for errors)."""
    n = len(raw)
    if rtype in (ResourceType.INTEGER, ResourceType.TIME, ResourceType.UNSIGNED_INTEGER):
        if n not in _INT_SIZES:
            raise CodecError(f"a TLV {rtype.value} is 1, 2, 4 or 8 bytes, got {n}", _where(offset))
        return int.from_bytes(raw, "big", signed=rtype is not ResourceType.UNSIGNED_INTEGER)
    if rtype is ResourceType.FLOAT:
        if n not in (4, 8):
            raise CodecError(f"a TLV float is 4 or 8 bytes, got {n}", _where(offset))
        return struct.unpack(">f" if n == 4 else ">d", raw)[0]
    if rtype is ResourceType.BOOLEAN:
        if n != 1 or raw[0] > 1:
            raise CodecError(f"a TLV boolean is one byte 0 or 1, got {raw[:8].hex()!r}", _where(offset))
        return raw[0] == 1
    if rtype is ResourceType.OBJLNK:
        if n != 4:
            raise CodecError(f"a TLV object link is 4 bytes, got {n}", _where(offset))
        return ObjLnk(*struct.unpack(">HH", raw))
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CodecError(f"string is not valid UTF-8: {e.reason}", _where(offset + e.start)) from None
    if rtype is ResourceType.NONE:
        if n:
            raise CodecError(f"a resource of type none has no value, got {n} bytes", _where(offset))
        return None
    return bytes(raw)


# --- node mapping ----------------------------------------------------------------------------

def _resource_record(res: Resource) -> Tlv:
    if isinstance(res, SingleResource):
        return Tlv(TlvType.RESOURCE_VALUE, res.id, encode_tlv_value(res.value, res.type))
    return Tlv(TlvType.MULTIPLE_RESOURCE, res.id, children=tuple(
        Tlv(TlvType.RESOURCE_INSTANCE, ri, encode_tlv_value(v, res.type))
        for ri, v in sorted(res.instances.items())))


def _resource_records(instance: ObjectInstance) -> tuple[Tlv, ...]:
    return tuple(_resource_record(r) for _, r in sorted(instance.resources.items()))


def _instance_record(instance: ObjectInstance) -> Tlv:
    return Tlv(TlvType.OBJECT_INSTANCE, instance.id, children=_resource_records(instance))  # type: ignore[arg-type]


def _records_for(node: Node, path: Path) -> Sequence[Tlv]:
    """The records that carry ``node`` at ``path``; CodecError for a node that does not fit."""
    level = path.level
    if level == PathLevel.OBJECT and isinstance(node, LwM2mObject) and node.id == path.object_id:
        return [_instance_record(i) for _, i in sorted(node.instances.items())]
    if level == PathLevel.OBJECT and isinstance(node, ObjectInstance):
        # Create: bare resources let the device pick the instance id.
        return _resource_records(node) if node.id is None else [_instance_record(node)]
    if (level == PathLevel.INSTANCE and isinstance(node, ObjectInstance)
            and node.id in (None, path.instance_id)):
        return _resource_records(node)
    if (level == PathLevel.RESOURCE and isinstance(node, (SingleResource, MultipleResource))
            and node.id == path.resource_id):
        return [_resource_record(node)]
    if (level == PathLevel.RESOURCE_INSTANCE and isinstance(node, ResourceInstance)
            and node.id == path.resource_instance_id):
        return [Tlv(TlvType.RESOURCE_INSTANCE, node.id, encode_tlv_value(node.value, node.type))]
    raise CodecError(f"TLV cannot carry a {type(node).__name__} {getattr(node, 'id', '')} at {path}",
                     str(path))


def _unwrap(records: list[Tlv], path: Path) -> list[Tlv]:
    """Strip the optional enclosing records above ``path``'s own level: its object instance,
    then (for a resource instance) its multiple resource."""
    wrappers = [(TlvType.OBJECT_INSTANCE, path.instance_id)]
    if path.is_resource_instance:
        wrappers.append((TlvType.MULTIPLE_RESOURCE, path.resource_id))
    for rtype, expected in wrappers:
        if len(records) == 1 and records[0].type is rtype:
            if records[0].id != expected:
                raise CodecError(f"{records[0].name} does not match {path}", _where(records[0].offset))
            records = list(records[0].children)
    return records


class _Mapper:
    """Turns records into nodes for one object, with the definitions' types."""

    def __init__(self, object_id: int, registry: ObjectRegistry) -> None:
        self.object_id = object_id
        self.registry = registry

    def rtype(self, rid: int, multiple: bool, got: Tlv) -> ResourceType:
        """The defined type of resource ``rid``; CodecError when the record's kind (single or
        multiple) contradicts the definition. Unknown resources are opaque."""
        d = self.registry.resource(self.object_id, rid)
        if d is None:
            return ResourceType.OPAQUE
        if d.multiple != multiple:
            kind = "multiple" if d.multiple else "single"
            raise CodecError(f"resource {rid} of object {self.object_id} is a {kind} resource, "
                             f"got a {got.name}", _where(got.offset))
        return d.type

    def value(self, rec: Tlv, rtype: ResourceType) -> Value:
        return decode_tlv_value(rec.value, rtype, rec.value_offset)

    def resource(self, rec: Tlv) -> Resource:
        if rec.type is TlvType.RESOURCE_VALUE:
            rtype = self.rtype(rec.id, False, rec)
            return SingleResource(rec.id, self.value(rec, rtype), rtype)
        if rec.type is TlvType.MULTIPLE_RESOURCE:
            return self.multiple(rec.id, list(rec.children), rec)
        raise CodecError(f"expected a resource, got a {rec.name}", _where(rec.offset))

    def multiple(self, rid: int, records: list[Tlv], at: Tlv) -> MultipleResource:
        rtype = self.rtype(rid, True, at)
        instances: dict[int, Value] = {}
        for rec in records:
            if rec.type is not TlvType.RESOURCE_INSTANCE:
                raise CodecError(f"expected a resource instance, got a {rec.name}", _where(rec.offset))
            if rec.id in instances:
                raise CodecError(f"duplicate {rec.name}", _where(rec.offset))
            instances[rec.id] = self.value(rec, rtype)
        return MultipleResource(rid, instances, rtype)

    def instance(self, iid: int | None, records: Iterable[Tlv], at: int) -> ObjectInstance:
        if iid == _NO_INSTANCE:
            raise CodecError("object instance id 65535 is reserved", _where(at))
        resources: dict[int, Resource] = {}
        for rec in records:
            if rec.id in resources:
                raise CodecError(f"duplicate {rec.name}", _where(rec.offset))
            resources[rec.id] = self.resource(rec)
        return ObjectInstance(iid, resources)

    def object(self, records: list[Tlv]) -> LwM2mObject:
        if records and all(r.type is TlvType.OBJECT_INSTANCE for r in records):
            instances: dict[int, ObjectInstance] = {}
            for rec in records:
                if rec.id in instances:
                    raise CodecError(f"duplicate {rec.name}", _where(rec.offset))
                instances[rec.id] = self.instance(rec.id, rec.children, rec.offset)
            return LwM2mObject(self.object_id, instances)
        definition = self.registry.get(self.object_id)
        if records and definition is not None and definition.multiple:
            raise CodecError(f"object {self.object_id} has multiple instances: its TLV needs "
                             "object-instance records", _where(records[0].offset))
        if not records:
            return LwM2mObject(self.object_id)
        return LwM2mObject(self.object_id, {0: self.instance(0, records, records[0].offset)})


def _node_for(records: list[Tlv], path: Path, registry: ObjectRegistry) -> Node:
    level = path.level
    if level == PathLevel.ROOT:
        raise CodecError("TLV carries an object or less, not the root", str(path))
    mapper = _Mapper(path.object_id, registry)  # type: ignore[arg-type]
    if level == PathLevel.OBJECT:
        return mapper.object(records)
    records = _unwrap(records, path)
    if level == PathLevel.INSTANCE:
        return mapper.instance(path.instance_id, records, 0)
    if level == PathLevel.RESOURCE:
        if len(records) == 1 and records[0].type in (TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE):
            if records[0].id != path.resource_id:
                raise CodecError(f"{records[0].name} does not match {path}", _where(records[0].offset))
            return mapper.resource(records[0])
        if records and all(r.type is TlvType.RESOURCE_INSTANCE for r in records):
            return mapper.multiple(path.resource_id, records, records[0])  # type: ignore[arg-type]
        raise CodecError(f"expected one resource record for {path}, got {len(records)} records",
                         _where(records[0].offset if records else 0))
    if len(records) != 1 or records[0].type is not TlvType.RESOURCE_INSTANCE:
        raise CodecError(f"expected one resource-instance record for {path}",
                         _where(records[0].offset if records else 0))
    rec = records[0]
    if rec.id != path.resource_instance_id:
        raise CodecError(f"{rec.name} does not match {path}", _where(rec.offset))
    rtype = mapper.rtype(path.resource_id, True, rec)  # type: ignore[arg-type]
    return ResourceInstance(rec.id, mapper.value(rec, rtype), rtype)


class TlvCodec:
    """The OMA TLV codec (11542; also used for the old number 1542)."""

    content_format = ContentFormat.TLV

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        return write_tlv(_records_for(node, path))

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node:
        records = read_tlv(data)
        try:
            return _node_for(records, path, registry)
        except (NodeError, ValueTypeError) as e:
            raise CodecError(str(e), str(path)) from None


CODEC = TlvCodec()
