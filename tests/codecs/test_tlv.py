"""OMA TLV codec: the LwM2M 1.1 spec's byte-exact examples, record layout, value sizes, the
forms real clients send, refusals with byte offsets, round-trip and fuzz properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.codecs.tlv import (
    CODEC,
    MAX_RECORDS,
    Tlv,
    TlvType,
    decode_tlv_value,
    encode_tlv_value,
    read_tlv,
    write_tlv,
)
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

from .tlv_text_objects import ALL_TYPES_OBJECT, MULTIPLE_OFFSET, REGISTRY, SINGLE_ID, VALUES, edits, mutate

P = Path.parse
T = ResourceType


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# LwM2M 1.1 Core §7.4.3 examples (as Leshan's and Wakaama's test suites reproduce them).
DEVICE_RESOURCES = h("""
    C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
    C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
    C8 02 09 33 34 35 30 30 30 31 32 33
    C3 03 31 2E 30
    86 06 41 00 01 41 01 05
    88 07 08 42 00 0E D8 42 01 13 88
    87 08 41 00 7D 42 01 03 84
    C1 09 64
    C1 0A 0F
    83 0B 41 00 00
    C4 0D 51 82 42 8F
    C6 0E 2B 30 32 3A 30 30
    C1 10 55""")
DEVICE_WITH_INSTANCE = h("08 00 79") + DEVICE_RESOURCES
ACL = h("""08 00 0E C1 00 01 C1 01 00 83 02 41 7F 07 C1 03 7F
           08 02 12 C1 00 03 C1 01 00 87 02 41 7F 07 61 01 36 01 C1 03 7F""")
SERVER = h("08 00 0F C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55")
OBJ65 = h("""88 00 0C 44 00 00 42 00 00 44 01 00 42 00 01
             C8 01 0D 38 36 31 33 38 30 30 37 35 35 35 30 30
             C4 02 12 34 56 78""")
OBJ66 = h("""08 00 26 C8 00 0B 6D 79 53 65 72 76 69 63 65 20 31
             C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 34
             C4 02 00 43 00 00
             08 01 26 C8 00 0B 6D 79 53 65 72 76 69 63 65 20 32
             C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 35
             C4 02 FF FF FF FF""")

DEVICE = ObjectInstance.of(
    0,
    SingleResource(0, "Open Mobile Alliance", T.STRING),
    SingleResource(1, "Lightweight M2M Client", T.STRING),
    SingleResource(2, "345000123", T.STRING),
    SingleResource(3, "1.0", T.STRING),
    MultipleResource(6, {0: 1, 1: 5}, T.INTEGER),
    MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER),
    MultipleResource(8, {0: 125, 1: 900}, T.INTEGER),
    SingleResource(9, 100, T.INTEGER),
    SingleResource(10, 15, T.INTEGER),
    MultipleResource(11, {0: 0}, T.INTEGER),
    SingleResource(13, 0x5182428F, T.TIME),
    SingleResource(14, "+02:00", T.STRING),
    SingleResource(16, "U", T.STRING),
)


def acl_instance(iid: int, obj: int, acl: dict[int, int]) -> ObjectInstance:
    return ObjectInstance.of(iid, SingleResource(0, obj, T.INTEGER), SingleResource(1, 0, T.INTEGER),
                             MultipleResource(2, acl, T.INTEGER), SingleResource(3, 127, T.INTEGER))


ACL_NODE = LwM2mObject.of(2, acl_instance(0, 1, {127: 7}), acl_instance(2, 3, {127: 7, 310: 1}))
SERVER_NODE = LwM2mObject.of(1, ObjectInstance.of(
    0, SingleResource(0, 1, T.INTEGER), SingleResource(1, 86400, T.INTEGER),
    SingleResource(6, True, T.BOOLEAN), SingleResource(7, "U", T.STRING)))
OBJ65_NODE = ObjectInstance.of(
    0, MultipleResource(0, {0: ObjLnk(66, 0), 1: ObjLnk(66, 1)}, T.OBJLNK),
    SingleResource(1, "8613800755500", T.STRING), SingleResource(2, 0x12345678, T.INTEGER))
OBJ66_NODE = LwM2mObject.of(66, *(
    ObjectInstance.of(i, SingleResource(0, f"myService {i + 1}", T.STRING),
                      SingleResource(1, f"Internet.15.23{i + 4}", T.STRING),
                      SingleResource(2, link, T.OBJLNK))
    for i, link in ((0, ObjLnk(67, 0)), (1, ObjLnk(65535, 65535)))))

SPEC_EXAMPLES = [
    ("device instance, bare resources", "/3/0", DEVICE_RESOURCES, DEVICE),
    ("device object, one instance record", "/3", DEVICE_WITH_INSTANCE, LwM2mObject.of(3, DEVICE)),
    ("access control, two instances", "/2", ACL, ACL_NODE),
    ("server, one instance", "/1", SERVER, SERVER_NODE),
    ("object links in a multiple resource", "/65/0", OBJ65, OBJ65_NODE),
    ("object link resources, null link", "/66", OBJ66, OBJ66_NODE),
]


def decode(data: bytes, path: str):
    return CODEC.decode(data, P(path), REGISTRY)


def encode(node, path: str) -> bytes:
    return CODEC.encode(node, P(path), REGISTRY)


def test_registry_maps_both_tlv_content_formats_to_the_tlv_codec() -> None:
    assert codec_for(ContentFormat.TLV) is CODEC
    assert codec_for(ContentFormat.OLD_TLV) is CODEC


@pytest.mark.parametrize(("name", "path", "data", "node"), SPEC_EXAMPLES, ids=[e[0] for e in SPEC_EXAMPLES])
def test_spec_examples_decode_as_published(name: str, path: str, data: bytes, node) -> None:
    assert decode(data, path) == node


@pytest.mark.parametrize(("name", "path", "data", "node"), SPEC_EXAMPLES, ids=[e[0] for e in SPEC_EXAMPLES])
def test_spec_examples_encode_byte_for_byte(name: str, path: str, data: bytes, node) -> None:
    assert encode(node, path) == data


def test_device_example_values_are_typed_by_the_object_definition() -> None:
    node = decode(DEVICE_RESOURCES, "/3/0")
    assert node.resources[0].value == "Open Mobile Alliance"
    assert dict(node.resources[7].instances) == {0: 3800, 1: 5000}
    assert node.resources[13].type is T.TIME and node.resources[13].value == 1367491215
    assert node.resources[16].value == "U"


def test_instance_path_accepts_the_wrapped_form_too() -> None:
    assert decode(DEVICE_WITH_INSTANCE, "/3/0") == DEVICE


def test_wrapped_instance_with_another_id_is_refused() -> None:
    with pytest.raises(CodecError) as e:
        decode(DEVICE_WITH_INSTANCE, "/3/1")
    assert e.value.where == "offset 0"


def test_single_instance_object_accepts_bare_resources_as_instance_0() -> None:
    assert decode(DEVICE_RESOURCES, "/3") == LwM2mObject.of(3, DEVICE)


def test_multiple_instance_object_refuses_bare_resources() -> None:
    with pytest.raises(CodecError) as e:
        decode(h("C1 00 01"), "/2")
    assert "object-instance records" in e.value.message


def test_empty_payload_is_an_empty_object_or_instance() -> None:
    assert decode(b"", "/2") == LwM2mObject(2)
    assert decode(b"", "/2/0") == ObjectInstance(0)


@pytest.mark.parametrize("data", [
    h("88 07 08 42 00 0E D8 42 01 13 88"),                 # multiple-resource record
    h("42 00 0E D8 42 01 13 88"),                          # bare resource instances
    h("08 00 0B 88 07 08 42 00 0E D8 42 01 13 88"),        # wrapped in the object instance
])
def test_multiple_resource_path_accepts_every_form_clients_send(data: bytes) -> None:
    assert decode(data, "/3/0/7") == MultipleResource(7, {0: 3800, 1: 5000}, T.INTEGER)


@pytest.mark.parametrize("data", [
    h("42 01 13 88"),
    h("84 07 42 01 13 88"),
    h("08 00 06 84 07 42 01 13 88"),
])
def test_resource_instance_path_accepts_wrapped_and_bare_forms(data: bytes) -> None:
    assert decode(data, "/3/0/7/1") == ResourceInstance(1, 5000, T.INTEGER)


def test_single_resource_decodes_and_encodes_as_one_resource_record() -> None:
    assert decode(h("C1 09 64"), "/3/0/9") == SingleResource(9, 100, T.INTEGER)
    assert decode(h("08 00 03 C1 09 64"), "/3/0/9") == SingleResource(9, 100, T.INTEGER)
    assert encode(SingleResource(9, 100, T.INTEGER), "/3/0/9") == h("C1 09 64")
    assert encode(ResourceInstance(1, 5000, T.INTEGER), "/3/0/7/1") == h("42 01 13 88")


def test_unknown_resources_decode_as_opaque_bytes() -> None:
    node = decode(h("C2 05 01 02 83 06 41 00 07"), "/30000/0")
    assert node == ObjectInstance.of(0, SingleResource(5, b"\x01\x02", T.OPAQUE),
                                     MultipleResource(6, {0: b"\x07"}, T.OPAQUE))


def test_create_payload_without_instance_id_is_bare_resources() -> None:
    inst = ObjectInstance.of(None, SingleResource(0, 1, T.INTEGER))
    assert encode(inst, "/2") == h("C1 00 01")
    assert encode(ObjectInstance.of(4, SingleResource(0, 1, T.INTEGER)), "/2") == h("03 04 C1 00 01")


# --- raw records -----------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "header"), [
    (0, "C0 01"), (7, "C7 01"), (8, "C8 01 08"), (255, "C8 01 FF"),
    (256, "D0 01 01 00"), (65535, "D0 01 FF FF"), (65536, "D8 01 01 00 00"),
])
def test_length_uses_the_smallest_field(size: int, header: str) -> None:
    data = write_tlv([Tlv(TlvType.RESOURCE_VALUE, 1, b"\xaa" * size)])
    assert data == h(header) + b"\xaa" * size
    assert read_tlv(data) == [Tlv(TlvType.RESOURCE_VALUE, 1, b"\xaa" * size)]


def test_ids_above_255_take_16_bits() -> None:
    data = write_tlv([Tlv(TlvType.RESOURCE_INSTANCE, 310, b"\x01")])
    assert data == h("61 01 36 01")
    assert read_tlv(h("E1 FF FF 05"))[0].id == 65535


def test_reader_accepts_a_longer_length_field_than_needed() -> None:
    [rec] = read_tlv(h("C8 09 01 64"))
    assert (rec.id, rec.value, rec.value_offset) == (9, b"\x64", 3)


def test_record_offsets_point_into_the_buffer() -> None:
    recs = read_tlv(ACL)
    assert [r.offset for r in recs] == [0, 17]
    assert [c.offset for c in recs[1].children] == [20, 23, 26, 35]


def test_a_24_bit_length_carries_a_large_opaque_value() -> None:
    blob = bytes(range(256)) * 300
    node = SingleResource(0, blob, T.OPAQUE)
    data = encode(node, "/5/0/0")
    assert data[:5] == h("D8 00") + len(blob).to_bytes(3, "big")
    assert decode(data, "/5/0/0") == node


# --- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "rtype", "wire"), [
    (0, T.INTEGER, "00"), (127, T.INTEGER, "7F"), (-128, T.INTEGER, "80"), (128, T.INTEGER, "00 80"),
    (-129, T.INTEGER, "FF 7F"), (32768, T.INTEGER, "00 00 80 00"), (2**31, T.INTEGER, "00 00 00 00 80 00 00 00"),
    (-(2**63), T.INTEGER, "80 00 00 00 00 00 00 00"), (255, T.UNSIGNED_INTEGER, "FF"),
    (256, T.UNSIGNED_INTEGER, "01 00"), (2**32 - 1, T.UNSIGNED_INTEGER, "FF FF FF FF"),
    (2**64 - 1, T.UNSIGNED_INTEGER, "FF FF FF FF FF FF FF FF"), (0x5182428F, T.TIME, "51 82 42 8F"),
    (0.5, T.FLOAT, "3F 00 00 00"), (-2.25, T.FLOAT, "C0 10 00 00"),
    (0.1, T.FLOAT, "3F B9 99 99 99 99 99 9A"), (1e300, T.FLOAT, "7E 37 E4 3C 88 00 75 9C"),
    (True, T.BOOLEAN, "01"), (False, T.BOOLEAN, "00"), (ObjLnk(66, 1), T.OBJLNK, "00 42 00 01"),
    ("\u00e9", T.STRING, "C3 A9"), (b"\x00\x01", T.OPAQUE, "00 01"), (None, T.NONE, ""),
])
def test_values_take_their_spec_sizes(value, rtype: ResourceType, wire: str) -> None:
    assert encode_tlv_value(value, rtype) == h(wire)
    assert decode_tlv_value(h(wire), rtype) == value


@pytest.mark.parametrize(("data", "path", "fragment", "offset"), [
    (h("C3 09 00 00 01"), "/3/0/9", "1, 2, 4 or 8 bytes, got 3", 2),
    (h("C5 07 3F 00 00 00 00"), "/33100/0/7", "4 or 8 bytes, got 5", 2),
    (h("C2 06 00 01"), "/1/0/6", "one byte 0 or 1", 2),
    (h("C1 06 02"), "/1/0/6", "one byte 0 or 1", 2),
    (h("C3 0A 00 03 00"), "/1/0/10", "4 bytes, got 3", 2),
    (h("C0 09"), "/3/0/9", "got 0", 2),
    (h("C3 00 41 FF 42"), "/3/0/0", "UTF-8", 3),
    (h("86 06 41 00 01 C1 01 05"), "/3/0/6", "cannot sit inside", 5),
])
def test_wrong_value_sizes_and_bad_strings_name_the_offset(data: bytes, path: str, fragment: str,
                                                           offset: int) -> None:
    with pytest.raises(CodecError) as e:
        decode(data, path)
    assert fragment in e.value.message
    assert e.value.where == f"offset {offset}"


def test_integer_type_mismatch_between_definition_and_record_is_refused() -> None:
    with pytest.raises(CodecError, match="multiple resource"):
        decode(h("C1 07 01"), "/3/0")
    with pytest.raises(CodecError, match="single resource"):
        decode(h("83 09 41 00 01"), "/3/0")


# --- malformed structure ---------------------------------------------------------------------

@pytest.mark.parametrize("cut", range(1, len(DEVICE_WITH_INSTANCE)))
def test_every_truncation_of_a_wrapped_payload_is_refused(cut: int) -> None:
    with pytest.raises(CodecError) as e:
        decode(DEVICE_WITH_INSTANCE[:cut], "/3/0")
    assert e.value.where.startswith("offset ")


@pytest.mark.parametrize(("data", "offset"), [
    (h("C8 00 14 41"), 0),                 # length past the end
    (h("C1 09 64 C8 00"), 3),              # header cut short
    (h("E1 09"), 0),                       # 16-bit id cut short
    (h("D8 00 FF FF FF 00"), 0),           # 24-bit length of 16 MiB, 1 byte there
    (h("08 00 04 C3 01 41 42"), 3),        # child runs past its container
])
def test_lengths_past_the_buffer_name_the_record_offset(data: bytes, offset: int) -> None:
    with pytest.raises(CodecError) as e:
        read_tlv(data)
    assert e.value.where == f"offset {offset}"


def test_deep_nesting_is_refused_at_the_first_record_too_deep() -> None:
    data = h("C1 00 01")
    for _ in range(60):
        data = bytes([0x08, 0, len(data)]) + data
    with pytest.raises(CodecError, match="cannot sit inside") as e:
        read_tlv(data)
    assert e.value.where == "offset 3"


@pytest.mark.parametrize(("data", "fragment"), [
    (h("08 00 03 08 01 00"), "object instance record cannot sit inside"),
    (h("85 01 83 02 41 00 01"), "multiple resource record cannot sit inside"),
    (h("88 01 03 C1 00 01"), "resource record cannot sit inside"),
])
def test_records_nest_only_as_tlv_allows(data: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        read_tlv(data)


def test_more_records_than_the_bound_are_refused() -> None:
    data = h("C0 01") * (MAX_RECORDS + 1)
    with pytest.raises(CodecError, match=f"more than {MAX_RECORDS}") as e:
        read_tlv(data)
    assert e.value.where == f"offset {2 * MAX_RECORDS}"


@pytest.mark.parametrize(("data", "path", "fragment"), [
    (h("C1 09 01 C1 09 02"), "/3/0", "duplicate"),
    (h("86 06 41 00 01 41 00 02"), "/3/0", "duplicate"),
    (h("08 00 00 08 00 00"), "/2", "duplicate"),
    (h("28 FF FF 00"), "/2", "65535 is reserved"),
    (h("C1 0A 01"), "/3/0/9", "does not match"),
    (h("42 02 13 88"), "/3/0/7/1", "does not match"),
    (h("08 00 03 C1 00 01"), "/3/0/7/1", "one resource-instance record"),
    (h("C1 09 01 C1 0A 01"), "/3/0/9", "one resource record"),
    (h("C1 09 01"), "/", "root"),
    (h("08 00 00"), "/3/0/9", "one resource record"),
])
def test_inconsistent_records_are_refused(data: bytes, path: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode(data, path)


@pytest.mark.parametrize(("node", "path"), [
    (SingleResource(9, 1, T.INTEGER), "/3/0"),
    (SingleResource(9, 1, T.INTEGER), "/3/0/10"),
    (ObjectInstance(1), "/3/0"),
    (LwM2mObject(3), "/4"),
    (ResourceInstance(0, 1, T.INTEGER), "/3/0/7"),
    (LwM2mObject(3), "/"),
])
def test_encode_refuses_a_node_that_does_not_sit_at_the_path(node, path: str) -> None:
    with pytest.raises(CodecError):
        encode(node, path)


def test_encode_refuses_values_over_16_mib() -> None:
    with pytest.raises(CodecError, match="at most"):
        write_tlv([Tlv(TlvType.RESOURCE_VALUE, 0, bytes(1 << 24))])


# --- properties ------------------------------------------------------------------------------

RESOURCE_TYPES = list(SINGLE_ID)


@st.composite
def resources(draw, rtype: ResourceType, multiple: bool):
    if multiple:
        inst = draw(st.dictionaries(st.integers(0, 65535), VALUES[rtype], max_size=3))
        return MultipleResource(SINGLE_ID[rtype] + MULTIPLE_OFFSET, inst, rtype)
    return SingleResource(SINGLE_ID[rtype], draw(VALUES[rtype]), rtype)


@st.composite
def instances(draw, iid=st.integers(0, 65534)):
    chosen = draw(st.lists(st.tuples(st.sampled_from(RESOURCE_TYPES), st.booleans()), unique=True, max_size=6))
    return ObjectInstance.of(draw(iid), *(draw(resources(t, m)) for t, m in chosen))


@st.composite
def nodes_at_paths(draw):
    level = draw(st.integers(1, 4))
    o = ALL_TYPES_OBJECT
    if level == 1:
        insts = draw(st.lists(instances(), max_size=3, unique_by=lambda i: i.id))
        return Path.of(o), LwM2mObject.of(o, *insts)
    if level == 2:
        inst = draw(instances())
        return Path.of(o, inst.id), inst
    rtype = draw(st.sampled_from(RESOURCE_TYPES))
    if level == 3:
        res = draw(resources(rtype, draw(st.booleans())))
        return Path.of(o, 0, res.id), res
    ri = draw(st.integers(0, 65535))
    return (Path.of(o, 0, SINGLE_ID[rtype] + MULTIPLE_OFFSET, ri),
            ResourceInstance(ri, draw(VALUES[rtype]), rtype))


@settings(max_examples=300, deadline=None)
@given(nodes_at_paths())
def test_any_node_tree_round_trips(case) -> None:
    path, node = case
    assert CODEC.decode(CODEC.encode(node, path, REGISTRY), path, REGISTRY) == node


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.builds(Tlv, st.sampled_from([TlvType.RESOURCE_VALUE]), st.integers(0, 65535), st.binary(max_size=300)),
    st.builds(lambda i, kids: Tlv(TlvType.MULTIPLE_RESOURCE, i, children=tuple(kids)), st.integers(0, 65535),
              st.lists(st.builds(Tlv, st.just(TlvType.RESOURCE_INSTANCE), st.integers(0, 65535),
                                 st.binary(max_size=20)), max_size=3))), max_size=4))
def test_any_record_list_round_trips_through_the_raw_layer(records) -> None:
    assert read_tlv(write_tlv(records)) == records


FUZZ_PATHS = [P("/3"), P("/3/0"), P("/3/0/7"), P("/3/0/7/1"), P("/2"), P("/1/0/6"), P("/65/0"),
              P("/66"), P("/30000/0"), P("/33100/0/7"), Path.of(ALL_TYPES_OBJECT, 0)]


def _check_only_codec_error(data: bytes, path: Path) -> None:
    try:
        CODEC.decode(data, path, REGISTRY)
    except CodecError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.sampled_from(FUZZ_PATHS))
def test_fuzzed_bytes_raise_only_codec_error(data: bytes, path: Path) -> None:
    _check_only_codec_error(data, path)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([e[2] for e in SPEC_EXAMPLES]), st.sampled_from(FUZZ_PATHS),
       edits(st.integers(0, 255)))
def test_mutated_spec_payloads_raise_only_codec_error(base: bytes, path: Path, changes) -> None:
    _check_only_codec_error(bytes(mutate(base, changes)), path)


def test_encode_refuses_a_string_that_is_not_valid_unicode() -> None:
    with pytest.raises(CodecError, match="UTF-8"):
        encode(SingleResource(0, "\ud800", T.STRING), "/3/0/0")


def test_corelnk_resource_in_tlv_carries_a_link_format_string() -> None:
    # Leshan's object 3442 vector: one instance holding a registration-like link list.
    from lwm2m_server.codecs.link_format import parse_registration

    data = h("""08 00 72 C8 B4 6F 3C 2F 3E 3B 72 74 3D 22 6F 6D 61 2E 6C 77 6D 32 6D 22 3B 63 74 3D 22 36
                30 20 31 31 30 20 31 31 32 20 31 35 34 32 20 31 35 34 33 20 31 31 35 34 32 20 31 31 35 34
                33 22 2C 3C 2F 31 3E 3B 76 65 72 3D 31 2E 31 2C 3C 2F 31 2F 30 3E 2C 3C 2F 32 3E 2C 3C 2F
                33 3E 3B 76 65 72 3D 31 2E 31 2C 3C 2F 33 2F 30 3E 2C 3C 2F 33 34 34 32 2F 30 3E""")
    node = decode(data, "/3442/0")
    res = node.resources[180]
    assert res.type is T.CORELNK
    reg = parse_registration(res.value)
    assert reg.content_formats == (60, 110, 112, 1542, 1543, 11542, 11543)
    assert reg.objects == (P("/1"), P("/2"), P("/3"), P("/3442"))
    assert reg.versions == {1: "1.1", 3: "1.1"}
    assert encode(node, "/3442") == data
