"""text/plain codec: every type's text form, strict parsing, single values only, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.text import CODEC
from lwm2m_server.model import (
    LwM2mObject,
    MultipleResource,
    ObjectInstance,
    ObjLnk,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)

from .tlv_text_objects import ALL_TYPES_OBJECT, MULTIPLE_OFFSET, REGISTRY, SINGLE_ID, VALUES

P = Path.parse


def decode(text: bytes | str, path: str):
    data = text.encode() if isinstance(text, str) else text
    return CODEC.decode(data, P(path), REGISTRY)


def test_registry_maps_content_format_0_to_the_text_codec() -> None:
    assert codec_for(ContentFormat.TEXT) is CODEC


@pytest.mark.parametrize(("path", "text", "value"), [
    ("/3/0/0", "Open Mobile Alliance", "Open Mobile Alliance"),
    ("/3/0/9", "100", 100),
    ("/3/0/9", "-5", -5),
    ("/3/0/13", "1367491215", 1367491215),
    ("/1/0/6", "1", True),
    ("/1/0/6", "0", False),
    ("/5/0/0", "AQIDBAU=", b"\x01\x02\x03\x04\x05"),
    ("/33100/0/7", "0.25", 0.25),
    ("/33100/0/7", "3", 3.0),
    ("/33100/0/7", "-1.5e-3", -0.0015),
    ("/0/0/13", "18446744073709551615", 2**64 - 1),
    ("/1/0/10", "3:0", ObjLnk(3, 0)),
    ("/3/0/7/1", "5000", 5000),
])
def test_decodes_each_type_from_its_text_form(path: str, text: str, value) -> None:
    node = decode(text, path)
    assert node.value == value
    assert type(node.value) is type(value)
    p = P(path)
    assert isinstance(node, ResourceInstance if p.is_resource_instance else SingleResource)
    assert node.id == p.ids[-1]


@pytest.mark.parametrize(("node", "path", "text"), [
    (SingleResource(9, 100, ResourceType.INTEGER), "/3/0/9", "100"),
    (SingleResource(6, True, ResourceType.BOOLEAN), "/1/0/6", "1"),
    (SingleResource(6, False, ResourceType.BOOLEAN), "/1/0/6", "0"),
    (SingleResource(13, 1367491215, ResourceType.TIME), "/3/0/13", "1367491215"),
    (SingleResource(7, 0.1, ResourceType.FLOAT), "/33100/0/7", "0.1"),
    (SingleResource(7, 1e300, ResourceType.FLOAT), "/33100/0/7", "1e+300"),
    (SingleResource(0, b"\x01\x02\x03\x04\x05", ResourceType.OPAQUE), "/5/0/0", "AQIDBAU="),
    (SingleResource(10, ObjLnk(3, 0), ResourceType.OBJLNK), "/1/0/10", "3:0"),
    (SingleResource(4, None, ResourceType.NONE), "/3/0/4", ""),
    (ResourceInstance(1, "caf\u00e9", ResourceType.STRING), "/33100/0/1/1", "caf\u00e9"),
])
def test_encodes_each_type_to_its_text_form(node, path: str, text: str) -> None:
    assert CODEC.encode(node, P(path), REGISTRY) == text.encode("utf-8")


def test_unknown_resource_decodes_as_a_string() -> None:
    node = decode("42", "/30000/0/1")
    assert node == SingleResource(1, "42", ResourceType.STRING)


@pytest.mark.parametrize(("path", "text", "fragment"), [
    ("/3/0/9", "1.5", "not a valid integer"),
    ("/3/0/9", " 1", "not a valid integer"),
    ("/3/0/9", "", "not a valid integer"),
    ("/3/0/9", "0x10", "not a valid integer"),
    ("/3/0/9", str(2**63), "64-bit signed"),
    ("/0/0/13", "-1", "not a valid unsigned integer"),
    ("/0/0/13", str(2**64), "64-bit unsigned"),
    ("/1/0/6", "2", "'0' or '1'"),
    ("/1/0/6", "true", "'0' or '1'"),
    ("/33100/0/7", "NaN", "not a valid float"),
    ("/33100/0/7", "inf", "not a valid float"),
    ("/33100/0/7", "1e999", "out of range"),
    ("/33100/0/7", "1.2.3", "not a valid float"),
    ("/5/0/0", "!,-INVALID$_'", "base64"),
    ("/5/0/0", "AQIDBAU", "base64"),
    ("/1/0/10", "3:", "objectId:instanceId"),
    ("/1/0/10", "3:70000", "0..65535"),
    ("/3/0/4", "x", "type none"),
    ("/3/0/9", "9" * 1000, "too long"),
])
def test_refuses_text_that_is_not_exactly_the_type(path: str, text: str, fragment: str) -> None:
    with pytest.raises(CodecError) as e:
        decode(text, path)
    assert fragment in str(e.value)
    assert e.value.where == path


def test_refuses_invalid_utf8_naming_the_offset() -> None:
    with pytest.raises(CodecError) as e:
        decode(b"ab\xff", "/3/0/0")
    assert "UTF-8" in e.value.message and e.value.where == "offset 2"


@pytest.mark.parametrize("path", ["/3", "/3/0", "/", "/3/0/7", "/3/0/9/0"])
def test_decode_refuses_paths_that_are_not_one_value(path: str) -> None:
    with pytest.raises(CodecError) as e:
        decode("1", path)
    assert e.value.where == path


@pytest.mark.parametrize(("node", "path"), [
    (LwM2mObject(3), "/3"),
    (ObjectInstance(0), "/3/0"),
    (MultipleResource(7, {0: 1}, ResourceType.INTEGER), "/3/0/7"),
    (SingleResource(9, 1, ResourceType.INTEGER), "/3/0/10"),
    (SingleResource(9, 1, ResourceType.INTEGER), "/3/0/9/0"),
])
def test_encode_refuses_anything_but_one_value_at_its_path(node, path: str) -> None:
    with pytest.raises(CodecError):
        CODEC.encode(node, P(path), REGISTRY)


@st.composite
def typed_leaf(draw):
    rtype = draw(st.sampled_from(list(SINGLE_ID)))
    value = draw(VALUES[rtype])
    if draw(st.booleans()):
        rid = SINGLE_ID[rtype]
        return Path.of(ALL_TYPES_OBJECT, 0, rid), SingleResource(rid, value, rtype)
    rid = SINGLE_ID[rtype] + MULTIPLE_OFFSET
    ri = draw(st.integers(0, 65535))
    return Path.of(ALL_TYPES_OBJECT, 0, rid, ri), ResourceInstance(ri, value, rtype)


@settings(max_examples=300, deadline=None)
@given(typed_leaf())
def test_every_value_of_every_type_round_trips(leaf) -> None:
    path, node = leaf
    assert CODEC.decode(CODEC.encode(node, path, REGISTRY), path, REGISTRY) == node


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(
    [Path.of(ALL_TYPES_OBJECT, 0, i) for i in SINGLE_ID.values()] + [P("/3/0/7/0"), P("/3/0")]))
def test_fuzzed_bytes_raise_only_codec_error(data: bytes, path: Path) -> None:
    try:
        node = CODEC.decode(data, path, REGISTRY)
    except CodecError:
        return
    assert isinstance(node, (SingleResource, ResourceInstance))


def test_encode_refuses_a_string_that_is_not_valid_unicode() -> None:
    with pytest.raises(CodecError, match="UTF-8") as e:
        CODEC.encode(SingleResource(0, "\ud800", ResourceType.STRING), P("/3/0/0"), REGISTRY)
    assert e.value.where == "/3/0/0"
