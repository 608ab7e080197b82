"""Object definitions (DDF), paths and the typed node tree. Never imports aiocoap."""

from .ddf import DefinitionError, ObjectDef, Operations, ResourceDef, parse_ddf, parse_ddf_file
from .nodes import (
    LwM2mObject,
    MultipleResource,
    Node,
    NodeError,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
    build,
    flatten,
    node_at,
    walk_leaves,
)
from .path import Path, PathError, PathLevel
from .registry import MODEL_OBJECT_ID, ObjectRegistry, default_registry, guess_type
from .types import ObjLnk, ResourceType, Value, ValueTypeError, check_value

__all__ = [
    "DefinitionError", "ObjectDef", "Operations", "ResourceDef", "parse_ddf", "parse_ddf_file",
    "LwM2mObject", "MultipleResource", "Node", "NodeError", "ObjectInstance", "Resource",
    "ResourceInstance", "SingleResource", "build", "flatten", "node_at", "walk_leaves",
    "Path", "PathError", "PathLevel",
    "MODEL_OBJECT_ID", "ObjectRegistry", "default_registry", "guess_type",
    "ObjLnk", "ResourceType", "Value", "ValueTypeError", "check_value",
]
