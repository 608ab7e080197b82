"""SenML CBOR (112): the LwM2M 1.1 Core spec's examples byte for byte, and every kind of bad input."""

from __future__ import annotations

import cbor2
import pytest

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.senml import MAX_RECORDS
from lwm2m_server.codecs.senml_cbor import CODEC
from lwm2m_server.codecs.senml_json import CODEC as JSON_CODEC
from lwm2m_server.model import MultipleResource, ObjLnk, Path, ResourceType, SingleResource, default_registry

REG = default_registry()
P = Path.parse
H = bytes.fromhex

# LwM2M 1.1 Core Table 7.4.4-2 in CBOR (Leshan's AbstractSenMLTest, Wakaama's senml_cbor_test_1).
DEVICE_3_0 = H(
    "90a321652f332f302f00613003744f70656e204d6f62696c6520416c6c69616e6365a200613103764c696768747765696768"
    "74204d324d20436c69656e74a20061320369333435303030313233a20061330363312e30a20063362f300201a20063362f310205a20063372f"
    "3002190ed8a20063372f3102191388a20063382f3002187da20063382f3102190384a2006139021864a200623130020fa2006431312f300200"
    "a200623133021a5182428fa20062313403662b30323a3030a200623136036155")

# Table 7.4.4-3: [{-2: "/72/", -3: 25462634, 0: "1/2", 2: 22.4, 6: -5}, {0: "1/2", 2: 22.9, 6: -30}, ...]
TIMESTAMPED_72 = H(
    "83a521642f37322f221a0184876a0063312f3202fb40366666666666660624"
    "a30063312f3202fb4036e6666666666606381d"
    "a30063312f3202fb40381999999999 9a063831".replace(" ", ""))

# Table 7.4.4-5: [{-2: "/3/0/0", 3: "Open Mobile Alliance"}]
SINGLE_3_0_0 = H("81a221662f332f302f3003744f70656e204d6f62696c6520416c6c69616e6365")
# Table 7.4.4-6: [{0: "/3/0/0"}, {0: "/3/0/9"}, {0: "/1/0/1"}]
COMPOSITE_PATHS = H("83a100662f332f302f30a100662f332f302f39a100662f312f302f31")
# Table 7.4.4-7: [{0: "/3/0/0", 3: "Open Mobile Alliance"}, {0: "/3/0/9", 2: 95}, {0: "/1/0/1", 2: 86400}]
COMPOSITE_VALUES = H(
    "83a200662f332f302f3003744f70656e204d6f62696c6520416c6c69616e6365"
    "a200662f332f302f3902185fa200662f312f302f31021a00015180")
# Table 7.4.4-8: Write-Composite of objects 3311 and 3308.
WRITE_COMPOSITE = H(
    "84a2006c2f333331312f302f3538353004f4a2006c2f333331312f312f3538353004f4"
    "a2006c2f333331312f322f35383531021" "4a2006c2f333330382f302f353930300212")
# Leshan senml_cbor_encode_timestamped_nodes: bt as a tag-4 decimal fraction on every record.
LESHAN_TIMESTAMPED = H(
    "83a321662f302f302f3022c482001a1dcd6504036c53616d706c65537472696e67a321662f302f302f3122c482001a1dcd650504f4"
    "a321662f302f302f3222c482001a1dcd6506021901c8")


def test_registry_returns_this_codec_for_112() -> None:
    assert codec_for(ContentFormat.SENML_CBOR) is CODEC


def test_spec_device_instance_decodes_like_the_json_example() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    assert node.resources[7] == MultipleResource(7, {0: 3800, 1: 5000}, ResourceType.INTEGER)  # type: ignore[union-attr]
    assert node.resources[13] == SingleResource(13, 1367491215, ResourceType.TIME)  # type: ignore[union-attr]
    json_node = JSON_CODEC.decode(JSON_CODEC.encode(node, P("/3/0"), REG), P("/3/0"), REG)
    assert node == json_node


def test_spec_device_instance_encodes_byte_exact() -> None:
    node = CODEC.decode(DEVICE_3_0, P("/3/0"), REG)
    assert CODEC.encode(node, P("/3/0"), REG) == DEVICE_3_0


