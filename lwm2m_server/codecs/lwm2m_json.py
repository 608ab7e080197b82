"""LwM2M JSON (content format 11543, and the pre-registration 1543): decode only.

The LwM2M 1.0 JSON format (1.0 §6.4.4) that older clients still send:
``{"bn":"/3/0/","bt":25462634,"e":[{"n":"0","sv":"..."},{"n":"6/0","v":1},{"n":"1","bv":true},
{"n":"2","ov":"66:0"},{"n":"9","v":22.4,"t":-5}]}``. Each entry of ``e`` becomes a SenML record
(``sv`` -> ``vs``, ``bv`` -> ``vb``, ``ov`` -> ``vlo``; for an opaque resource ``sv`` carries
base64), so names, times and types resolve exactly as in SenML (:mod:`.senml`). A payload without
``bn`` names its entries relative to the requested path. This server never sends LwM2M JSON:
every encode method raises CodecError (SenML JSON replaces it since LwM2M 1.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NoReturn

from ..model import Node, ObjectRegistry, Path, ResourceType, Value
from .base import CodecError, ContentFormat, TimestampedValues
from .senml import Entry, Record, SenMLCodec, make_record, record_maps
from .senml_json import b64url_decode, load_json

__all__ = ["LwM2mJsonCodec", "CODEC"]

# LwM2M JSON entry field -> SenML record field.
_ENTRY_FIELDS = {"n": "n", "v": "v", "sv": "vs", "bv": "vb", "ov": "vlo", "t": "t"}


def _decode_only() -> NoReturn:
    raise CodecError("LwM2M JSON (11543) is decode-only here; encode with SenML JSON (110) or TLV (11542)")


class LwM2mJsonCodec(SenMLCodec):
    """Reads LwM2M 1.0 JSON documents into nodes and values; refuses to encode."""

    content_format = ContentFormat.LWM2M_JSON

    def load(self, data: bytes) -> list[Record]:
        return self.load_at(data, None)

    def load_at(self, data: bytes, path: Path | None) -> list[Record]:
        doc = load_json(data)
        if not isinstance(doc, dict):
            raise CodecError(f"an LwM2M JSON document is an object, got {type(doc).__name__}")
        entries = doc.get("e")
        if not isinstance(entries, list):
            raise CodecError("an LwM2M JSON document needs an array 'e'", "field 'e'")
        base: dict[str, Any] = {k: doc[k] for k in ("bn", "bt") if k in doc}
        if "bn" not in base and path is not None:
            base["bn"] = str(path)
            relative = True
        else:
            relative = False
        records = []
        for i, e in enumerate(record_maps(entries, "'e'", "an entry is an object", "entries")):
            fields: dict[str, Any] = dict(base) if i == 0 else {}
            for key, value in e.items():
                name = _ENTRY_FIELDS.get(key)
                if name is not None:  # other fields are ignored, as in SenML
                    fields[name] = value
            if relative and isinstance(fields.get("n"), str) and fields["n"]:
                # bn is the bare request path here: join with one slash.
                fields["n"] = "/" + fields["n"].lstrip("/")
            records.append(make_record(fields, i))
        return records

    def adapt(self, entry: Entry, rtype: ResourceType | None) -> Entry:
        if rtype is ResourceType.OPAQUE and entry.kind == "vs":
            raw = b64url_decode(entry.raw, f"record {entry.index} field 'sv'")
            return replace(entry, kind="vd", raw=raw)
        return entry

    def decode_paths(self, data: bytes) -> list[Path]:
        raise CodecError("LwM2M JSON carries no path lists; use SenML JSON or SenML CBOR")

    def dump(self, records: list[Record]) -> bytes:
        _decode_only()

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        _decode_only()

    def encode_values(self, values: Mapping[Path, Value], registry: ObjectRegistry,
                      base: Path | None = None) -> bytes:
        _decode_only()

    def encode_timestamped(self, entries: TimestampedValues, registry: ObjectRegistry,
                           base: Path | None = None) -> bytes:
        _decode_only()

    def encode_paths(self, paths: list[Path]) -> bytes:
        _decode_only()


CODEC = LwM2mJsonCodec()
