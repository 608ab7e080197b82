"""text/plain (content format 0): one resource value as text, LwM2M 1.1 §7.4.1.

Integers and time are decimal, floats the shortest text that reads back to the same double,
booleans ``0``/``1``, object links ``3:0``, opaque values base64, none an empty payload.
Parsing is strict: what a device sends must be exactly one of those forms.

:func:`leaf_value`, :func:`leaf_type` and :func:`leaf_node` are the single-value checks that the opaque codec
shares with this one.
"""

from __future__ import annotations

import binascii
import math
import re

from ..model import (
    Node,
    ObjectRegistry,
    ObjLnk,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
    ValueTypeError,
    check_value,
)
from .base import CodecError, ContentFormat

__all__ = ["TextCodec", "CODEC", "format_text", "parse_text", "leaf_value", "leaf_node", "leaf_type"]

_INTEGER = re.compile(r"-?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Longer than any int64 or double needs; stops int()/float() from chewing on megabytes.
_MAX_NUMBER_CHARS = 400


def leaf_value(node: Node, path: Path, fmt: str) -> tuple[Value, ResourceType]:
    """The value and type of ``node`` when it is one value at ``path``; CodecError otherwise."""
    if isinstance(node, SingleResource) and path.is_resource and node.id == path.resource_id:
        return node.value, node.type
    if (isinstance(node, ResourceInstance) and path.is_resource_instance
            and node.id == path.resource_instance_id):
        return node.value, node.type
    if isinstance(node, (SingleResource, ResourceInstance)):
        raise CodecError(f"{type(node).__name__} {node.id} does not sit at {path}", str(path))
    raise CodecError(f"{fmt} carries a single resource or resource instance, "
                     f"not a {type(node).__name__}", str(path))


def leaf_node(path: Path, value: Value, rtype: ResourceType) -> SingleResource | ResourceInstance:
    """The node for one decoded value at a resource or resource-instance ``path``."""
    try:
        if path.is_resource:
            return SingleResource(path.resource_id, value, rtype)  # type: ignore[arg-type]
        return ResourceInstance(path.resource_instance_id, value, rtype)  # type: ignore[arg-type]
    except ValueTypeError as e:
        raise CodecError(str(e), str(path)) from None


def leaf_type(path: Path, registry: ObjectRegistry, fmt: str, default: ResourceType) -> ResourceType:
    """The type of the one value a single-value format carries at ``path``.

    CodecError when ``path`` is not a resource or resource instance, or names a multiple
    resource (its instances must be addressed one by one), or a single resource's instance.
    """
    if not (path.is_resource or path.is_resource_instance):
        raise CodecError(f"{fmt} carries a single resource or resource instance; {path} is neither",
                         str(path))
    definition = registry.resource_for(path)
    if definition is None:
        return default
    if path.is_resource and definition.multiple:
        raise CodecError(f"{path} is a multiple resource; {fmt} carries one of its instances", str(path))
    if path.is_resource_instance and not definition.multiple:
        raise CodecError(f"{path.parent()} is a single resource; it has no instances", str(path))
    return definition.type


def format_text(value: Value, rtype: ResourceType) -> str:
    """``value`` (of ``rtype``) as the text/plain representation."""
    try:
        v = check_value(value, rtype)
    except ValueTypeError as e:
        raise CodecError(str(e)) from None
    if rtype is ResourceType.BOOLEAN:
        return "1" if v else "0"
    if rtype is ResourceType.FLOAT:
        return repr(v)
    if rtype is ResourceType.OPAQUE:
        return binascii.b2a_base64(v, newline=False).decode("ascii")  # type: ignore[arg-type]
    if rtype is ResourceType.NONE:
        return ""
    return str(v)


def parse_text(text: str, rtype: ResourceType) -> Value:
    """The value of ``rtype`` that ``text`` stands for; CodecError for anything else."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return text
    if rtype is ResourceType.NONE:
        if text:
            raise CodecError(f"a resource of type none has no value, got {_show(text)}")
        return None
    if rtype is ResourceType.OPAQUE:
        try:
            return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as e:
            raise CodecError(f"opaque value is not valid base64 ({e}): {_show(text)}") from None
    if rtype is ResourceType.BOOLEAN:
        if text not in ("0", "1"):
            raise CodecError(f"a boolean is '0' or '1', got {_show(text)}")
        return text == "1"
    if rtype is ResourceType.OBJLNK:
        try:
            return ObjLnk.parse(text)
        except ValueTypeError as e:
            raise CodecError(str(e)) from None
    if len(text) > _MAX_NUMBER_CHARS:
        raise CodecError(f"a {rtype.value} value of {len(text)} characters is too long")
    pattern = {ResourceType.INTEGER: _INTEGER, ResourceType.TIME: _INTEGER,
               ResourceType.UNSIGNED_INTEGER: _UNSIGNED, ResourceType.FLOAT: _FLOAT}[rtype]
    if not pattern.fullmatch(text):
        raise CodecError(f"not a valid {rtype.value}: {_show(text)}")
    number: int | float = float(text) if rtype is ResourceType.FLOAT else int(text)
    if isinstance(number, float) and not math.isfinite(number):
        raise CodecError(f"float {_show(text)} is out of range")
    try:
        return check_value(number, rtype)
    except ValueTypeError as e:
        raise CodecError(str(e)) from None


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


class TextCodec:
    """The text/plain codec: one value at a resource or resource-instance path."""

    content_format = ContentFormat.TEXT

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        value, rtype = leaf_value(node, path, "text/plain")
        try:
            return format_text(value, rtype).encode("utf-8")
        except CodecError as e:
            raise CodecError(e.message, str(path)) from None
        except UnicodeEncodeError as e:
            raise CodecError(f"string cannot be written as UTF-8: {e.reason}", str(path)) from None

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node:
        rtype = leaf_type(path, registry, "text/plain", ResourceType.STRING)
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CodecError(f"text is not valid UTF-8: {e.reason}", f"offset {e.start}") from None
        try:
            value = parse_text(text, rtype)
        except CodecError as e:
            raise CodecError(e.message, str(path)) from None
        return leaf_node(path, value, rtype)


CODEC = TextCodec()
