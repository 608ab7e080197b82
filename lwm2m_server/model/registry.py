"""The set of known object definitions: the shipped ones in ``objects/`` plus operator folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path as FsPath

from .ddf import DefinitionError, ObjectDef, ResourceDef, parse_ddf_file
from .path import Path
from .types import ObjLnk, ResourceType, Value

__all__ = ["ObjectRegistry", "DEFAULT_OBJECTS_DIR", "guess_type", "default_registry"]

DEFAULT_OBJECTS_DIR = FsPath(__file__).resolve().parent.parent.parent / "objects"

# Object id ranges (OMNA): 0-1023 OMA, 1024-2047 reserved, 2048-10240 third parties,
# 10241-26240 vendors, 26241-32768 reserved, 32769-42768 private (ours lives there).
MODEL_OBJECT_ID = 33100


def guess_type(value: Value) -> ResourceType:
    """The LwM2M type a bare Python value stands for (used for resources no definition knows)."""
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.INTEGER
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, str):
        return ResourceType.STRING
    if isinstance(value, ObjLnk):
        return ResourceType.OBJLNK
    if value is None:
        return ResourceType.NONE
    return ResourceType.OPAQUE


class ObjectRegistry:
    """Object definitions by id. Later folders override earlier ones for the same object id."""

    def __init__(self, objects: Iterable[ObjectDef] = ()) -> None:
        self._objects: dict[int, ObjectDef] = {}
        for o in objects:
            self.add(o)

    def add(self, obj: ObjectDef) -> None:
        self._objects[obj.id] = obj

    def load_dir(self, folder: str | os.PathLike[str]) -> list[ObjectDef]:
        """Load every ``*.xml`` in ``folder``; the first bad file raises DefinitionError."""
        d = FsPath(folder)
        if not d.is_dir():
            raise DefinitionError(str(folder), "folder", "not a directory")
        loaded: list[ObjectDef] = []
        for f in sorted(d.glob("*.xml")):
            for o in parse_ddf_file(f):
                self.add(o)
                loaded.append(o)
        return loaded

    @classmethod
    def from_dirs(cls, *folders: str | os.PathLike[str], builtin: bool = True) -> ObjectRegistry:
        reg = cls()
        if builtin:
            reg.load_dir(DEFAULT_OBJECTS_DIR)
        for f in folders:
            reg.load_dir(f)
        return reg

    def get(self, object_id: int) -> ObjectDef | None:
        return self._objects.get(object_id)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self) -> Iterator[ObjectDef]:
        return iter(sorted(self._objects.values(), key=lambda o: o.id))

    def __len__(self) -> int:
        return len(self._objects)

    def resource(self, object_id: int | None, resource_id: int | None) -> ResourceDef | None:
        if object_id is None or resource_id is None:
            return None
        o = self._objects.get(object_id)
        return o.resources.get(resource_id) if o else None

    def resource_for(self, path: Path) -> ResourceDef | None:
        return self.resource(path.object_id, path.resource_id)

    def resource_type(self, path: Path) -> ResourceType | None:
        # Inlined resource_for: codecs ask this once per decoded value.
        ids = path.ids
        if len(ids) < 3:
            return None
        o = self._objects.get(ids[0])
        d = o.resources.get(ids[2]) if o is not None else None
        return d.type if d is not None else None


_default: ObjectRegistry | None = None


def default_registry() -> ObjectRegistry:
    """The shipped definitions, loaded once."""
    global _default
    if _default is None:
        _default = ObjectRegistry.from_dirs()
    return _default
