"""The typed LwM2M node tree: object, object instance, resource (single or multiple), resource instance.

Nodes are the only data that crosses layers: codecs turn bytes into nodes and back, the protocol
layer sends and receives nodes, the store and the REST API flatten them to ``{path: value}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Union

from .path import Path, PathError
from .types import ResourceType, Value, check_value

if TYPE_CHECKING:
    from .registry import ObjectRegistry

__all__ = [
    "ResourceInstance",
    "SingleResource",
    "MultipleResource",
    "Resource",
    "ObjectInstance",
    "LwM2mObject",
    "Node",
    "NodeError",
    "flatten",
    "walk_leaves",
    "build",
    "node_at",
]


class NodeError(ValueError):
    """A node tree that is inconsistent (duplicate ids, value of the wrong type, wrong level)."""


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


_setattr = object.__setattr__  # frozen dataclasses: fill slots without __init__'s checks


def _trusted_single(id_: int, value: Value, rtype: ResourceType) -> SingleResource:
    """A SingleResource whose value is already the canonical value of ``rtype`` (checked)."""
    r = object.__new__(SingleResource)
    _setattr(r, "id", id_)
    _setattr(r, "value", value)
    _setattr(r, "type", rtype)
    return r


def _trusted_multiple(id_: int, instances: dict[int, Value], rtype: ResourceType) -> MultipleResource:
    """A MultipleResource whose values are already canonical values of ``rtype`` (checked)."""
    r = object.__new__(MultipleResource)
    _setattr(r, "id", id_)
    _setattr(r, "instances", MappingProxyType(instances))
    _setattr(r, "type", rtype)
    return r


def _trusted_instance(id_: int, resources: dict[int, Resource]) -> ObjectInstance:
    """An ObjectInstance whose resources are keyed by their own ids."""
    r = object.__new__(ObjectInstance)
    _setattr(r, "id", id_)
    _setattr(r, "resources", MappingProxyType(resources))
    return r


@dataclass(frozen=True, slots=True)
class ResourceInstance:
    """One instance of a multiple resource, addressed as ``/o/i/r/ri``."""

    id: int
    value: Value
    type: ResourceType = ResourceType.OPAQUE

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_value(self.value, self.type))


@dataclass(frozen=True, slots=True)
class SingleResource:
    id: int
    value: Value
    type: ResourceType = ResourceType.OPAQUE

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_value(self.value, self.type))


@dataclass(frozen=True, slots=True)
class MultipleResource:
    """A multiple-instance resource: resource-instance id -> value (may be empty)."""

    id: int
    instances: Mapping[int, Value] = field(default_factory=dict)
    type: ResourceType = ResourceType.OPAQUE

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "instances", _frozen({k: check_value(v, self.type) for k, v in self.instances.items()})
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultipleResource):
            return NotImplemented
        return (self.id, dict(self.instances), self.type) == (other.id, dict(other.instances), other.type)


Resource = Union[SingleResource, MultipleResource]


@dataclass(frozen=True, slots=True)
class ObjectInstance:
    """An object instance; ``id`` is None only where the sender lets the receiver choose (Create)."""

    id: int | None
    resources: Mapping[int, Resource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        res = dict(self.resources)
        for k, r in res.items():
            if k != r.id:
                raise NodeError(f"resource keyed {k} has id {r.id}")
        object.__setattr__(self, "resources", _frozen(res))

    @classmethod
    def of(cls, id: int | None, *resources: Resource) -> ObjectInstance:
        ids = [r.id for r in resources]
        if len(set(ids)) != len(ids):
            raise NodeError(f"duplicate resource ids in instance {id}: {ids}")
        return cls(id, {r.id: r for r in resources})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectInstance):
            return NotImplemented
        return self.id == other.id and dict(self.resources) == dict(other.resources)


@dataclass(frozen=True, slots=True)
class LwM2mObject:
    id: int
    instances: Mapping[int, ObjectInstance] = field(default_factory=dict)

    def __post_init__(self) -> None:
        inst = dict(self.instances)
        for k, i in inst.items():
            if k != i.id:
                raise NodeError(f"instance keyed {k} has id {i.id}")
        object.__setattr__(self, "instances", _frozen(inst))

    @classmethod
    def of(cls, id: int, *instances: ObjectInstance) -> LwM2mObject:
        ids = [i.id for i in instances]
        if len(set(ids)) != len(ids):
            raise NodeError(f"duplicate instance ids in object {id}: {ids}")
        return cls(id, {i.id: i for i in instances})  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LwM2mObject):
            return NotImplemented
        return self.id == other.id and dict(self.instances) == dict(other.instances)


Node = Union[LwM2mObject, ObjectInstance, SingleResource, MultipleResource, ResourceInstance]


def walk_leaves(node: Node, path: Path) -> Iterator[tuple[Path, Value, ResourceType]]:
    """``(path, value, type)`` of every leaf of ``node`` (at ``path``), in the tree's order;
    PathError (or TypeError) where a node's id cannot extend the path."""
    if isinstance(node, LwM2mObject):
        for inst in node.instances.values():
            yield from walk_leaves(inst, path.child(inst.id))  # type: ignore[arg-type]
    elif isinstance(node, ObjectInstance):
        for res in node.resources.values():
            yield from walk_leaves(res, path.child(res.id))
    elif isinstance(node, MultipleResource):
        for ri, v in node.instances.items():
            yield path.child(ri), v, node.type
    else:
        yield path, node.value, node.type


