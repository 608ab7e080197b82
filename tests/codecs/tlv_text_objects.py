"""Test helpers for the text, opaque, TLV and link-format tests: a registry with one resource of
every type (single and multiple), the spec's example objects 65/66 and a core-link resource
(3442/x/180); value strategies per type; mutation edits for fuzzing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from hypothesis import strategies as st

from lwm2m_server.model import (
    ObjectDef,
    ObjectRegistry,
    ObjLnk,
    Operations,
    ResourceDef,
    ResourceType,
    default_registry,
)

ALL_TYPES_OBJECT = 40000
TYPES = list(ResourceType)
# resource id of a single resource of each type; the multiple one is SINGLE_ID[t] + 20
SINGLE_ID = {t: i for i, t in enumerate(TYPES)}
MULTIPLE_OFFSET = 20

VALUES: dict[ResourceType, st.SearchStrategy] = {
    ResourceType.STRING: st.text(max_size=40),
    ResourceType.CORELNK: st.text(max_size=40),
    ResourceType.INTEGER: st.integers(-(2**63), 2**63 - 1),
    ResourceType.TIME: st.integers(-(2**63), 2**63 - 1),
    ResourceType.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.OPAQUE: st.binary(max_size=40),
    ResourceType.OBJLNK: st.builds(ObjLnk, st.integers(0, 65535), st.integers(0, 65535)),
    ResourceType.NONE: st.none(),
}


def _res(rid: int, rtype: ResourceType, multiple: bool) -> ResourceDef:
    return ResourceDef(id=rid, name=f"r{rid}", operations=Operations.READ | Operations.WRITE,
                       multiple=multiple, mandatory=False, type=rtype)


def _obj(oid: int, resources: list[ResourceDef], multiple: bool = True) -> ObjectDef:
    return ObjectDef(id=oid, name=f"test {oid}", urn="", version="1.0", lwm2m_version="1.1",
                     multiple=multiple, mandatory=False, resources={r.id: r for r in resources})


def build_registry() -> ObjectRegistry:
    """The shipped objects plus object 40000 (every type) and the spec's objects 65 and 66."""
    reg = ObjectRegistry(default_registry())
    reg.add(_obj(ALL_TYPES_OBJECT,
                 [_res(i, t, False) for t, i in SINGLE_ID.items()]
                 + [_res(i + MULTIPLE_OFFSET, t, True) for t, i in SINGLE_ID.items()]))
    # LwM2M 1.1 Core §7.4.3 object-link example objects.
    reg.add(_obj(65, [_res(0, ResourceType.OBJLNK, True), _res(1, ResourceType.STRING, False),
                      _res(2, ResourceType.INTEGER, False)]))
    reg.add(_obj(66, [_res(0, ResourceType.STRING, False), _res(1, ResourceType.STRING, False),
                      _res(2, ResourceType.OBJLNK, False)]))
    # A core-link resource (Leshan's test object 3442 has one at id 180).
    reg.add(_obj(3442, [_res(180, ResourceType.CORELNK, False)]))
    return reg



REGISTRY = build_registry()


E = TypeVar("E")


def edits(units: st.SearchStrategy) -> st.SearchStrategy:
    """1 to 4 edits (position, unit, s=substitute / i=insert / d=delete) for :func:`mutate`."""
    return st.lists(st.tuples(st.integers(0, 200), units, st.sampled_from("sid")), min_size=1, max_size=4)


def mutate(base: Sequence[E], changes: list[tuple[int, E, str]]) -> list[E]:
    """``base`` with ``changes`` applied in turn (positions wrap around the current length)."""
    data = list(base)
    for pos, unit, op in changes:
        pos %= len(data) + 1
        if op == "s" and pos < len(data):
            data[pos] = unit
        elif op == "i":
            data.insert(pos, unit)
        elif pos < len(data):
            del data[pos]
    return data
