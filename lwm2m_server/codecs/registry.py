"""Map content-format numbers to codec instances (each codec module exposes ``CODEC``)."""

from __future__ import annotations

import importlib

from .base import CodecError, ContentFormat, NodeCodec

_MODULES = {
    ContentFormat.TEXT: "text",
    ContentFormat.OPAQUE: "opaque",
    ContentFormat.OLD_OPAQUE: "opaque",
    ContentFormat.TLV: "tlv",
    ContentFormat.OLD_TLV: "tlv",
    ContentFormat.SENML_JSON: "senml_json",
    ContentFormat.SENML_CBOR: "senml_cbor",
    ContentFormat.LWM2M_JSON: "lwm2m_json",
    ContentFormat.OLD_JSON: "lwm2m_json",
    ContentFormat.LWM2M_CBOR: "lwm2m_cbor",
}

_cache: dict[int, NodeCodec] = {}


def codec_for(fmt: int | ContentFormat) -> NodeCodec:
    try:
        cf = ContentFormat(int(fmt))
    except ValueError:
        raise CodecError(f"unsupported content format {fmt}") from None
    if cf not in _MODULES:
        raise CodecError(f"content format {int(cf)} ({cf.media_type}) carries no LwM2M nodes")
    codec = _cache.get(cf)
    if codec is None:
        module = importlib.import_module(f"{__package__}.{_MODULES[cf]}")
        codec = module.CODEC
        _cache[cf] = codec
    return codec
