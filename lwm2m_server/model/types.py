"""LwM2M resource data types and the Python values that carry them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Union

__all__ = ["ResourceType", "ObjLnk", "Value", "check_value", "ValueTypeError"]


class ValueTypeError(ValueError):
    """A Python value that does not fit the LwM2M type it is given for."""


class ResourceType(str, Enum):
    """Resource types of LwM2M 1.1 (Appendix C), named as DDF files spell them (lower case)."""

    STRING = "string"
    INTEGER = "integer"
    UNSIGNED_INTEGER = "unsigned integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    OPAQUE = "opaque"
    TIME = "time"
    OBJLNK = "objlnk"
    CORELNK = "corelnk"
    NONE = "none"

    @classmethod
    def from_ddf(cls, text: str | None) -> ResourceType:
        """The type for a DDF ``<Type>`` text; empty means none (executable resources)."""
        t = (text or "").strip().lower()
        if t == "":
            return cls.NONE
        aliases = {"unsigned": cls.UNSIGNED_INTEGER, "unsignedinteger": cls.UNSIGNED_INTEGER,
                   "unsigned_integer": cls.UNSIGNED_INTEGER, "objectlink": cls.OBJLNK,
                   "object link": cls.OBJLNK, "bool": cls.BOOLEAN, "int": cls.INTEGER}
        if t in aliases:
            return aliases[t]
        return cls(t)  # ValueError names the bad text


@dataclass(frozen=True, order=True, slots=True)
class ObjLnk:
    """An object link ``objectId:instanceId``; ``65535:65535`` is the null link."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for v in (self.object_id, self.instance_id):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
                raise ValueTypeError(f"object link ids are 0..65535, got {v!r}")

    @classmethod
    def parse(cls, text: str) -> ObjLnk:
        parts = text.split(":")
        if len(parts) != 2 or not all(p.isdigit() and p.isascii() for p in parts):
            raise ValueTypeError(f"an object link is 'objectId:instanceId', got {text!r}")
        return cls(int(parts[0]), int(parts[1]))

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


# string/corelnk -> str, integer/unsigned/time -> int, float -> float, boolean -> bool,
# opaque -> bytes, objlnk -> ObjLnk, none -> None.
Value = Union[str, int, float, bool, bytes, ObjLnk, None]

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


def _string(value: object) -> Value:
    if isinstance(value, str):
        return value
    return _BAD


def _int_checker(low: int, high: int, what: str) -> Callable[[object], Value]:
    def check(value: object) -> Value:
        if isinstance(value, int) and not isinstance(value, bool):
            if not low <= value <= high:
                raise ValueTypeError(f"{value} does not fit a 64-bit {what} integer")
            return value
        return _BAD
    return check


_integer = _int_checker(*_INT64, "signed")
_unsigned = _int_checker(*_UINT64, "unsigned")


def _float(value: object) -> Value:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise ValueTypeError(f"{value} is not a finite float")
        return f
    return _BAD


def _boolean(value: object) -> Value:
    return value if isinstance(value, bool) else _BAD


def _opaque(value: object) -> Value:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return _BAD


def _objlnk(value: object) -> Value:
    return value if isinstance(value, ObjLnk) else _BAD


def _none(value: object) -> Value:
    if value is None or value == b"" or value == "":
        return None
    return _BAD


_BAD: Value = object()  # type: ignore[assignment]  # "not a value of this type"
# One checker per type, looked up once per value (a chain of enum comparisons cost more).
_CHECKERS = {
    ResourceType.STRING: _string, ResourceType.CORELNK: _string,
    ResourceType.INTEGER: _integer, ResourceType.TIME: _integer,
    ResourceType.UNSIGNED_INTEGER: _unsigned, ResourceType.FLOAT: _float,
    ResourceType.BOOLEAN: _boolean, ResourceType.OPAQUE: _opaque,
    ResourceType.OBJLNK: _objlnk, ResourceType.NONE: _none,
}


def check_value(value: object, rtype: ResourceType) -> Value:
    """Return ``value`` as the canonical Python value of ``rtype``, or raise ValueTypeError."""
    checker = _CHECKERS.get(rtype)
    out = checker(value) if checker is not None else _BAD
    if out is _BAD:
        raise ValueTypeError(f"{value!r} is not a valid {rtype.value} value")
    return out
