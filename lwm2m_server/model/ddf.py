"""Parse OMA DDF XML object definitions (untrusted input: defusedxml, bounded size)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import Flag, auto
from pathlib import Path as FsPath

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from .types import ResourceType

__all__ = ["Operations", "ResourceDef", "ObjectDef", "DefinitionError", "parse_ddf", "parse_ddf_file"]

MAX_DDF_BYTES = 4 * 1024 * 1024


class DefinitionError(ValueError):
    """A DDF file that cannot be used; names the file and the element at fault."""

    def __init__(self, source: str, element: str, message: str) -> None:
        self.source = source
        self.element = element
        self.message = message
        super().__init__(f"{source}: {element}: {message}")


class Operations(Flag):
    NONE = 0
    READ = auto()
    WRITE = auto()
    EXECUTE = auto()

    @classmethod
    def parse(cls, text: str | None) -> Operations:
        t = (text or "").strip().upper()
        table = {"": cls.NONE, "R": cls.READ, "W": cls.WRITE, "RW": cls.READ | cls.WRITE,
                 "E": cls.EXECUTE}
        if t not in table:
            raise ValueError(f"operations must be one of R, W, RW, E or empty, got {text!r}")
        return table[t]

    def __str__(self) -> str:
        if self is Operations.NONE:
            return ""
        return "".join(c for c, f in (("R", Operations.READ), ("W", Operations.WRITE),
                                      ("E", Operations.EXECUTE)) if self & f)


@dataclass(frozen=True, slots=True)
class ResourceDef:
    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    range: str = ""
    units: str = ""
    description: str = ""

    @property
    def readable(self) -> bool:
        return Operations.READ in self.operations

    @property
    def writable(self) -> bool:
        return Operations.WRITE in self.operations

    @property
    def executable(self) -> bool:
        return Operations.EXECUTE in self.operations


@dataclass(frozen=True, slots=True)
class ObjectDef:
    id: int
    name: str
    urn: str
    version: str
    lwm2m_version: str
    multiple: bool
    mandatory: bool
    resources: dict[int, ResourceDef] = field(default_factory=dict)
    description: str = ""
    source: str = ""


def _text(el: ET.Element, tag: str, source: str, where: str, required: bool = True) -> str:
    child = el.find(tag)
    if child is None:
        if required:
            raise DefinitionError(source, f"{where}/{tag}", "missing element")
        return ""
    return (child.text or "").strip()


def _int(text: str, source: str, where: str, lo: int = 0, hi: int = 65535) -> int:
    if not text.isdigit():
        raise DefinitionError(source, where, f"expected an integer, got {text!r}")
    v = int(text)
    if not lo <= v <= hi:
        raise DefinitionError(source, where, f"{v} is outside {lo}..{hi}")
    return v


def _multiple(text: str, source: str, where: str) -> bool:
    t = text.lower()
    if t not in ("single", "multiple"):
        raise DefinitionError(source, where, f"expected Single or Multiple, got {text!r}")
    return t == "multiple"


def _mandatory(text: str, source: str, where: str) -> bool:
    t = text.lower()
    if t not in ("mandatory", "optional"):
        raise DefinitionError(source, where, f"expected Mandatory or Optional, got {text!r}")
    return t == "mandatory"


def _parse_object(obj: ET.Element, source: str, index: int) -> ObjectDef:
    where = f"Object[{index}]"
    oid = _int(_text(obj, "ObjectID", source, where), source, f"{where}/ObjectID")
    where = f"Object[{oid}]"
    name = _text(obj, "Name", source, where)
    resources: dict[int, ResourceDef] = {}
    res_el = obj.find("Resources")
    if res_el is None:
        raise DefinitionError(source, f"{where}/Resources", "missing element")
    for item in res_el.findall("Item"):
        rid_text = (item.get("ID") or "").strip()
        rwhere = f"{where}/Resources/Item[ID={rid_text!r}]"
        rid = _int(rid_text, source, rwhere)
        if rid in resources:
            raise DefinitionError(source, rwhere, "duplicate resource id")
        type_text = _text(item, "Type", source, rwhere, required=False)
        try:
            rtype = ResourceType.from_ddf(type_text)
        except ValueError:
            raise DefinitionError(source, f"{rwhere}/Type", f"unknown type {type_text!r}") from None
        try:
            ops = Operations.parse(_text(item, "Operations", source, rwhere))
        except ValueError as e:
            raise DefinitionError(source, f"{rwhere}/Operations", str(e)) from None
        resources[rid] = ResourceDef(
            id=rid,
            name=_text(item, "Name", source, rwhere),
            operations=ops,
            multiple=_multiple(_text(item, "MultipleInstances", source, rwhere), source,
                               f"{rwhere}/MultipleInstances"),
            mandatory=_mandatory(_text(item, "Mandatory", source, rwhere), source, f"{rwhere}/Mandatory"),
            type=rtype,
            range=_text(item, "RangeEnumeration", source, rwhere, required=False),
            units=_text(item, "Units", source, rwhere, required=False),
            description=_text(item, "Description", source, rwhere, required=False),
        )
    version = _text(obj, "ObjectVersion", source, where, required=False) or "1.0"
    return ObjectDef(
        id=oid,
        name=name,
        urn=_text(obj, "ObjectURN", source, where, required=False),
        version=version,
        lwm2m_version=_text(obj, "LWM2MVersion", source, where, required=False) or "1.0",
        multiple=_multiple(_text(obj, "MultipleInstances", source, where), source,
                           f"{where}/MultipleInstances"),
        mandatory=_mandatory(_text(obj, "Mandatory", source, where), source, f"{where}/Mandatory"),
        resources=resources,
        description=_text(obj, "Description1", source, where, required=False),
        source=source,
    )


def parse_ddf(data: bytes | str, source: str = "<string>") -> list[ObjectDef]:
    """Every object defined in one DDF document."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_DDF_BYTES:
        raise DefinitionError(source, "LWM2M", f"file is larger than {MAX_DDF_BYTES} bytes")
    try:
        root = DET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as e:
        raise DefinitionError(source, "document", f"refused: {type(e).__name__}") from None
    except ET.ParseError as e:
        line, col = e.position
        raise DefinitionError(source, f"line {line} column {col}", f"malformed XML: {e}") from None
    if root.tag != "LWM2M":
        raise DefinitionError(source, root.tag, "root element must be LWM2M")
    objects = root.findall("Object")
    if not objects:
        raise DefinitionError(source, "LWM2M", "no Object element")
    return [_parse_object(o, source, i) for i, o in enumerate(objects)]


def parse_ddf_file(path: str | os.PathLike[str]) -> list[ObjectDef]:
    p = FsPath(path)
    try:
        size = p.stat().st_size
        if size > MAX_DDF_BYTES:
            raise DefinitionError(p.name, "LWM2M", f"file is larger than {MAX_DDF_BYTES} bytes")
        data = p.read_bytes()
    except OSError as e:
        raise DefinitionError(str(p.name), "file", f"cannot read: {e.strerror}") from None
    return parse_ddf(data, source=p.name)
