"""Opaque codec: raw bytes of one opaque resource or resource instance, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.opaque import CODEC
from lwm2m_server.model import (
    MultipleResource,
    ObjectInstance,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)

from .tlv_text_objects import ALL_TYPES_OBJECT, MULTIPLE_OFFSET, REGISTRY, SINGLE_ID

P = Path.parse
OPAQUE_MULTI = Path.of(ALL_TYPES_OBJECT, 0, SINGLE_ID[ResourceType.OPAQUE] + MULTIPLE_OFFSET)


def test_registry_maps_both_opaque_content_formats_to_the_opaque_codec() -> None:
    assert codec_for(ContentFormat.OPAQUE) is CODEC
    assert codec_for(ContentFormat.OLD_OPAQUE) is CODEC


def test_decodes_firmware_package_bytes_unchanged() -> None:
    data = bytes(range(256)) * 3
    assert CODEC.decode(data, P("/5/0/0"), REGISTRY) == SingleResource(0, data, ResourceType.OPAQUE)


def test_decodes_an_opaque_resource_instance() -> None:
    node = CODEC.decode(b"\x00\xff", OPAQUE_MULTI.child(3), REGISTRY)
    assert node == ResourceInstance(3, b"\x00\xff", ResourceType.OPAQUE)


def test_unknown_resource_decodes_as_opaque() -> None:
    assert CODEC.decode(b"x", P("/30000/0/1"), REGISTRY) == SingleResource(1, b"x", ResourceType.OPAQUE)


def test_empty_payload_is_an_empty_opaque_value() -> None:
    assert CODEC.decode(b"", P("/5/0/0"), REGISTRY).value == b""


@pytest.mark.parametrize("path", ["/3/0/0", "/3/0/9", "/5/0", "/5", "/5/0/0/0", str(OPAQUE_MULTI)])
def test_decode_refuses_non_opaque_or_non_single_paths(path: str) -> None:
    with pytest.raises(CodecError) as e:
        CODEC.decode(b"abc", P(path), REGISTRY)
    assert e.value.where == path


def test_encodes_the_raw_bytes() -> None:
    node = SingleResource(0, b"\x01\x02", ResourceType.OPAQUE)
    assert CODEC.encode(node, P("/5/0/0"), REGISTRY) == b"\x01\x02"


@pytest.mark.parametrize(("node", "path"), [
    (SingleResource(0, "text", ResourceType.STRING), "/3/0/0"),
    (ObjectInstance(0), "/5/0"),
    (MultipleResource(5, {0: b"a"}, ResourceType.OPAQUE), "/5/0/5"),
    (SingleResource(0, b"a", ResourceType.OPAQUE), "/5/0/1"),
])
def test_encode_refuses_anything_but_one_opaque_value(node, path: str) -> None:
    with pytest.raises(CodecError):
        CODEC.encode(node, P(path), REGISTRY)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_round_trip(data: bytes) -> None:
    node = SingleResource(0, data, ResourceType.OPAQUE)
    assert CODEC.decode(CODEC.encode(node, P("/5/0/0"), REGISTRY), P("/5/0/0"), REGISTRY) == node


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([P("/5/0/0"), P("/3/0/0"), P("/5/0"), OPAQUE_MULTI]))
def test_fuzzed_bytes_raise_only_codec_error(data: bytes, path: Path) -> None:
    try:
        node = CODEC.decode(data, path, REGISTRY)
    except CodecError:
        return
    assert node.value == data