def test_spec_timestamped_values_resolve_base_time() -> None:
    assert CODEC.decode_timestamped(TIMESTAMPED_72, REG) == [
        (25462629, {P("/72/1/2"): 22.4}), (25462604, {P("/72/1/2"): 22.9}), (25462584, {P("/72/1/2"): 24.1})]


def test_timestamps_as_decimal_fractions_decode() -> None:
    assert CODEC.decode_timestamped(LESHAN_TIMESTAMPED, REG) == [
        (500000004, {P("/0/0/0"): "SampleString"}),
        (500000005, {P("/0/0/1"): False}),
        (500000006, {P("/0/0/2"): 456}),
    ]


def test_spec_single_resource_decodes_and_encodes_byte_exact() -> None:
    node = CODEC.decode(SINGLE_3_0_0, P("/3/0/0"), REG)
    assert node == SingleResource(0, "Open Mobile Alliance", ResourceType.STRING)
    assert CODEC.encode(node, P("/3/0/0"), REG) == SINGLE_3_0_0


def test_spec_composite_paths_decode_and_encode_byte_exact() -> None:
    paths = CODEC.decode_paths(COMPOSITE_PATHS)
    assert paths == [P("/3/0/0"), P("/3/0/9"), P("/1/0/1")]
    assert CODEC.encode_paths(paths) == COMPOSITE_PATHS


def test_spec_read_composite_response_decodes_and_encodes_byte_exact() -> None:
    values = CODEC.decode_values(COMPOSITE_VALUES, REG)
    assert values == {P("/3/0/0"): "Open Mobile Alliance", P("/3/0/9"): 95, P("/1/0/1"): 86400}
    assert CODEC.encode_values(values, REG) == COMPOSITE_VALUES


def test_spec_write_composite_decodes_and_encodes_byte_exact() -> None:
    values = CODEC.decode_values(WRITE_COMPOSITE, REG)
    assert values == {P("/3311/0/5850"): False, P("/3311/1/5850"): False,
                      P("/3311/2/5851"): 20, P("/3308/0/5900"): 18}
    assert CODEC.encode_values(values, REG) == WRITE_COMPOSITE


def test_spec_root_read_with_object_links_uses_the_vlo_text_label() -> None:
    pack = [{-2: "/", 0: "65/0/0/0", "vlo": "66:0"}, {0: "65/0/0/1", "vlo": "66:1"},
            {0: "65/0/1", 3: "8613800755500"}, {0: "65/0/2", 2: 1}]
    values = CODEC.decode_values(cbor2.dumps(pack), REG)
    assert values == {P("/65/0/0/0"): ObjLnk(66, 0), P("/65/0/0/1"): ObjLnk(66, 1),
                      P("/65/0/1"): "8613800755500", P("/65/0/2"): 1}
    assert CODEC.encode_values(values, REG, base=Path()) == cbor2.dumps(pack)


def test_opaque_is_a_byte_string() -> None:
    node = SingleResource(3, H("abcdef"), ResourceType.OPAQUE)
    assert CODEC.encode(node, P("/0/0/3"), REG) == H("81a221662f302f302f330843abcdef")
    assert CODEC.decode(H("81a221662f302f302f330843abcdef"), P("/0/0/3"), REG) == node


def test_half_floats_and_text_labels_are_accepted() -> None:
    body = cbor2.dumps([{"bn": "/33100/0/7", "v": 1.5}])
    assert CODEC.decode_values(body, REG) == {P("/33100/0/7"): 1.5}
    half = H("81a2216a2f33333130302f302f3702f93e00")  # 2: half float 1.5
    assert CODEC.decode_values(half, REG) == {P("/33100/0/7"): 1.5}


