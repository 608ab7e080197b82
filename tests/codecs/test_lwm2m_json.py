"""LwM2M JSON (11543 and the old 1543): decoding of LwM2M 1.0 JSON documents; encoding is refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.lwm2m_json import CODEC
from lwm2m_server.codecs.senml_json import CODEC as SENML_JSON
from lwm2m_server.model import ObjLnk, Path, ResourceType, SingleResource, default_registry, flatten
from tests.codecs.test_senml_properties import REG as TEST_REG
from tests.codecs.test_senml_properties import UNKNOWN_OBJECT, _mutate, json_docs, node_at_path, only_codec_errors

REG = default_registry()
P = Path.parse

# Read /3/0 as a 1.0 client answers it (Leshan's json_encode_device_object_instance).
DEVICE_3_0 = (
    b'{"bn":"/3/0/","e":['
    b'{"n":"0","sv":"Open Mobile Alliance"},{"n":"1","sv":"Lightweight M2M Client"},'
    b'{"n":"2","sv":"345000123"},{"n":"3","sv":"1.0"},'
    b'{"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},{"n":"7/1","v":5000},'
    b'{"n":"8/0","v":125},{"n":"8/1","v":900},{"n":"9","v":100},{"n":"10","v":15},'
    b'{"n":"11/0","v":0},{"n":"13","v":1367491215},{"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}'
)
SENML_DEVICE_3_0 = (
    b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},'
    b'{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},'
    b'{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},'
    b'{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},'
    b'{"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]'
)


def test_registry_returns_this_codec_for_11543_and_1543() -> None:
    assert codec_for(ContentFormat.LWM2M_JSON) is CODEC
    assert codec_for(1543) is CODEC


def test_device_instance_decodes_like_the_senml_json_read() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    assert node == SENML_JSON.decode(SENML_DEVICE_3_0, P("/3/0"), REG)


def test_document_without_base_name_is_relative_to_the_requested_path() -> None:
    body = b'{"e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"6/0","v":1},{"n":"9","v":100}]}'
    node = CODEC.decode(body, P("/3/0"), REG)
    assert node.resources[0].value == "Open Mobile Alliance"  # type: ignore[union-attr]
    assert dict(node.resources[6].instances) == {0: 1}  # type: ignore[union-attr]
    assert CODEC.decode(b'{"e":[{"v":95}]}', P("/3/0/9"), REG) == SingleResource(9, 95, ResourceType.INTEGER)


def test_timestamped_resource_resolves_base_time_plus_relative_time() -> None:
    body = b'{"bn":"/1024/0/1","e":[{"v":22.9,"t":-30},{"v":22.4,"t":-5},{"v":24.1,"t":-50}],"bt":25462634}'
    assert CODEC.decode_timestamped(body, REG) == [
        (25462604, {P("/1024/0/1"): 22.9}), (25462629, {P("/1024/0/1"): 22.4}), (25462584, {P("/1024/0/1"): 24.1})]


def test_timestamped_instance_groups_entries_by_time() -> None:
    body = (b'{"bn":"/1024/0/","e":[{"n":"1","v":22.9,"t":110},{"n":"0","sv":"a string","t":120},'
            b'{"n":"1","v":22.4,"t":120},{"n":"1","v":24.1,"t":130}]}')
    assert CODEC.decode_timestamped(body, REG) == [
        (110, {P("/1024/0/1"): 22.9}),
        (120, {P("/1024/0/0"): "a string", P("/1024/0/1"): 22.4}),
        (130, {P("/1024/0/1"): 24.1}),
    ]


def test_boolean_object_link_and_opaque_entries_are_typed() -> None:
    body = (b'{"bn":"/","e":[{"n":"1/0/6","bv":true},{"n":"3/0/22/0","ov":"4:0"},'
            b'{"n":"5/0/0","sv":"AQIDBAU="},{"n":"0/0/3","sv":"q83v"}]}')
    assert CODEC.decode_values(body, REG) == {
        P("/1/0/6"): True, P("/3/0/22/0"): ObjLnk(4, 0), P("/5/0/0"): b"\x01\x02\x03\x04\x05",
        P("/0/0/3"): bytes.fromhex("abcdef")}


def test_exact_64_bit_integers_survive() -> None:
    body = b'{"bn":"/3/0/","e":[{"n":"9","v":-9223372036854775808},{"n":"10","v":9223372036854775807}]}'
    assert CODEC.decode_values(body, REG) == {P("/3/0/9"): -(2**63), P("/3/0/10"): 2**63 - 1}


@pytest.mark.parametrize("call", [
    lambda: CODEC.encode(SingleResource(9, 1, ResourceType.INTEGER), P("/3/0/9"), REG),
    lambda: CODEC.encode_values({P("/3/0/9"): 1}, REG),
    lambda: CODEC.encode_timestamped([(1, {P("/3/0/9"): 1})], REG),
    lambda: CODEC.encode_paths([P("/3/0/9")]),
])
def test_encoding_is_refused_as_decode_only(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CodecError, match="decode-only"):
        call()


def test_path_lists_are_refused() -> None:
    with pytest.raises(CodecError, match="no path lists"):
        CODEC.decode_paths(b'{"e":[{"n":"/3/0/9"}]}')


@pytest.mark.parametrize(("body", "match", "where"), [
    (b'{"bn":"/3/0/","e":[{"n":"9","sv":"100"}]}', "integer resource needs v, got vs", "record 0 field 'vs'"),
    (b'{"bn":"/3/0/","e":[{"n":"0","v":1}]}', "string resource needs vs", "record 0 field 'v'"),
    (b'{"bn":"/3/0/","e":[{"n":"22/0","sv":"4:0"}]}', "objlnk resource needs vlo", "record 0 field 'vs'"),
    (b'{"bn":"/0/0/","e":[{"n":"3","sv":"*"}]}', "not base64url text", "record 0 field 'sv'"),
    (b'{"bn":"/3/0/","e":[{"n":"9","v":1.5}]}', "not an integer", "record 0 field 'v'"),
    (b'{"bn":"/3/0/","e":[{"n":"x9","v":1}]}', "not a number", "record 0 field 'n'"),
    (b'{"bn":"/3/0/","e":[{"n":"9","v":1},{"n":"9","v":2}]}', "duplicate path", "record 1 field 'n'"),
    (b'{"bn":"/3/0/","e":[{"n":"9","v":1},7]}', "an entry is an object", "record 1"),
    (b'{"bn":"/3/0/","e":{"n":"9"}}', "needs an array 'e'", "field 'e'"),
    (b'[{"n":"/3/0/9","v":1}]', "is an object", None),
    (b'{"bn":"/3/0/","e":[{"n":"9","v":NaN}]}', "not a valid JSON number", None),
])
def test_bad_documents_are_refused_with_the_entry_and_field(body: bytes, match: str, where: str | None) -> None:
    with pytest.raises(CodecError, match=match) as exc:
        CODEC.decode_values(body, REG)
    assert exc.value.where == where


def test_invalid_utf8_and_deep_nesting_are_refused() -> None:
    with pytest.raises(CodecError, match="UTF-8"):
        CODEC.decode_values(b'{"bn":"/3/0/","e":[{"n":"0","sv":"\xc3"}]}', REG)
    with pytest.raises(CodecError, match="nested too deeply"):
        CODEC.decode_values(b'{"e":' + b"[" * 100_000 + b"]" * 100_000 + b"}", REG)


def test_too_many_entries_are_refused() -> None:
    body = json.dumps({"bn": "/3/0/9", "e": [{"v": 1, "t": i} for i in range(20_000)]}).encode()
    with pytest.raises(CodecError, match="too many entries"):
        CODEC.decode_timestamped(body, REG)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_only_codec_errors(data: bytes) -> None:
    only_codec_errors(CODEC, data)


@FUZZ
@given(doc=json_docs, bn=st.sampled_from(["/3/0/", "/", "/42000/0/", "x"]))
def test_arbitrary_json_structures_give_only_codec_errors(doc: object, bn: str) -> None:
    only_codec_errors(CODEC, json.dumps(doc).encode())
    only_codec_errors(CODEC, json.dumps({"bn": bn, "e": [doc]}).encode())
    only_codec_errors(CODEC, json.dumps({"bn": bn, "e": doc}).encode())


@settings(max_examples=100, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["n", "v", "sv", "bv", "ov", "t"]),
                           st.one_of(st.integers(), st.text(max_size=8), st.booleans()), max_size=4))
def test_arbitrary_entries_on_the_test_object_give_only_codec_errors(doc: dict) -> None:
    try:
        CODEC.decode(json.dumps({"bn": "/42000/0/", "e": [doc]}).encode(), Path.of(42000, 0), TEST_REG)
    except CodecError:
        pass


def as_lwm2m_json(senml: bytes) -> bytes:
    """The LwM2M 1.0 JSON document carrying the same values as a SenML JSON pack of ours."""
    import base64

    records = json.loads(senml)
    doc: dict = {"e": []}
    for r in records:
        if "bn" in r:
            doc["bn"] = r.pop("bn")
        if "vd" in r:  # LwM2M JSON carries opaque as standard base64 in sv
            raw = r.pop("vd")
            r["sv"] = base64.b64encode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))).decode()
        doc["e"].append({{"vs": "sv", "vb": "bv", "vlo": "ov"}.get(k, k): v for k, v in r.items()})
    return json.dumps(doc).encode()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=node_at_path())
def test_any_node_tree_decodes_from_its_lwm2m_json_form(case) -> None:  # type: ignore[no-untyped-def]
    node, path = case
    # LwM2M JSON has no opaque field: without a definition base64 text stays a string.
    assume(not (path.object_id == UNKNOWN_OBJECT and any(isinstance(v, bytes) for v in flatten(node, path).values())))
    doc = as_lwm2m_json(SENML_JSON.encode(node, path, TEST_REG))
    assert CODEC.decode(doc, path, TEST_REG) == node


@FUZZ
@given(case=node_at_path(), edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10_000))
def test_mutated_valid_documents_give_only_codec_errors(case, edits, cut: int) -> None:  # type: ignore[no-untyped-def]
    node, path = case
    data = _mutate(as_lwm2m_json(SENML_JSON.encode(node, path, TEST_REG)), edits)
    only_codec_errors(CODEC, data)
    only_codec_errors(CODEC, data[: cut % (len(data) + 1)])
