"""Payloads to and from devices: node values encoded in a content format, answers decoded, and a
device's error answer turned into :class:`~.errors.DeviceError`.

Pure functions over the object registry and the codecs: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..codecs import CodecError, codec_for
from ..model import (NodeError, ObjectInstance, ObjectRegistry, Path, PathError, Value,
                     ValueTypeError, build, flatten)
from .errors import DeviceError, InvalidRequest
from .formats import MULTI_FORMATS
from .registration import Registration
from .transport import IncomingResponse

__all__ = ["encode", "encode_multi", "decode", "decode_multi", "device_failure", "parse_discover"]

_BAD_PAYLOAD = (CodecError, NodeError, ValueTypeError, PathError, AttributeError)


def encode(registry: ObjectRegistry, values: Mapping[Path, Value], path: Path, fmt: int,
           create_id: int | None = None, create: bool = False) -> bytes:
    """``values`` under ``path`` in content format ``fmt`` (a Create's new instance when
    ``create``); InvalidRequest when they do not fit the object definitions."""
    try:
        if create:
            inst_path = path.child(create_id if create_id is not None else 0)
            node = build(values, inst_path, registry)
            assert isinstance(node, ObjectInstance)
            if fmt in MULTI_FORMATS:  # names carry the instance id
                return codec_for(fmt).encode(node, inst_path, registry)
            # TLV: an instance record when the id is given, bare resources when the device picks
            return codec_for(fmt).encode(ObjectInstance(create_id, node.resources), path, registry)
        if fmt in MULTI_FORMATS and path.level < 3:
            return codec_for(fmt).encode_values(values, registry, path)  # type: ignore[attr-defined]
        return codec_for(fmt).encode(build(values, path, registry), path, registry)
    except (NodeError, ValueTypeError, PathError, CodecError) as e:
        raise InvalidRequest(f"values do not fit the object definition: {e}") from None


def encode_multi(registry: ObjectRegistry, values: Mapping[Path, Value], fmt: int) -> bytes:
    """Values of any paths in a format that carries several (Write-Composite)."""
    try:
        return codec_for(fmt).encode_values(values, registry)  # type: ignore[attr-defined]
    except (NodeError, ValueTypeError, CodecError) as e:
        raise InvalidRequest(f"values do not fit the object definition: {e}") from None


def _decode_node(data: bytes, fmt: int, path: Path, registry: ObjectRegistry) -> dict[Path, Value]:
    codec = codec_for(fmt)
    if fmt in MULTI_FORMATS and (path.level < 3 or not data):
        values = codec.decode_values(data, registry)  # type: ignore[attr-defined]
        return {p: v for p, v in values.items() if p.starts_with(path)}
    return flatten(codec.decode(data, path, registry), path)


def decode(registry: ObjectRegistry, reg: Registration, resp: IncomingResponse, fmt: int | None,
           path: Path, what: str) -> dict[Path, Value]:
    """The values under ``path`` in a device's answer (its Content-Format, else ``fmt``)."""
    cf = resp.content_format if resp.content_format is not None else fmt
    if cf is None:
        raise DeviceError(f"device {reg.endpoint!r} answered {what} without a content format", resp.code)
    try:
        return _decode_node(resp.payload, cf, path, registry)
    except _BAD_PAYLOAD as e:
        raise DeviceError(f"device {reg.endpoint!r} answered {what} with a payload that does not "
                          f"decode as content format {cf}: {e}", resp.code) from None


def decode_multi(registry: ObjectRegistry, reg: Registration, resp: IncomingResponse, fmt: int,
                 what: str) -> dict[Path, Value]:
    """The values of any paths in a device's composite answer or notification."""
    cf = resp.content_format if resp.content_format is not None else fmt
    try:
        return codec_for(cf).decode_values(resp.payload, registry)  # type: ignore[attr-defined]
    except _BAD_PAYLOAD as e:
        raise DeviceError(f"device {reg.endpoint!r} answered {what} with a payload that does not "
                          f"decode as content format {cf}: {e}", resp.code) from None


def parse_discover(reg: Registration, resp: IncomingResponse, what: str) -> list[dict[str, Any]]:
    """The links of a Discover answer: ``[{"path": Path, "attributes": {...}}]``.

    The answer must say it is link-format (Content-Format 40, LwM2M 1.1 §5.4.2 / transport
    §7.1): anything else is the device's error, not an empty list.
    """
    from ..codecs.link_format import parse_discover as parse

    if resp.content_format != 40:
        said = "no Content-Format" if resp.content_format is None else \
            f"Content-Format {resp.content_format}"
        raise DeviceError(f"device {reg.endpoint!r} answered {what} with {said}; a Discover "
                          "answer must be link-format (40)", resp.code)
    try:
        links = parse(resp.payload, reg.root_path)
    except (CodecError, ValueError) as e:
        raise DeviceError(f"device {reg.endpoint!r} answered {what} with bad link-format: {e}",
                          resp.code) from None
    return [{"path": p, "attributes": attrs} for p, attrs in links.items()]


def device_failure(reg: Registration, resp: IncomingResponse, what: str) -> DeviceError:
    """The error for a device's non-success answer, with the start of its diagnostic payload."""
    detail = resp.payload[:200].decode("utf-8", "replace") if resp.payload else ""
    msg = f"device {reg.endpoint!r} answered {resp.code} to {what}"
    return DeviceError(msg + (f": {detail}" if detail else ""), resp.code)
