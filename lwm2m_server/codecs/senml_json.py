"""SenML JSON (content format 110, RFC 8428 §5, LwM2M 1.1 §7.4.4): JSON text <-> SenML records.

Only the wire layer lives here; records, typing and node mapping are in :mod:`.senml`.
Opaque values (``vd``) are base64url without padding (padding and the standard alphabet are
accepted on input); integers stay exact (JSON integers are never read through a float);
NaN and infinities are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .base import CodecError, ContentFormat
from .senml import Record, SenMLCodec, check_fields, record_maps

__all__ = ["SenMLJsonCodec", "CODEC", "load_json", "b64url_decode", "b64url_encode"]

_B64 = re.compile(r"[A-Za-z0-9_\-+/]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as SenML JSON carries ``vd`` (RFC 8428 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, where: str) -> bytes:
    """Bytes from base64url or base64 (padding optional), CodecError if bad."""
    if not _B64.fullmatch(text):
        raise CodecError("not base64url text", where)
    s = text.rstrip("=").replace("+", "-").replace("/", "_")
    if len(s) % 4 == 1:
        raise CodecError("base64url text has an impossible length", where)
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        raise CodecError("not base64url text", where) from None


def _refuse_constant(name: str) -> Any:
    raise CodecError(f"{name} is not a valid JSON number here")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # rare: find the first key given twice
        seen: set[str] = set()
        for k, _v in pairs:
            if k in seen:
                raise CodecError(f"duplicate field {k!r} in a JSON object")
            seen.add(k)
    return out


def load_json(data: bytes) -> Any:
    """Parse strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys, bounded nesting."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"payload must be bytes, got {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise CodecError("payload is not valid UTF-8", f"offset {e.start}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except CodecError:
        raise
    except json.JSONDecodeError as e:
        raise CodecError(f"invalid JSON: {e.msg}", f"offset {e.pos}") from None
    except RecursionError:
        raise CodecError("JSON nested too deeply") from None
    except ValueError as e:  # e.g. integers longer than Python's digit limit
        raise CodecError(f"invalid JSON: {e}") from None


class SenMLJsonCodec(SenMLCodec):
    """SenML JSON: ``[{"bn":"/3/0/","n":"0","vs":"..."}, ...]``."""

    content_format = ContentFormat.SENML_JSON

    def load(self, data: bytes) -> list[Record]:
        return [Record(**f) for f in self.load_fields(data)]

    def load_fields(self, data: bytes) -> list[dict[str, Any]]:
        records = []
        for i, rec in enumerate(record_maps(load_json(data), "a SenML JSON pack", "a record is an object")):
            if "vd" in rec:
                rec = dict(rec)
                if not isinstance(rec["vd"], str):
                    raise CodecError("vd must be a base64url string", f"record {i} field 'vd'")
                rec["vd"] = b64url_decode(rec["vd"], f"record {i} field 'vd'")
            records.append(check_fields(rec, i))
        return records

    def dump(self, records: list[Record]) -> bytes:
        return self.dump_fields([{f: getattr(r, f) for f in Record.__slots__ if getattr(r, f) is not None}
                                 for r in records])

    def dump_fields(self, records: list[dict[str, Any]]) -> bytes:
        out = [r if "vd" not in r else {f: b64url_encode(v) if f == "vd" else v for f, v in r.items()}
               for r in records]
        try:
            return json.dumps(out, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, UnicodeEncodeError) as e:
            raise CodecError(f"cannot encode as SenML JSON: {e}") from None


CODEC = SenMLJsonCodec()
