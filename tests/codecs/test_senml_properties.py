"""Property tests for the multi-path codecs: any valid node tree or {path: value} map round-trips;
arbitrary bytes, mutated valid payloads and arbitrary JSON/CBOR structures give only CodecError.

The strategies here are shared with the LwM2M CBOR tests (``test_lwm2m_cbor.py``).
"""

from __future__ import annotations

import json
import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError
from lwm2m_server.codecs.lwm2m_cbor import CODEC as LWM2M_CBOR
from lwm2m_server.codecs.senml_cbor import CODEC as SENML_CBOR
from lwm2m_server.codecs.senml_json import CODEC as SENML_JSON
from lwm2m_server.model import (
    LwM2mObject,
    MultipleResource,
    Node,
    ObjectDef,
    ObjectInstance,
    ObjectRegistry,
    ObjLnk,
    Operations,
    Path,
    ResourceDef,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
    default_registry,
)

# A test object with one single and one multiple resource of every valued type:
# resource 2k is single, 2k+1 multiple, for the k-th type below.
TEST_OBJECT = 42000
UNKNOWN_OBJECT = 42001
TYPES = [t for t in ResourceType if t is not ResourceType.NONE]
# What an unknown resource's value kind implies, so these survive without a definition.
UNKNOWN_TYPES = [ResourceType.STRING, ResourceType.INTEGER, ResourceType.FLOAT, ResourceType.BOOLEAN,
                 ResourceType.OPAQUE, ResourceType.OBJLNK]


def make_registry() -> ObjectRegistry:
    resources = {}
    for k, t in enumerate(TYPES):
        for multiple in (False, True):
            rid = 2 * k + int(multiple)
            resources[rid] = ResourceDef(rid, f"r{rid}", Operations.parse("RW"), multiple, False, t)
    obj = ObjectDef(TEST_OBJECT, "Every type", f"urn:oma:lwm2m:x:{TEST_OBJECT}", "1.0", "1.1", True, False,
                    resources)
    return ObjectRegistry([*default_registry(), obj])


REG = make_registry()

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def values_of(t: ResourceType) -> st.SearchStrategy[Value]:
    if t in (ResourceType.STRING, ResourceType.CORELNK):
        return _text
    if t in (ResourceType.INTEGER, ResourceType.TIME):
        return st.integers(-(2**63), 2**63 - 1)
    if t is ResourceType.UNSIGNED_INTEGER:
        return st.integers(0, 2**64 - 1)
    if t is ResourceType.FLOAT:
        return st.floats(allow_nan=False, allow_infinity=False)
    if t is ResourceType.BOOLEAN:
        return st.booleans()
    if t is ResourceType.OPAQUE:
        return st.binary(max_size=20)
    if t is ResourceType.OBJLNK:
        return st.builds(ObjLnk, st.integers(0, 65535), st.integers(0, 65535))
    raise AssertionError(t)


ids = st.integers(0, 65534)


@st.composite
def known_resource(draw: st.DrawFn) -> SingleResource | MultipleResource:
    k = draw(st.integers(0, len(TYPES) - 1))
    t = TYPES[k]
    if draw(st.booleans()):
        return MultipleResource(2 * k + 1, draw(st.dictionaries(ids, values_of(t), min_size=1, max_size=3)), t)
    return SingleResource(2 * k, draw(values_of(t)), t)


@st.composite
def unknown_resource(draw: st.DrawFn) -> SingleResource | MultipleResource:
    t = draw(st.sampled_from(UNKNOWN_TYPES))
    rid = draw(ids)
    if draw(st.booleans()):
        return MultipleResource(rid, draw(st.dictionaries(ids, values_of(t), min_size=1, max_size=3)), t)
    return SingleResource(rid, draw(values_of(t)), t)


def instances(resource: st.SearchStrategy) -> st.SearchStrategy[ObjectInstance]:
    return st.builds(
        lambda i, rs: ObjectInstance(i, {r.id: r for r in rs}),
        ids, st.lists(resource, min_size=1, max_size=5, unique_by=lambda r: r.id))


