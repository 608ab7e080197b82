"""The one interface every content-format codec implements, and the codecs' error type."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Protocol, runtime_checkable

from ..model import Node, ObjectRegistry, Path, Value

__all__ = ["ContentFormat", "CodecError", "NodeCodec", "MultiPathCodec", "TimestampedValues"]


class ContentFormat(IntEnum):
    """CoAP content-format numbers of the LwM2M data formats (LwM2M 1.1 §7.4)."""

    TEXT = 0
    LINK_FORMAT = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    # Pre-registration numbers some 1.0 clients still send.
    OLD_TLV = 1542
    OLD_JSON = 1543
    OLD_OPAQUE = 1544

    @property
    def media_type(self) -> str:
        return _MEDIA[self]


_MEDIA = {
    ContentFormat.TEXT: "text/plain",
    ContentFormat.LINK_FORMAT: "application/link-format",
    ContentFormat.OPAQUE: "application/octet-stream",
    ContentFormat.CBOR: "application/cbor",
    ContentFormat.SENML_JSON: "application/senml+json",
    ContentFormat.SENML_CBOR: "application/senml+cbor",
    ContentFormat.TLV: "application/vnd.oma.lwm2m+tlv",
    ContentFormat.LWM2M_JSON: "application/vnd.oma.lwm2m+json",
    ContentFormat.LWM2M_CBOR: "application/vnd.oma.lwm2m+cbor",
    ContentFormat.OLD_TLV: "application/vnd.oma.lwm2m+tlv",
    ContentFormat.OLD_JSON: "application/vnd.oma.lwm2m+json",
    ContentFormat.OLD_OPAQUE: "application/octet-stream",
}


class CodecError(ValueError):
    """Bytes that do not decode, or a node a format cannot carry.

    ``where`` says where the problem is: ``"offset 12"``, ``"record 3 field 'v'"``, a path.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{message} (at {where})" if where else message)


# A decoded notification or Send payload: values per path, each with its timestamp
# (seconds since the epoch; None when the payload gave none).
TimestampedValues = list[tuple[float | None, dict[Path, Value]]]


@runtime_checkable
class NodeCodec(Protocol):
    """Encodes one node at one path to bytes and back, typed by the object definitions."""

    content_format: ContentFormat

    def encode(self, node: Node, path: Path, registry: ObjectRegistry) -> bytes: ...

    def decode(self, data: bytes, path: Path, registry: ObjectRegistry) -> Node: ...


@runtime_checkable
class MultiPathCodec(NodeCodec, Protocol):
    """Formats that carry values of several paths at once (SenML, LwM2M CBOR, LwM2M JSON):
    Read-Composite, Write-Composite, Observe-Composite, Send and timestamped notifications."""

    def encode_values(self, values: Mapping[Path, Value], registry: ObjectRegistry,
                      base: Path | None = None) -> bytes: ...

    def decode_values(self, data: bytes, registry: ObjectRegistry) -> dict[Path, Value]: ...

    def decode_timestamped(self, data: bytes, registry: ObjectRegistry) -> TimestampedValues: ...

    def encode_paths(self, paths: list[Path]) -> bytes: ...

    def decode_paths(self, data: bytes) -> list[Path]: ...
