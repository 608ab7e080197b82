"""Content-format codecs, one module per format, chosen by content-format number.

Never imports aiocoap. ``codec_for(ContentFormat.TLV)`` returns the codec; every decoder raises
only :class:`CodecError` on bad input.
"""

from __future__ import annotations

from .base import CodecError, ContentFormat, MultiPathCodec, NodeCodec, TimestampedValues

__all__ = ["CodecError", "ContentFormat", "MultiPathCodec", "NodeCodec", "TimestampedValues",
           "codec_for", "encode", "decode"]


def codec_for(fmt: int | ContentFormat) -> NodeCodec:
    """The codec for a content-format number; CodecError for one we do not speak."""
    from . import registry as _r

    return _r.codec_for(fmt)


def encode(node, path, fmt, registry):  # type: ignore[no-untyped-def]
    return codec_for(fmt).encode(node, path, registry)


def decode(data, path, fmt, registry):  # type: ignore[no-untyped-def]
    return codec_for(fmt).decode(data, path, registry)
