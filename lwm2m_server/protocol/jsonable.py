"""LwM2M values to JSON and back: plain (for events and results) and tagged (for persistence).

Plain mapping (the same as the REST API's): opaque -> base64 string, objlnk -> "3:0", time ->
integer seconds, the rest as JSON scalars. Tagged mapping keeps the Python type so a persisted
request or value comes back exactly: ``{"b": "<base64>"}`` for bytes, ``{"l": "3:0"}`` for objlnk.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ..model import ObjLnk, Path, Value

__all__ = ["plain", "plain_values", "tagged", "untagged", "tagged_values", "untagged_values"]


def plain(value: Value) -> Any:
    """The JSON form of ``value`` as API clients see it."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, ObjLnk):
        return str(value)
    return value


def plain_values(values: Mapping[Path, Value]) -> dict[str, Any]:
    return {str(p): plain(v) for p, v in sorted(values.items())}


def tagged(value: Value) -> Any:
    """A JSON form of ``value`` that :func:`untagged` turns back into the same Python value."""
    if isinstance(value, (bytes, bytearray)):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, ObjLnk):
        return {"l": str(value)}
    return value


def untagged(data: Any) -> Value:
    if isinstance(data, dict):
        if "b" in data:
            return base64.b64decode(data["b"])
        if "l" in data:
            return ObjLnk.parse(data["l"])
        raise ValueError(f"unknown tagged value {data!r}")
    return data  # type: ignore[no-any-return]


def tagged_values(values: Mapping[Path, Value]) -> dict[str, Any]:
    return {str(p): tagged(v) for p, v in values.items()}


def untagged_values(data: Mapping[str, Any]) -> dict[Path, Value]:
    return {Path.parse(p): untagged(v) for p, v in data.items()}
