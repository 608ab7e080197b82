"""JSON <-> LwM2M value mapping, typed by the shipped object definitions."""

from __future__ import annotations

import pytest

from lwm2m_server.api.errors import BadRequest
from lwm2m_server.api.values import parse_path, value_from_json, values_from_json, values_to_json
from lwm2m_server.model import ObjLnk, Path, ResourceType, default_registry

REG = default_registry()
P = Path.parse


def test_values_to_json_maps_opaque_objlnk_and_scalars() -> None:
    out = values_to_json({P("/3/0/0"): "ACME", P("/3/0/9"): 87, P("/5/0/0"): b"\x00\xff",
                          P("/2/0/1"): ObjLnk(3, 0), P("/33100/0/7"): 0.5, P("/3/0/13"): 1700000000,
                          P("/1/0/6"): False})
    assert out == {"/1/0/6": False, "/2/0/1": "3:0", "/3/0/0": "ACME", "/3/0/9": 87,
                   "/3/0/13": 1700000000, "/5/0/0": "AP8=", "/33100/0/7": 0.5}
    assert list(out) == sorted(out, key=P)


def test_values_from_json_types_each_value_by_its_definition() -> None:
    got = values_from_json({"/1/0/1": 300, "/1/0/6": True, "/1/0/7": "UQ"}, REG, base=P("/1/0"))
    assert got == {P("/1/0/1"): 300, P("/1/0/6"): True, P("/1/0/7"): "UQ"}


def test_opaque_and_objlnk_round_trip_through_json() -> None:
    assert value_from_json("AP8=", ResourceType.OPAQUE, P("/5/0/0")) == b"\x00\xff"
    assert value_from_json("3:0", ResourceType.OBJLNK, P("/2/0/1")) == ObjLnk(3, 0)
    assert value_from_json(2, ResourceType.FLOAT, P("/33100/0/7")) == 2.0


@pytest.mark.parametrize("rtype, raw", [
    (ResourceType.INTEGER, "300"), (ResourceType.INTEGER, 1.5), (ResourceType.INTEGER, True),
    (ResourceType.INTEGER, 2**63), (ResourceType.UNSIGNED_INTEGER, -1),
    (ResourceType.BOOLEAN, 1), (ResourceType.STRING, 5), (ResourceType.FLOAT, "1.0"),
    (ResourceType.OPAQUE, "not base64!"), (ResourceType.OPAQUE, 12),
    (ResourceType.OBJLNK, "3"), (ResourceType.OBJLNK, "3:70000"), (ResourceType.TIME, 1.5),
    (ResourceType.TIME, "2024-01-01"),
])
def test_values_that_do_not_fit_the_type_are_refused(rtype: ResourceType, raw: object) -> None:
    with pytest.raises(BadRequest, match=r"/9/9/9: .* is not a valid"):
        value_from_json(raw, rtype, P("/9/9/9"))


@pytest.mark.parametrize("body, message", [
    ({"/1/0/1": 300, "/3/0/0": "x"}, "not under /1/0"),
    ({"/1/0": 1}, "must name a resource"),
    ({"/1/x/1": 1}, "not a number"),
    ({"/4242/0/1": 1}, "no definition"),
    ({"/1/0/99": 1}, "has no resource 99"),
    ({"/3/0/7": 5}, "multiple resource"),
    ({"/1/0/1/0": 5}, "single resource"),
    ({}, "empty"),
    ([1, 2], "JSON object"),
])
def test_write_bodies_that_do_not_fit_the_definitions_are_refused(body: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        values_from_json(body, REG, base=P("/1/0") if "under" in message else None)


def test_writable_only_refuses_read_only_resources() -> None:
    with pytest.raises(BadRequest, match="not writable"):
        values_from_json({"/3/0/0": "ACME"}, REG, writable_only=True)
    assert values_from_json({"/3/0/13": 5}, REG, writable_only=True) == {P("/3/0/13"): 5}


def test_parse_path_checks_depth() -> None:
    assert parse_path("3/0/1", min_level=3) == P("/3/0/1")
    with pytest.raises(BadRequest, match="must name a resource"):
        parse_path("3/0", min_level=3)
    with pytest.raises(BadRequest, match="outside"):
        parse_path("/3/70000")