def flatten(node: Node, path: Path) -> dict[Path, Value]:
    """``{path: value}`` for every leaf of ``node``, which sits at ``path``.

    Empty instances and empty multiple resources contribute nothing.
    """
    return {p: v for p, v, _t in walk_leaves(node, path)}


def build(values: Mapping[Path, Value], path: Path, registry: ObjectRegistry | None = None,
          types: Mapping[Path, ResourceType] | None = None, *, checked: bool = False) -> Node:
    """The node at ``path`` holding ``values`` (leaf paths under ``path``).

    Types come from ``types`` when given for a leaf, else from the registry, else from the
    Python value. A resource is multiple when the registry says so or a value sits at a
    resource-instance path. Runs in time linear in the number of values.

    ``checked=True`` says every value is already the canonical value of its type in ``types``
    (decoders type and check each value once): resources are then built without checking the
    values again. Values without a type in ``types`` are checked as always.
    """
    from .registry import guess_type  # local: registry imports this module

    # Group the leaves once: (instance id, resource id) -> [leaf paths].
    groups: dict[tuple[int, int], list[Path]] = {}
    resources_of: dict[int, set[int]] = {}
    depth = len(path.ids)
    for p in values:
        ids = p.ids
        if ids[:depth] != path.ids:
            raise NodeError(f"{p} is not under {path}")
        if len(ids) < 3:
            raise NodeError(f"{p} is not a resource or resource instance path")
        key = (ids[1], ids[2])
        group = groups.get(key)
        if group is None:
            groups[key] = [p]
            resources_of.setdefault(ids[1], set()).add(ids[2])
        else:
            group.append(p)

    def rtype(p: Path, v: Value) -> ResourceType:
        t = types.get(p) if types else None
        if t is not None:
            return t
        if registry is not None:
            t = registry.resource_type(p)
            if t is not None:
                return t
        return guess_type(v)

    def make_resource(o: int, i: int, r: int) -> Resource:
        leaves = groups.get((i, r), [])
        d = registry.resource(o, r) if registry is not None else None
        is_multiple = d.multiple if d is not None else any(len(p.ids) == 4 for p in leaves)
        if is_multiple:
            inst: dict[int, Value] = {}
            t = d.type if d is not None else None
            trusted = checked and types is not None
            for p in leaves:
                if len(p.ids) != 4:
                    raise NodeError(f"{p} is a multiple resource: address its instances")
                v = values[p]
                lt = rtype(p, v)
                if trusted and (p not in types or (t is not None and lt is not t)):  # type: ignore[operator]
                    trusted = False  # mixed or untyped leaves: let the constructor check them all
                t = lt
                inst[p.ids[3]] = v
            if trusted and t is not None:
                return _trusted_multiple(r, inst, t)
            return MultipleResource(r, inst, t or ResourceType.OPAQUE)
        if len(leaves) != 1 or len(leaves[0].ids) != 3:
            rp = Path._trusted((o, i, r))  # ids of a valid path
            raise NodeError(f"{rp} is a single resource but got {[str(p) for p in leaves]}")
        p = leaves[0]  # grouped by (i, r) under a path at or above (o, i, r): it is /o/i/r
        v = values[p]
        known = types.get(p) if checked and types is not None else None
        if known is not None:
            return _trusted_single(r, v, known)
        return SingleResource(r, v, rtype(p, v))

    def make_instance(o: int, i: int) -> ObjectInstance:
        rids = sorted(resources_of.get(i, ()))
        return _trusted_instance(i, {r: make_resource(o, i, r) for r in rids})

    lvl = path.level
    if lvl == 1:
        o = path.ids[0]
        iids = sorted(resources_of)
        return LwM2mObject(o, {i: make_instance(o, i) for i in iids})
    if lvl == 2:
        return make_instance(path.ids[0], path.ids[1])
    if lvl == 3:
        if not values and registry is None:
            raise NodeError(f"no value for {path}")
        return make_resource(*path.ids)
    if lvl == 4:
        if path not in values:
            raise NodeError(f"no value for {path}")
        return ResourceInstance(path.ids[3], values[path], rtype(path, values[path]))
    raise PathError("the root path holds no single node")


def node_at(node: Node, node_path: Path, path: Path) -> Node | None:
    """The descendant of ``node`` (at ``node_path``) at ``path``, or None when absent."""
    if not path.starts_with(node_path):
        return None
    cur: Node | None = node
    for id_ in path.ids[len(node_path.ids):]:
        if isinstance(cur, LwM2mObject):
            cur = cur.instances.get(id_)
        elif isinstance(cur, ObjectInstance):
            cur = cur.resources.get(id_)
        elif isinstance(cur, MultipleResource):
            if id_ not in cur.instances:
                return None
            cur = ResourceInstance(id_, cur.instances[id_], cur.type)
        else:
            return None
        if cur is None:
            return None
    return cur
