import pytest

from lwm2m_server.model import (
    LwM2mObject,
    MultipleResource,
    NodeError,
    ObjectInstance,
    ObjLnk,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    ValueTypeError,
    build,
    default_registry,
    flatten,
    node_at,
)


def device_instance() -> ObjectInstance:
    return ObjectInstance.of(
        0,
        SingleResource(0, "Open Mobile Alliance", ResourceType.STRING),
        MultipleResource(6, {0: 1, 1: 5}, ResourceType.INTEGER),
        SingleResource(13, 0x5182428F, ResourceType.TIME),
    )


def test_flatten_lists_every_leaf_with_its_path():
    flat = flatten(device_instance(), Path.of(3, 0))
    assert flat == {
        Path.of(3, 0, 0): "Open Mobile Alliance",
        Path.of(3, 0, 6, 0): 1,
        Path.of(3, 0, 6, 1): 5,
        Path.of(3, 0, 13): 0x5182428F,
    }


def test_build_is_the_inverse_of_flatten_with_the_registry():
    reg = default_registry()
    inst = device_instance()
    assert build(flatten(inst, Path.of(3, 0)), Path.of(3, 0), reg) == inst
    obj = LwM2mObject.of(3, inst)
    assert build(flatten(obj, Path.of(3)), Path.of(3), reg) == obj


def test_build_types_unknown_objects_from_values():
    values = {Path.of(40000, 0, 1): 2.5, Path.of(40000, 0, 2, 0): "a", Path.of(40000, 0, 2, 3): "b"}
    node = build(values, Path.of(40000, 0), default_registry())
    assert node.resources[1] == SingleResource(1, 2.5, ResourceType.FLOAT)
    assert node.resources[2] == MultipleResource(2, {0: "a", 3: "b"}, ResourceType.STRING)


def test_build_refuses_values_outside_the_path_or_of_the_wrong_type():
    reg = default_registry()
    with pytest.raises(NodeError):
        build({Path.of(3, 1, 0): "x"}, Path.of(3, 0), reg)
    with pytest.raises(ValueTypeError):
        build({Path.of(3, 0, 9): "full"}, Path.of(3, 0), reg)  # battery level is an integer
    with pytest.raises(NodeError):
        build({Path.of(3, 0, 6): 1}, Path.of(3, 0), reg)  # multiple resource without instance


@pytest.mark.parametrize(
    "rtype, bad",
    [(ResourceType.INTEGER, 1.5), (ResourceType.INTEGER, True), (ResourceType.INTEGER, 2**63),
     (ResourceType.UNSIGNED_INTEGER, -1), (ResourceType.FLOAT, float("nan")),
     (ResourceType.FLOAT, float("inf")), (ResourceType.BOOLEAN, 1), (ResourceType.STRING, b"x"),
     (ResourceType.OPAQUE, "x"), (ResourceType.OBJLNK, "3:0")],
)
def test_values_must_fit_their_type(rtype, bad):
    with pytest.raises(ValueTypeError):
        SingleResource(1, bad, rtype)


def test_node_at_finds_descendants():
    obj = LwM2mObject.of(3, device_instance())
    assert node_at(obj, Path.of(3), Path.of(3, 0, 6, 1)) == ResourceInstance(1, 5, ResourceType.INTEGER)
    assert node_at(obj, Path.of(3), Path.of(3, 0, 0)).value == "Open Mobile Alliance"
    assert node_at(obj, Path.of(3), Path.of(3, 1)) is None
    assert node_at(obj, Path.of(3), Path.of(4)) is None


def test_duplicate_ids_are_refused():
    with pytest.raises(NodeError):
        ObjectInstance.of(0, SingleResource(1, 1, ResourceType.INTEGER), SingleResource(1, 2, ResourceType.INTEGER))


def test_objlnk_parses_and_prints():
    assert ObjLnk.parse("3:0") == ObjLnk(3, 0)
    assert str(ObjLnk(65535, 65535)) == "65535:65535"
    for bad in ("3", "3:x", "70000:0", "3:0:1"):
        with pytest.raises(ValueTypeError):
            ObjLnk.parse(bad)
