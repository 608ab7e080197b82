"""LwM2M CBOR (11544): nested path maps, array keys, typed leaves; round-trips, bad input and fuzz."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.lwm2m_cbor import CODEC
from lwm2m_server.codecs.senml import MAX_RECORDS
from lwm2m_server.codecs.senml_json import CODEC as SENML_JSON
from lwm2m_server.model import (
    LwM2mObject,
    flatten,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjLnk,
    Path,
    ResourceType,
    SingleResource,
    Value,
    default_registry,
)
from tests.codecs.test_senml_json import DEVICE_3_0
from tests.codecs.test_senml_properties import FAST, FUZZ, REG as TEST_REG
from tests.codecs.test_senml_properties import (
    UNKNOWN_OBJECT,
    _mutate,
    cbor_docs,
    composite_values,
    ids,
    node_at_path,
    only_codec_errors,
)

REG = default_registry()
P = Path.parse
H = bytes.fromhex


def test_registry_returns_this_codec_for_11544() -> None:
    assert codec_for(ContentFormat.LWM2M_CBOR) is CODEC


def test_multiple_resource_read_is_one_map_per_level_from_the_object() -> None:
    node = MultipleResource(7, {0: 3800, 1: 5000}, ResourceType.INTEGER)
    data = CODEC.encode(node, P("/3/0/7"), REG)
    # {3: {0: {7: {0: 3800, 1: 5000}}}}
    assert data == H("a103a100a107a200190ed80119 1388".replace(" ", ""))
    assert CODEC.decode(data, P("/3/0/7"), REG) == node


def test_device_instance_round_trips_and_matches_the_senml_read() -> None:
    node = SENML_JSON.decode(DEVICE_3_0, P("/3/0"), REG)
    data = CODEC.encode(node, P("/3/0"), REG)
    assert len(data) < len(DEVICE_3_0) / 3
    assert cbor2.loads(data)[3][0][13].timestamp() == 1367491215  # tag 1, read back as a datetime
    assert CODEC.decode(data, P("/3/0"), REG) == node


def test_time_is_tag_1_and_a_plain_integer_is_accepted() -> None:
    node = SingleResource(13, 1367491215, ResourceType.TIME)
    data = CODEC.encode(node, P("/3/0/13"), REG)
    assert data == H("a103a100a10dc11a5182428f")
    plain = H("a103a100a10d1a5182428f")
    assert CODEC.decode(plain, P("/3/0/13"), REG) == node == CODEC.decode(data, P("/3/0/13"), REG)


def test_array_keys_nested_keys_and_indefinite_maps_all_decode() -> None:
    expected = {P("/3/0/0"): "Open Mobile Alliance", P("/3/0/9"): 95, P("/1/0/1"): 86400}
    forms = [
        cbor2.dumps({3: {0: {0: "Open Mobile Alliance", 9: 95}}, 1: {0: {1: 86400}}}),
        cbor2.dumps({(3, 0): {0: "Open Mobile Alliance", 9: 95}, (1, 0, 1): 86400}),
        cbor2.dumps({(3, 0, 0): "Open Mobile Alliance", 3: {(0, 9): 95}, 1: {0: {1: 86400}}}),
        # indefinite-length maps: {_ 3: {_ 0: {_ 0: "...", 9: 95}}, 1: {0: {1: 86400}}}
        H("bf03bf00bf00744f70656e204d6f62696c6520416c6c69616e636509185fffff01a100a1011a00015180ff"),
    ]
    for data in forms:
        assert CODEC.decode_values(data, REG) == expected


def test_composite_values_encode_as_nested_maps_and_decode_back() -> None:
    values = {P("/3/0/0"): "Open Mobile Alliance", P("/3/0/9"): 95, P("/1/0/1"): 86400}
    data = CODEC.encode_values(values, REG)
    assert cbor2.loads(data) == {3: {0: {0: "Open Mobile Alliance", 9: 95}}, 1: {0: {1: 86400}}}
    assert CODEC.decode_values(data, REG) == values
    assert CODEC.decode_timestamped(data, REG) == [(None, values)]


def test_object_links_opaque_booleans_and_floats_are_typed() -> None:
    data = cbor2.dumps({3: {0: {22: {0: "4:0"}}}, 0: {0: {3: b"\xab"}}, 1: {0: {6: True}},
                        33100: {0: {7: 0.5}}})
    assert CODEC.decode_values(data, REG) == {P("/3/0/22/0"): ObjLnk(4, 0), P("/0/0/3"): b"\xab",
                                              P("/1/0/6"): True, P("/33100/0/7"): 0.5}


def test_unknown_resources_take_the_type_their_value_implies() -> None:
    node = CODEC.decode(cbor2.dumps({4242: {0: {1: "x", 2: 7, 3: 1.5, 4: False, 5: b"\x00"}}}), P("/4242/0"), REG)
    assert node == ObjectInstance.of(0, SingleResource(1, "x", ResourceType.STRING),
                                     SingleResource(2, 7, ResourceType.INTEGER),
                                     SingleResource(3, 1.5, ResourceType.FLOAT),
                                     SingleResource(4, False, ResourceType.BOOLEAN),
                                     SingleResource(5, b"\x00", ResourceType.OPAQUE))


def test_empty_object_and_instance_keep_their_maps() -> None:
    assert CODEC.encode(LwM2mObject(3, {}), P("/3"), REG) == H("a103a0")
    assert CODEC.decode(H("a103a0"), P("/3"), REG) == LwM2mObject(3, {})
    assert CODEC.decode(H("a103a100a0"), P("/3/0"), REG) == ObjectInstance(0, {})
    assert CODEC.decode(H("a0"), P("/3/0/7"), REG) == MultipleResource(7, {}, ResourceType.INTEGER)


def test_path_lists_have_null_at_each_path() -> None:
    paths = [P("/3/0/0"), P("/3/0/9"), P("/1/0/1"), P("/5")]
    data = CODEC.encode_paths(paths)
    assert cbor2.loads(data) == {3: {0: {0: None, 9: None}}, 1: {0: {1: None}}, 5: None}
    assert CODEC.decode_paths(data) == paths


def test_path_list_cannot_hold_the_root_or_a_path_and_its_child() -> None:
    with pytest.raises(CodecError, match="root"):
        CODEC.encode_paths([Path()])
    with pytest.raises(CodecError, match="together with paths under it|under a path"):
        CODEC.encode_paths([P("/3/0/1"), P("/3/0")])
    with pytest.raises(CodecError, match="under a path that has a value"):
        CODEC.encode_paths([P("/3/0"), P("/3/0/1")])


def test_big_integers_stay_exact() -> None:
    values = {P("/3/0/9"): 2**63 - 1, P("/3/0/10"): -(2**63)}
    assert CODEC.decode_values(CODEC.encode_values(values, REG), REG) == values


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("doc", "match"), [
    ([1, 2], "payload is a map"),
    ({3.5: 1}, "unsigned integers"),
    ({"3": {0: {0: "x"}}}, "unsigned integers"),
    ({(): 1}, "empty array"),
    ({True: 1}, "unsigned integers"),
    ({70000: {0: {0: 1}}}, "outside 0..65535"),
    ({-1: {0: {0: 1}}}, "outside 0..65535"),
    ({3: {0: {7: {0: {1: 5}}}}}, "deeper than 4"),
    ({(3, 0, 7, 0, 1): 5}, "deeper than 4"),
    ({3: {65535: {0: "x"}}}, "65535 is reserved"),
    ({3: {0: 5}}, "not a resource"),
    ({3: 5}, "not a resource"),
    ({3: {0: {9: None}}}, "null is not a resource value"),
    ({3: {0: {9: "95"}}}, "integer resource needs v, got vs"),
    ({3: {0: {0: 5}}}, "string resource needs vs, got v"),
    ({3: {0: {9: 1.5}}}, "not an integer"),
    ({3: {0: {9: 2**64}}}, "does not fit"),
    ({33100: {0: {7: float("nan")}}}, "finite"),
    ({33100: {0: {7: float("-inf")}}}, "finite"),
    ({3: {0: {22: {0: "4-0"}}}}, "objectId:instanceId"),
    ({3: {0: {9: [1]}}}, "unsupported CBOR value"),
    ({3: {0: {9: 1}}, (3, 0, 9): 2}, "duplicate path /3/0/9"),
    ({3: {0: {7: 5, (7, 0): 1}}}, "both a value and instances"),
    ({3: {0: {(7, 0): 1, 7: 5}}}, "both a value and instances"),
])
def test_malformed_maps_are_refused_with_a_reason(doc: object, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        CODEC.decode_values(cbor2.dumps(doc), REG)


def test_errors_say_which_path_is_at_fault() -> None:
    with pytest.raises(CodecError) as exc:
        CODEC.decode_values(cbor2.dumps({3: {0: {9: "95"}}}), REG)
    assert exc.value.where == "/3/0/9"


def test_values_outside_the_requested_path_are_refused() -> None:
    with pytest.raises(CodecError, match="not under the requested path /3/0"):
        CODEC.decode(cbor2.dumps({3: {0: {9: 1}}, 1: {0: {1: 2}}}), P("/3/0"), REG)


@pytest.mark.parametrize("data", [b"\xa1\x03", b"\xa1\x03\xa1\x00\xa1\x00\x62\xff\xfe", b"\xa0\x00",
                                  b"\xbf\x03", b"\x1c"])
def test_truncated_invalid_utf8_and_trailing_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(CodecError):
        CODEC.decode_values(data, REG)


def test_deep_nesting_and_huge_counts_are_refused() -> None:
    with pytest.raises(CodecError, match="nest"):
        CODEC.decode_values(b"\xa1\x01" * 100_000 + b"\x01", REG)
    many = {3: {i: {9: 1} for i in range(MAX_RECORDS + 1)}}
    with pytest.raises(CodecError, match="too many values"):
        CODEC.decode_values(cbor2.dumps(many), REG)


def test_values_at_object_paths_cannot_be_encoded() -> None:
    with pytest.raises(CodecError, match="not a resource"):
        CODEC.encode_values({P("/3/0"): 1}, REG)


# --- properties --------------------------------------------------------------------------------

def typed_by_cbor(values: dict[Path, Value]) -> bool:
    """LwM2M CBOR writes object links as text: without a definition they come back as strings."""
    return not any(isinstance(v, ObjLnk) and p.object_id == UNKNOWN_OBJECT for p, v in values.items())


@FAST
@given(case=node_at_path())
def test_any_node_tree_round_trips(case: tuple[Node, Path]) -> None:
    node, path = case
    assume(typed_by_cbor(flatten(node, path)))
    assert CODEC.decode(CODEC.encode(node, path, TEST_REG), path, TEST_REG) == node


@FAST
@given(values=composite_values())
def test_any_composite_value_map_round_trips(values: dict[Path, Value]) -> None:
    assume(typed_by_cbor(values))
    assert CODEC.decode_values(CODEC.encode_values(values, TEST_REG), TEST_REG) == values


def test_unknown_object_link_comes_back_as_text() -> None:
    data = CODEC.encode_values({P("/4242/0/1"): ObjLnk(3, 0)}, REG)
    assert CODEC.decode_values(data, REG) == {P("/4242/0/1"): "3:0"}


@FAST
@given(paths=st.lists(st.lists(ids, min_size=1, max_size=4).map(lambda xs: Path(tuple(xs))), max_size=6,
                      unique=True))
def test_any_prefix_free_path_list_round_trips(paths: list[Path]) -> None:
    prefix_free = [p for p in paths if not any(q != p and p.starts_with(q) or q != p and q.starts_with(p)
                                               for q in paths)]
    assert sorted(CODEC.decode_paths(CODEC.encode_paths(prefix_free))) == sorted(prefix_free)


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_only_codec_errors(data: bytes) -> None:
    only_codec_errors(CODEC, data)


@FUZZ
@given(doc=cbor_docs)
def test_arbitrary_cbor_structures_give_only_codec_errors(doc: object) -> None:
    only_codec_errors(CODEC, cbor2.dumps(doc))
    only_codec_errors(CODEC, cbor2.dumps({3: {0: doc}}))
    only_codec_errors(CODEC, cbor2.dumps({42000: {0: {6: doc, 17: {0: doc}}}}))


@FUZZ
@given(case=node_at_path(), edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10_000))
def test_mutated_valid_payloads_give_only_codec_errors(case: tuple[Node, Path], edits: list, cut: int) -> None:
    node, path = case
    data = _mutate(CODEC.encode(node, path, TEST_REG), edits)
    only_codec_errors(CODEC, data)
    only_codec_errors(CODEC, data[: cut % (len(data) + 1)])