@st.composite
def node_at_path(draw: st.DrawFn) -> tuple[Node, Path]:
    """A non-empty node of any level, in the test object or an unknown one, with its path."""
    known = draw(st.booleans())
    oid = TEST_OBJECT if known else UNKNOWN_OBJECT
    resource = known_resource() if known else unknown_resource()
    level = draw(st.sampled_from(["object", "instance", "resource", "resource instance"]))
    if level == "object":
        insts = draw(st.lists(instances(resource), min_size=1, max_size=3, unique_by=lambda i: i.id))
        return LwM2mObject(oid, {i.id: i for i in insts}), Path.of(oid)
    iid = draw(ids)
    if level == "instance":
        inst = draw(instances(resource))
        return ObjectInstance(iid, inst.resources), Path.of(oid, iid)
    res = draw(resource)
    if level == "resource":
        return res, Path.of(oid, iid, res.id)
    if isinstance(res, MultipleResource):
        ri, v = next(iter(res.instances.items()))
        return ResourceInstance(ri, v, res.type), Path.of(oid, iid, res.id, ri)
    return res, Path.of(oid, iid, res.id)


@st.composite
def composite_values(draw: st.DrawFn) -> dict[Path, Value]:
    """A {path: value} map over resources and resource instances of several objects."""
    out: dict[Path, Value] = {}
    for _ in range(draw(st.integers(1, 4))):
        node, path = draw(node_at_path())
        from lwm2m_server.model import flatten

        for p, v in flatten(node, path).items():
            # A resource is either single or multiple: keep the map free of /o/i/r next to /o/i/r/ri.
            if not any(p.starts_with(q) or q.starts_with(p) for q in out):
                out[p] = v
    return out


MULTI_CODECS = [SENML_JSON, SENML_CBOR]
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FAST
@given(case=node_at_path())
def test_any_node_tree_round_trips(codec, case: tuple[Node, Path]) -> None:  # type: ignore[no-untyped-def]
    node, path = case
    assert codec.decode(codec.encode(node, path, REG), path, REG) == node


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FAST
@given(values=composite_values())
def test_any_composite_value_map_round_trips(codec, values: dict[Path, Value]) -> None:  # type: ignore[no-untyped-def]
    decoded = codec.decode_values(codec.encode_values(values, REG), REG)
    assert decoded == values and list(decoded) == list(values)


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FAST
@given(values=composite_values(), base_time=st.integers(0, 2**37),
       offsets=st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True))
def test_timestamped_groups_round_trip(codec, values: dict[Path, Value], base_time: int,  # type: ignore[no-untyped-def]
                                       offsets: list[int]) -> None:
    groups = [(base_time + off, values) for off in offsets]
    assert codec.decode_timestamped(codec.encode_timestamped(groups, REG), REG) == groups


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FAST
@given(paths=st.lists(st.lists(ids, max_size=4).map(lambda xs: Path(tuple(xs))), max_size=6))
def test_any_path_list_round_trips(codec, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    assert codec.decode_paths(codec.encode_paths(paths)) == paths


# --- fuzz: only CodecError escapes ------------------------------------------------------------

def only_codec_errors(codec, data: bytes) -> None:  # type: ignore[no-untyped-def]
    """Run every decoder entry point; anything but success or CodecError fails the test."""
    for call in (lambda: codec.decode_values(data, REG),
                 lambda: codec.decode_timestamped(data, REG),
                 lambda: codec.decode_paths(data),
                 lambda: codec.decode(data, Path.of(3, 0), REG),
                 lambda: codec.decode(data, Path.of(TEST_OBJECT), REG)):
        try:
            call()
        except CodecError:
            pass


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, byte in edits:
        if not buf:
            break
        buf[pos % len(buf)] = byte
    return bytes(buf)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text)
json_docs = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.sampled_from(["bn", "bt", "n", "v", "vs", "vb", "vd", "vlo", "t", "bv", "bver", "x_", "u"]) | _text,
    c, max_size=5), max_leaves=20)
