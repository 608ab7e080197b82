"""LwM2M resource data types and the Python values that carry them."""

from __future__ import annotations

import math
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


def check_value(value: object, rtype: ResourceType) -> Value:
    """Return ``value`` as the canonical Python value of ``rtype``, or raise ValueTypeError."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if isinstance(value, str):
            return value
    elif rtype in (ResourceType.INTEGER, ResourceType.TIME):
        if isinstance(value, int) and not isinstance(value, bool):
            if not _INT64[0] <= value <= _INT64[1]:
                raise ValueTypeError(f"{value} does not fit a 64-bit signed integer")
            return value
    elif rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            if not _UINT64[0] <= value <= _UINT64[1]:
                raise ValueTypeError(f"{value} does not fit a 64-bit unsigned integer")
            return value
    elif rtype is ResourceType.FLOAT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if math.isnan(f) or math.isinf(f):
                raise ValueTypeError(f"{value} is not a finite float")
            return f
    elif rtype is ResourceType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif rtype is ResourceType.OPAQUE:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
    elif rtype is ResourceType.OBJLNK:
        if isinstance(value, ObjLnk):
            return value
    elif rtype is ResourceType.NONE:
        if value is None or value == b"" or value == "":
            return None
    raise ValueTypeError(f"{value!r} is not a valid {rtype.value} value")
