"""SenML JSON (110): the LwM2M 1.1 Core spec's examples byte for byte, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.senml import MAX_RECORDS
from lwm2m_server.codecs.senml_json import CODEC
from lwm2m_server.model import (
    MultipleResource,
    ObjectInstance,
    ObjLnk,
    Path,
    ResourceType,
    SingleResource,
    default_registry,
)

REG = default_registry()
P = Path.parse

# LwM2M 1.1 Core, Table 7.4.4-2: Read /3/0 (as reproduced by Wakaama's and Leshan's tests).
DEVICE_3_0 = (
    b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},'
    b'{"n":"1","vs":"Lightweight M2M Client"},'
    b'{"n":"2","vs":"345000123"},'
    b'{"n":"3","vs":"1.0"},'
    b'{"n":"6/0","v":1},{"n":"6/1","v":5},'
    b'{"n":"7/0","v":3800},{"n":"7/1","v":5000},'
    b'{"n":"8/0","v":125},{"n":"8/1","v":900},'
    b'{"n":"9","v":100},'
    b'{"n":"10","v":15},'
    b'{"n":"11/0","v":0},'
    b'{"n":"13","v":1367491215},'
    b'{"n":"14","vs":"+02:00"},'
    b'{"n":"16","vs":"U"}]'
)

# Table 7.4.4-3: timestamped values of one resource (bt + relative t).
TIMESTAMPED_72 = (
    b'[{"bn":"/72/","bt":25462634,"n":"1/2","v":22.4,"t":-5},'
    b'{"n":"1/2","v":22.9,"t":-30},'
    b'{"n":"1/2","v":24.1,"t":-50}]'
)

# Table 7.4.4-4 (with /66/1/2 in decimal): objects 65..67 read at the root, object links.
ROOT_OBJLNK = (
    b'[{"bn":"/","n":"65/0/0/0","vlo":"66:0"},'
    b'{"n":"65/0/0/1","vlo":"66:1"},'
    b'{"n":"65/0/1","vs":"8613800755500"},'
    b'{"n":"65/0/2","v":1},'
    b'{"n":"66/0/0","vs":"myService1"},'
    b'{"n":"66/0/1","vs":"Internet.15.234"},'
    b'{"n":"66/0/2","vlo":"67:0"},'
    b'{"n":"66/1/0","vs":"myService2"},'
    b'{"n":"66/1/1","vs":"Internet.15.235"},'
    b'{"n":"66/1/2","vlo":"65535:65535"},'
    b'{"n":"67/0/0","vs":"85.76.76.84"},'
    b'{"n":"67/0/1","vs":"85.76.255.255"}]'
)

# Table 7.4.4-5: a single resource.
SINGLE_3_0_0 = b'[{"bn":"/3/0/0","vs":"Open Mobile Alliance"}]'
# Table 7.4.4-6: Read-Composite request body.
COMPOSITE_PATHS = b'[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1/0/1"}]'
# Table 7.4.4-7: Read-Composite response.
COMPOSITE_VALUES = b'[{"n":"/3/0/0","vs":"Open Mobile Alliance"},{"n":"/3/0/9","v":95},{"n":"/1/0/1","v":86400}]'
# Table 7.4.4-8: Write-Composite request (objects the registry does not know).
WRITE_COMPOSITE = (
    b'[{"n":"/3311/0/5850","vb":false},{"n":"/3311/1/5850","vb":false},'
    b'{"n":"/3311/2/5851","v":20},{"n":"/3308/0/5900","v":18}]'
)


def test_registry_returns_this_codec_for_110() -> None:
    assert codec_for(ContentFormat.SENML_JSON) is CODEC
    assert codec_for(110).content_format == ContentFormat.SENML_JSON


def test_spec_device_instance_read_decodes_to_typed_instance() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    assert isinstance(node, ObjectInstance) and node.id == 0
    assert node.resources[0] == SingleResource(0, "Open Mobile Alliance", ResourceType.STRING)
    assert node.resources[7] == MultipleResource(7, {0: 3800, 1: 5000}, ResourceType.INTEGER)
    assert node.resources[13] == SingleResource(13, 1367491215, ResourceType.TIME)
    assert node.resources[16].value == "U"
    assert sorted(node.resources) == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16]


def test_spec_device_instance_encodes_byte_exact() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    assert CODEC.encode(node, P("/3/0"), REG) == DEVICE_3_0


def test_device_object_read_at_object_level_puts_instance_in_names() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    from lwm2m_server.model import LwM2mObject

    obj = LwM2mObject.of(3, node)  # type: ignore[arg-type]
    data = CODEC.encode(obj, P("/3"), REG)
    assert data.startswith(b'[{"bn":"/3/","n":"0/0","vs":"Open Mobile Alliance"},{"n":"0/1",')
    assert CODEC.decode(data, P("/3"), REG) == obj


def test_spec_timestamped_values_resolve_base_time_plus_relative_time() -> None:
    groups = CODEC.decode_timestamped(TIMESTAMPED_72, REG)
    assert groups == [
        (25462634 - 5, {P("/72/1/2"): 22.4}),
        (25462634 - 30, {P("/72/1/2"): 22.9}),
        (25462634 - 50, {P("/72/1/2"): 24.1}),
    ]


def test_timestamped_values_encode_with_one_base_time_and_decode_back() -> None:
    groups = [(1000, {P("/3/0/9"): 90, P("/3/0/10"): 15}), (1010, {P("/3/0/9"): 89})]
    data = CODEC.encode_timestamped(groups, REG)
    assert data == (b'[{"bt":1000,"n":"/3/0/9","v":90},{"n":"/3/0/10","v":15},'
                    b'{"n":"/3/0/9","v":89,"t":10}]')
    assert CODEC.decode_timestamped(data, REG) == groups


def test_same_path_twice_in_one_timestamp_group_is_refused() -> None:
    with pytest.raises(CodecError, match="duplicate path /72/1/2"):
        CODEC.decode_timestamped(b'[{"bn":"/72/1/2","bt":5,"v":1.5},{"v":2.5}]', REG)


def test_values_without_time_come_back_with_none_timestamp() -> None:
    assert CODEC.decode_timestamped(COMPOSITE_VALUES, REG) == [
        (None, {P("/3/0/0"): "Open Mobile Alliance", P("/3/0/9"): 95, P("/1/0/1"): 86400})]


def test_negative_time_without_base_is_relative_to_now() -> None:
    import time

    [(when, values)] = CODEC.decode_timestamped(b'[{"n":"/3/0/9","v":1,"t":-60}]', REG)
    assert when is not None and abs(when - (time.time() - 60)) < 5
    assert values == {P("/3/0/9"): 1}


def test_spec_root_read_with_object_links_decodes_and_encodes_byte_exact() -> None:
    values = CODEC.decode_values(ROOT_OBJLNK, REG)
    assert values[P("/65/0/0/0")] == ObjLnk(66, 0)
    assert values[P("/66/1/2")] == ObjLnk(65535, 65535)
    assert values[P("/65/0/2")] == 1
    assert values[P("/67/0/1")] == "85.76.255.255"
    assert CODEC.encode_values(values, REG, base=Path()) == ROOT_OBJLNK


def test_spec_single_resource_decodes_and_encodes_byte_exact() -> None:
    node = CODEC.decode(SINGLE_3_0_0, P("/3/0/0"), REG)
    assert node == SingleResource(0, "Open Mobile Alliance", ResourceType.STRING)
    assert CODEC.encode(node, P("/3/0/0"), REG) == SINGLE_3_0_0


def test_multiple_resource_encodes_with_trailing_slash_base_name() -> None:
    node = MultipleResource(7, {0: 3800, 1: 5000}, ResourceType.INTEGER)
    data = CODEC.encode(node, P("/3/0/7"), REG)
    assert data == b'[{"bn":"/3/0/7/","n":"0","v":3800},{"n":"1","v":5000}]'
    assert CODEC.decode(data, P("/3/0/7"), REG) == node


def test_empty_pack_for_a_multiple_resource_is_an_empty_resource() -> None:
    assert CODEC.decode(b"[]", P("/3/0/7"), REG) == MultipleResource(7, {}, ResourceType.INTEGER)


def test_empty_pack_for_a_single_resource_is_refused() -> None:
    with pytest.raises(CodecError, match="no value for /3/0/9"):
        CODEC.decode(b"[]", P("/3/0/9"), REG)


def test_spec_composite_paths_decode_and_encode_byte_exact() -> None:
    paths = CODEC.decode_paths(COMPOSITE_PATHS)
    assert paths == [P("/3/0/0"), P("/3/0/9"), P("/1/0/1")]
    assert CODEC.encode_paths(paths) == COMPOSITE_PATHS


def test_composite_paths_accept_objects_and_the_root() -> None:
    assert CODEC.decode_paths(b'[{"n":"/1"},{"n":"/3/0"},{"n":"/"}]') == [P("/1"), P("/3/0"), Path()]


def test_composite_path_list_with_a_value_is_refused() -> None:
    with pytest.raises(CodecError, match="record 1 field 'v'"):
        CODEC.decode_paths(b'[{"n":"/1"},{"n":"/3/0/9","v":1}]')


def test_spec_read_composite_response_decodes_and_encodes_byte_exact() -> None:
    values = CODEC.decode_values(COMPOSITE_VALUES, REG)
    assert values == {P("/3/0/0"): "Open Mobile Alliance", P("/3/0/9"): 95, P("/1/0/1"): 86400}
    assert list(values) == [P("/3/0/0"), P("/3/0/9"), P("/1/0/1")]
    assert CODEC.encode_values(values, REG) == COMPOSITE_VALUES


def test_spec_read_composite_response_with_spaces_decodes() -> None:
    spaced = b'[{"n":"/3/0/0", "vs":"Open Mobile Alliance"},{"n" :"/3/0/9", "v":95},{"n":"/1/0/1", "v":86400}]'
    assert CODEC.decode_values(spaced, REG) == CODEC.decode_values(COMPOSITE_VALUES, REG)


def test_spec_write_composite_for_unknown_objects_types_values_by_kind() -> None:
    values = CODEC.decode_values(WRITE_COMPOSITE, REG)
    assert values == {P("/3311/0/5850"): False, P("/3311/1/5850"): False,
                      P("/3311/2/5851"): 20, P("/3308/0/5900"): 18}
    assert CODEC.encode_values(values, REG) == WRITE_COMPOSITE


def test_opaque_is_base64url_without_padding() -> None:
    node = SingleResource(3, bytes.fromhex("abcdef"), ResourceType.OPAQUE)
    data = CODEC.encode(node, P("/0/0/3"), REG)
    assert data == b'[{"bn":"/0/0/3","vd":"q83v"}]'
    assert CODEC.decode(data, P("/0/0/3"), REG) == node
    two = SingleResource(3, b"\xfb\xff", ResourceType.OPAQUE)
    assert CODEC.encode(two, P("/0/0/3"), REG) == b'[{"bn":"/0/0/3","vd":"-_8"}]'


def test_opaque_input_with_padding_or_standard_alphabet_is_accepted() -> None:
    for text in ("-_8=", "+/8", "+/8="):
        body = json.dumps([{"bn": "/0/0/3", "vd": text}]).encode()
        assert CODEC.decode(body, P("/0/0/3"), REG).value == b"\xfb\xff"  # type: ignore[union-attr]


def test_base_name_concatenation_and_redefinition_resolve_full_names() -> None:
    body = b'[{"bn":"/2/3","n":"/0","v":1234},{"bn":"/5/0/","n":"1","vs":"http://x"},{"bn":"","n":"/3/0/9","v":7}]'
    assert CODEC.decode_values(body, REG) == {P("/2/3/0"): 1234, P("/5/0/1"): "http://x", P("/3/0/9"): 7}


def test_base_value_is_added_to_numeric_values() -> None:
    assert CODEC.decode_values(b'[{"bn":"/3/0/","bv":100,"n":"9","v":-5},{"n":"10","v":1}]', REG) == {
        P("/3/0/9"): 95, P("/3/0/10"): 101}


def test_unknown_fields_are_ignored_and_base_version_10_is_accepted() -> None:
    assert CODEC.decode_values(b'[{"bver":10,"u":"%","x":1,"n":"/3/0/9","v":1}]', REG) == {P("/3/0/9"): 1}


def test_integral_float_for_time_resource_is_read_as_integer() -> None:
    node = CODEC.decode(b'[{"bn":"/3/0/13","v":1.3674912E9}]', P("/3/0/13"), REG)
    assert node == SingleResource(13, 1367491200, ResourceType.TIME)


def test_integer_for_float_resource_becomes_float() -> None:
    node = CODEC.decode(b'[{"bn":"/33100/0/7","v":1}]', P("/33100/0/7"), REG)
    assert node.value == 1.0 and isinstance(node.value, float)  # type: ignore[union-attr]


def test_large_integers_stay_exact() -> None:
    big = 2**63 - 1
    node = SingleResource(9, big, ResourceType.INTEGER)
    data = CODEC.encode(node, P("/3/0/9"), REG)
    assert data == b'[{"bn":"/3/0/9","v":9223372036854775807}]'
    assert CODEC.decode(data, P("/3/0/9"), REG).value == big  # type: ignore[union-attr]


# --- bad input: each gives CodecError naming what and where -----------------------------------

@pytest.mark.parametrize(("body", "match", "where"), [
    (b'[{"bn":"/3/0/9","vs":"100"}]', "integer resource needs v, got vs", "record 0 field 'vs'"),
    (b'[{"bn":"/3/0/0","v":1}]', "string resource needs vs, got v", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9","vb":true}]', "needs v, got vb", "record 0 field 'vb'"),
    (b'[{"bn":"/3/0/22/0","vs":"3:0"}]', "objlnk resource needs vlo", "record 0 field 'vs'"),
    (b'[{"bn":"/3/0/22/0","vlo":"3-0"}]', "objectId:instanceId", "record 0 field 'vlo'"),
    (b'[{"bn":"/3/0/9","v":1.5}]', "not an integer", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9","v":1e300}]', "not an integer|does not fit", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9","v":18446744073709551616}]', "does not fit", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9"}]', "record has no value", "record 0"),
    (b'[{"bn":"/3/0/4","v":1}]', "executable", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9","v":1,"vs":"x"}]', "one value, got v, vs", "record 0"),
    (b'[{"bn":"/3/0/9","v":"1"}]', "v must be a number", "record 0 field 'v'"),
    (b'[{"bn":"/3/0/9","v":true}]', "v must be a number", "record 0 field 'v'"),
    (b'[{"bn":9,"v":1}]', "bn must be a text string", "record 0 field 'bn'"),
    (b'[{"bn":"/3/0/9","vb":1}]', "vb must be true or false", "record 0 field 'vb'"),
    (b'[{"bn":"/0/0/3","vd":"*x*"}]', "not base64url", "record 0 field 'vd'"),
    (b'[{"bn":"/0/0/3","vd":"abcde"}]', "impossible length", "record 0 field 'vd'"),
    (b'[{"bn":"/0/0/3","vd":5}]', "vd must be a base64url string", "record 0 field 'vd'"),
    (b'[{"bver":11,"n":"/3/0/9","v":1}]', "unsupported SenML version", "record 0 field 'bver'"),
    (b'[{"test_":1,"n":"/3/0/9","v":1}]', "must-understand", "record 0 field 'test_'"),
    (b'[{"n":"/3/0/9","v":1},5]', "a record is an object", "record 1"),
])
def test_wrongly_typed_records_are_refused_with_the_record_and_field(body: bytes, match: str, where: str) -> None:
    with pytest.raises(CodecError, match=match) as exc:
        CODEC.decode_values(body, REG)
    assert exc.value.where == where


@pytest.mark.parametrize("name", ["3/0/9", "/3/0/x", "/3/0/09", "/3/0/9/", "/3//0/9", "/3/0",
                                  "/3/0/9/0/1", "/70000/0/1", "/3/65535/1", ""])
def test_base_names_that_make_invalid_paths_are_refused(name: str) -> None:
    body = json.dumps([{"bn": name, "v": 1}]).encode()
    with pytest.raises(CodecError) as exc:
        CODEC.decode_values(body, REG)
    assert exc.value.where == "record 0 field 'n'"


def test_duplicate_paths_are_refused() -> None:
    body = b'[{"bn":"/3/0/","n":"9","v":1},{"n":"10","v":2},{"bn":"/3/0/9","v":3}]'
    with pytest.raises(CodecError, match="duplicate path /3/0/9") as exc:
        CODEC.decode_values(body, REG)
    assert exc.value.where == "record 2 field 'n'"
    with pytest.raises(CodecError, match="duplicate path"):
        CODEC.decode(body, P("/3/0"), REG)


def test_duplicate_field_in_one_record_is_refused() -> None:
    with pytest.raises(CodecError, match="duplicate field 'v'"):
        CODEC.decode_values(b'[{"n":"/3/0/9","v":1,"v":2}]', REG)


def test_values_outside_the_requested_path_are_refused() -> None:
    with pytest.raises(CodecError, match="not under the requested path /3/0"):
        CODEC.decode(b'[{"n":"/3/0/9","v":1},{"n":"/1/0/1","v":2}]', P("/3/0"), REG)


def test_multiple_resource_given_as_single_value_is_refused() -> None:
    with pytest.raises(CodecError, match="multiple resource"):
        CODEC.decode(b'[{"bn":"/3/0/7","v":3800}]', P("/3/0/7"), REG)


@pytest.mark.parametrize("body", [b'[{"n":"/33100/0/7","v":NaN}]', b'[{"n":"/33100/0/7","v":Infinity}]',
                                  b'[{"n":"/33100/0/7","v":-Infinity}]'])
def test_nan_and_infinity_are_refused(body: bytes) -> None:
    with pytest.raises(CodecError, match="not a valid JSON number"):
        CODEC.decode_values(body, REG)


def test_nan_float_value_is_refused_when_encoding() -> None:
    with pytest.raises(CodecError, match="finite"):
        CODEC.encode_values({P("/33100/0/7"): float("nan")}, REG)


def test_invalid_utf8_is_refused_with_offset() -> None:
    with pytest.raises(CodecError, match="not valid UTF-8") as exc:
        CODEC.decode_values(b'[{"n":"/3/0/0","vs":"\xff\xfe"}]', REG)
    assert exc.value.where == "offset 21"


def test_lone_surrogate_escape_is_refused() -> None:
    with pytest.raises(CodecError, match="not valid UTF-8 text"):
        CODEC.decode_values(b'[{"n":"/3/0/0","vs":"\\ud800"}]', REG)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(CodecError, match="nested too deeply|a record is an object"):
        CODEC.decode_values(b"[" * 100_000 + b"]" * 100_000, REG)


def test_too_many_records_are_refused() -> None:
    body = json.dumps([{"n": "/3/0/9", "v": 1}] * (MAX_RECORDS + 1)).encode()
    with pytest.raises(CodecError, match="too many records"):
        CODEC.decode_values(body, REG)


@pytest.mark.parametrize("body", [b"{}", b'"x"', b"[", b"[1,]", b"null", b"\xef\xbb\xbf[]"])
def test_not_a_senml_array_is_refused(body: bytes) -> None:
    with pytest.raises(CodecError):
        CODEC.decode_values(body, REG)


def test_encoding_a_value_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(CodecError, match="not a valid integer"):
        CODEC.encode_values({P("/3/0/9"): "ninety"}, REG)


def test_encoding_values_at_object_paths_is_refused() -> None:
    with pytest.raises(CodecError, match="not a resource"):
        CODEC.encode_values({P("/3/0"): 1}, REG)


def test_time_series_of_one_resource_encodes_without_names() -> None:
    groups = [(268500000, {P("/1024/0/1"): 22.9}), (268500010, {P("/1024/0/1"): 22.4})]
    data = CODEC.encode_timestamped(groups, REG, base=P("/1024/0/1"))
    assert data == b'[{"bn":"/1024/0/1","bt":268500000,"v":22.9},{"v":22.4,"t":10}]'
    assert CODEC.decode_timestamped(data, REG) == groups


def test_unknown_resource_above_int64_is_read_as_unsigned() -> None:
    assert CODEC.decode_values(b'[{"n":"/4242/0/1","v":18446744073709551615}]', REG) == {
        P("/4242/0/1"): 2**64 - 1}


def test_times_beyond_year_9999_are_refused() -> None:
    with pytest.raises(CodecError, match="out of range") as exc:
        CODEC.decode_timestamped(b'[{"bn":"/3/0/9","bt":1e300,"v":1}]', REG)
    assert exc.value.where == "record 0 field 'bt'"