cbor_keys = st.sampled_from([-1, -2, -3, -5, 0, 2, 3, 4, 6, 8, "vlo", "bn", 99, "x_"]) | st.integers() | _text
cbor_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), _text,
                         st.binary(max_size=10))
cbor_docs = st.recursive(cbor_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(cbor_keys, c, max_size=5),
                         max_leaves=20)


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_only_codec_errors(codec, data: bytes) -> None:  # type: ignore[no-untyped-def]
    only_codec_errors(codec, data)


@pytest.mark.parametrize("codec", MULTI_CODECS, ids=lambda c: type(c).__name__)
@FUZZ
@given(case=node_at_path(), edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10_000))
def test_mutated_valid_payloads_give_only_codec_errors(codec, case, edits, cut: int) -> None:  # type: ignore[no-untyped-def]
    node, path = case
    data = _mutate(codec.encode(node, path, REG), edits)
    only_codec_errors(codec, data)
    only_codec_errors(codec, data[: cut % (len(data) + 1)])


@FUZZ
@given(doc=json_docs)
def test_arbitrary_json_structures_give_only_codec_errors(doc: object) -> None:
    only_codec_errors(SENML_JSON, json.dumps(doc).encode())
    only_codec_errors(SENML_JSON, json.dumps([doc]).encode())


@FUZZ
@given(doc=cbor_docs)
def test_arbitrary_cbor_structures_give_only_codec_errors(doc: object) -> None:
    only_codec_errors(SENML_CBOR, cbor2.dumps(doc))
    only_codec_errors(SENML_CBOR, cbor2.dumps([doc]))


def test_float_values_keep_their_exact_bits_through_json() -> None:
    for f in (0.1, 1e-310, 1.7976931348623157e308, -0.0, 22.4):
        data = SENML_JSON.encode_values({Path.of(TEST_OBJECT, 0, 6): f}, REG)
        back = SENML_JSON.decode_values(data, REG)[Path.of(TEST_OBJECT, 0, 6)]
        assert back == f and math.copysign(1, back) == math.copysign(1, f)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", [*MULTI_CODECS, LWM2M_CBOR], ids=lambda c: type(c).__name__)
def test_empty_payload_is_an_empty_pack(codec) -> None:  # type: ignore[no-untyped-def]
    assert codec.decode_values(b"", REG) == {}
    assert codec.decode_timestamped(b"", REG) == []
    assert codec.decode_paths(b"") == []
    assert codec.decode(b"", Path.of(3, 0), REG) == ObjectInstance(0, {})
    with pytest.raises(CodecError, match="no value for /3/0/9"):
        codec.decode(b"", Path.of(3, 0, 9), REG)


@pytest.mark.parametrize("codec", [*MULTI_CODECS, LWM2M_CBOR], ids=lambda c: type(c).__name__)
def test_a_node_at_a_path_of_another_level_or_id_is_refused(codec) -> None:  # type: ignore[no-untyped-def]
    res = SingleResource(9, 1, ResourceType.INTEGER)
    with pytest.raises(CodecError, match="cannot sit at /3"):
        codec.encode(res, Path.of(3), REG)
    with pytest.raises(CodecError, match="does not match the path /3/0/10"):
        codec.encode(res, Path.of(3, 0, 10), REG)
    with pytest.raises(CodecError, match="cannot encode"):
        codec.encode(LwM2mObject(3, {None: ObjectInstance(None, {9: res})}), Path.of(3), REG)  # type: ignore[dict-item]


@pytest.mark.parametrize("codec", [*MULTI_CODECS, LWM2M_CBOR], ids=lambda c: type(c).__name__)
def test_instance_without_id_encodes_at_its_path(codec) -> None:  # type: ignore[no-untyped-def]
    inst = ObjectInstance(None, {9: SingleResource(9, 1, ResourceType.INTEGER)})
    assert codec.decode(codec.encode(inst, Path.of(3, 0), REG), Path.of(3, 0), REG) == ObjectInstance(0, inst.resources)