def test_large_integers_stay_exact() -> None:
    node = SingleResource(9, -(2**63), ResourceType.INTEGER)
    data = CODEC.encode(node, P("/3/0/9"), REG)
    assert CODEC.decode(data, P("/3/0/9"), REG) == node


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("pack", "match", "where"), [
    ([{-2: "/3/0/9", 3: "100"}], "integer resource needs v, got vs", "record 0 field 'vs'"),
    ([{-2: "/3/0/0", 2: 1}], "string resource needs vs", "record 0 field 'v'"),
    ([{-2: "/0/0/3", 3: "abc"}], "opaque resource needs vd", "record 0 field 'vs'"),
    ([{-2: "/0/0/3", 8: "abc"}], "vd must be a byte string", "record 0 field 'vd'"),
    ([{-2: "/33100/0/7", 2: float("nan")}], "finite", "record 0 field 'v'"),
    ([{-2: "/33100/0/7", 2: float("inf")}], "finite", "record 0 field 'v'"),
    ([{-2: "/3/0/9", 2: 1, 3: "x"}], "one value", "record 0"),
    ([{-2: "/3/0/9", 2: 1}, [1]], "a record is a map", "record 1"),
    ([{-2: "/3/0/9", 2: 1, -2: "/3/0/10"}], None, None),  # collapsed by cbor2.dumps: fine
    ([{-2: "/3/0/9", "bn": "/3/0/10", 2: 1}], "given twice", "record 0 field 'bn'"),
    ([{-2: "/3/0/9", 2.5: 1, 2: 1}], "invalid label", "record 0"),
    ([{-2: 5, 2: 1}], "bn must be a text string", "record 0 field 'bn'"),
    ([{-1: 11, 0: "/3/0/9", 2: 1}], "unsupported SenML version", "record 0 field 'bver'"),
    ([{-2: "/3/0/9", 2: 2**64}], "does not fit", "record 0 field 'v'"),
])
def test_wrongly_typed_records_are_refused_with_the_record_and_field(pack: list, match: str | None,
                                                                      where: str | None) -> None:
    if match is None:
        CODEC.decode_values(cbor2.dumps(pack), REG)
        return
    with pytest.raises(CodecError, match=match) as exc:
        CODEC.decode_values(cbor2.dumps(pack), REG)
    assert exc.value.where == where


@pytest.mark.parametrize("name", ["3/0/9", "/3/0/x", "/3/0/9/", "/3/0", "/3/0/9/0/1", "/99999/0/0"])
def test_base_names_that_make_invalid_paths_are_refused(name: str) -> None:
    with pytest.raises(CodecError) as exc:
        CODEC.decode_values(cbor2.dumps([{-2: name, 2: 1}]), REG)
    assert exc.value.where == "record 0 field 'n'"


def test_duplicate_paths_are_refused() -> None:
    with pytest.raises(CodecError, match="duplicate path /3/0/9"):
        CODEC.decode_values(cbor2.dumps([{0: "/3/0/9", 2: 1}, {0: "/3/0/9", 2: 2}]), REG)


def test_invalid_utf8_text_is_refused() -> None:
    with pytest.raises(CodecError, match="invalid CBOR"):
        CODEC.decode_values(H("81a100622f") + b"\xff", REG)


def test_trailing_bytes_after_the_pack_are_refused() -> None:
    with pytest.raises(CodecError, match="1 bytes after the CBOR data item") as exc:
        CODEC.decode_values(COMPOSITE_VALUES + b"\x00", REG)
    assert exc.value.where == f"offset {len(COMPOSITE_VALUES)}"


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(CodecError, match="nest"):
        CODEC.decode_values(b"\x81" * 100_000 + b"\x01", REG)


def test_too_many_records_are_refused() -> None:
    with pytest.raises(CodecError, match="too many records"):
        CODEC.decode_values(cbor2.dumps([{0: "/3/0/9", 2: 1}] * (MAX_RECORDS + 1)), REG)


@pytest.mark.parametrize("body", [b"\xa0", b"\x9f", b"\x5b\x00\xff\xff\xff\xff\xff\xff\xff", b"\x1c",
                                  b"\xff", b"\x81\xa1"])
def test_truncated_or_malformed_cbor_is_refused(body: bytes) -> None:
    with pytest.raises(CodecError):
        CODEC.decode_values(body, REG)


@pytest.mark.parametrize(("tail", "value"), [("0200", 0), ("02187f", 127), ("02387f", -128)])
def test_zephyr_client_records_with_base_name_and_relative_name_decode(tail: str, value: int) -> None:
    # What Zephyr's SenML CBOR writer sends for an integer resource of its test object 65535:
    # [{-2: "/65535/0/", 0: "0", 2: value}]
    data = H("81a321692f36353533352f302f00613" "0" + tail)
    assert CODEC.decode_values(data, REG) == {P("/65535/0/0"): value}
    assert CODEC.decode(data, P("/65535/0"), REG).resources[0].value == value  # type: ignore[union-attr]
