"""application/octet-stream (content formats 42 and 1544): one opaque value, raw bytes.

LwM2M 1.1 §7.4.2: only a single opaque resource or one instance of a multiple opaque resource;
anything else is refused with CodecError.
"""

from __future__ import annotations

from ..model import Node, ObjectRegistry, Path, ResourceType
from .base import CodecError, ContentFormat
from .text import leaf_node, leaf_type, leaf_value

__all__ = ["OpaqueCodec", "CODEC"]


class OpaqueCodec:
    """The opaque codec: the bytes of one opaque resource or resource instance."""

    content_format = ContentFormat.OPAQUE

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes:
        value, rtype = leaf_value(node, path, "opaque")
        if rtype is not ResourceType.OPAQUE:
            raise CodecError(f"opaque carries opaque values only, {path} is {rtype.value}", str(path))
        return value  # type: ignore[return-value]

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node:
        rtype = leaf_type(path, registry, "opaque", ResourceType.OPAQUE)
        if rtype is not ResourceType.OPAQUE:
            raise CodecError(f"opaque carries opaque values only, {path} is {rtype.value}", str(path))
        return leaf_node(path, bytes(data), rtype)


CODEC = OpaqueCodec()
