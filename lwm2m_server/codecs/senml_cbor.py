"""SenML CBOR (content format 112, RFC 8428 §6, LwM2M 1.1 §7.4.5): CBOR bytes <-> SenML records.

Map keys are the integer labels of RFC 8428 (bn -2, bt -3, bv -5, bver -1, n 0, v 2, vs 3,
vb 4, t 6, vd 8); the object-link value uses the text label ``"vlo"`` (LwM2M 1.1). Text labels
(``"bn"``, ``"v"``...) are accepted on input too. Records, typing and node mapping live in
:mod:`.senml`; :func:`load_cbor` is the strict CBOR reader the LwM2M CBOR codec shares.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from .base import CodecError, ContentFormat
from .senml import Record, SenMLCodec, check_fields, record_maps

__all__ = ["SenMLCborCodec", "CODEC", "LABELS", "load_cbor"]

LABELS: dict[str, int | str] = {
    "bver": -1, "bn": -2, "bt": -3, "bu": -4, "bv": -5, "bs": -6,
    "n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "s": 5, "t": 6, "ut": 7, "vd": 8,
    "vlo": "vlo",
}
_NAMES: dict[Any, str] = {label: name for name, label in LABELS.items()}


def load_cbor(data: bytes) -> Any:
    """One CBOR data item from ``data``: nothing may follow it; CodecError on any defect."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CodecError("empty payload is not a CBOR data item")
    fp = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(fp).decode()
    except RecursionError:
        raise CodecError("CBOR nested too deeply") from None
    except Exception as e:  # cbor2 raises several families (decode, value, overflow errors)
        raise CodecError(f"invalid CBOR: {e}", f"offset {fp.tell()}") from None
    if fp.tell() != len(data):
        raise CodecError(f"{len(data) - fp.tell()} bytes after the CBOR data item", f"offset {fp.tell()}")
    return item


class SenMLCborCodec(SenMLCodec):
    """SenML CBOR: ``[{-2: "/3/0/", 0: "0", 3: "..."}, ...]``."""

    content_format = ContentFormat.SENML_CBOR

    def load(self, data: bytes) -> list[Record]:
        return [Record(**f) for f in self.load_fields(data)]

    def load_fields(self, data: bytes) -> list[dict[str, Any]]:
        records = []
        for i, rec in enumerate(record_maps(load_cbor(data), "a SenML CBOR pack", "a record is a map")):
            fields: dict[str, Any] = {}
            for key, value in rec.items():
                if isinstance(key, bool):
                    raise CodecError(f"invalid label {key!r}", f"record {i}")
                name = _NAMES.get(key)
                if name is None:
                    if isinstance(key, str) and key in LABELS:
                        name = key
                    elif isinstance(key, (int, str)):
                        fields[str(key)] = value  # unknown: ignored, or refused when it ends in "_"
                        continue
                    else:
                        raise CodecError(f"invalid label of type {type(key).__name__}", f"record {i}")
                if name in fields:
                    raise CodecError(f"field {name!r} given twice", f"record {i} field '{name}'")
                fields[name] = value
            records.append(check_fields(fields, i))
        return records

    def dump(self, records: list[Record]) -> bytes:
        return self.dump_fields([{f: getattr(r, f) for f in Record.__slots__ if getattr(r, f) is not None}
                                 for r in records])

    def dump_fields(self, records: list[dict[str, Any]]) -> bytes:
        out = [{LABELS[f]: v for f, v in r.items()} for r in records]
        try:
            return cbor2.dumps(out)
        except Exception as e:  # pragma: no cover - records are validated before
            raise CodecError(f"cannot encode as SenML CBOR: {e}") from None


CODEC = SenMLCborCodec()
