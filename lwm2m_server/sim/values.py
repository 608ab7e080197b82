"""Copy-on-write resource values of an object instance, so a fleet stores each default once.

Ten thousand simulated devices start with the same Device, Connectivity, Server, Firmware
Update, Software Management and Model object values. ``InstanceValues`` reads through to a
template shared by every instance that started with equal values (``InstanceValues.of``) and
keeps only what this instance changed. A value set back to the template's is dropped from the
instance's own values again. Multiple-resource values (``{riid: value}`` dicts) in a template
are shared too: the objects replace such a value, they never change one in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["InstanceValues"]

_DELETED: Any = object()   # marks a template value this instance removed
_templates: dict[tuple[Any, ...], dict[int, Any]] = {}


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a resource value (a dict becomes sorted pairs), type included."""
    if isinstance(value, dict):
        return (dict, tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    return (type(value), value)


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b and _frozen(a) == _frozen(b))


class InstanceValues(MutableMapping[int, Any]):
    """``{resource id: value or {riid: value}}`` of one instance: a shared template plus changes."""

    __slots__ = ("_template", "_own")

    def __init__(self, template: Mapping[int, Any]) -> None:
        self._template = template
        self._own: dict[int, Any] | None = None   # created on the first change

    @classmethod
    def of(cls, values: Mapping[int, Any]) -> InstanceValues:
        """Values equal to ``values``, on the template that every equal instance shares."""
        try:
            key = tuple(sorted((rid, _frozen(v)) for rid, v in values.items()))
            template = _templates.get(key)
        except TypeError:  # a value that cannot be hashed: a template of its own
            return cls(dict(values))
        if template is None:
            template = _templates.setdefault(key, dict(values))
        return cls(template)

    @property
    def own(self) -> dict[int, Any]:
        """What this instance holds apart from its template (for tests and memory checks)."""
        return dict(self._own or {})

    def __getitem__(self, rid: int) -> Any:
        own = self._own
        if own is not None and rid in own:
            value = own[rid]
            if value is _DELETED:
                raise KeyError(rid)
            return value
        return self._template[rid]

    def __setitem__(self, rid: int, value: Any) -> None:
        if rid in self._template and _same(self._template[rid], value):
            if self._own is not None:
                self._own.pop(rid, None)
                if not self._own:
                    self._own = None
            return
        if self._own is None:
            self._own = {}
        self._own[rid] = value

    def __delitem__(self, rid: int) -> None:
        self[rid]  # KeyError when absent
        if rid in self._template:
            if self._own is None:
                self._own = {}
            self._own[rid] = _DELETED
        else:
            del self._own[rid]  # type: ignore[index]

    def __iter__(self) -> Iterator[int]:
        own = self._own or {}
        for rid in self._template:
            if own.get(rid) is not _DELETED:
                yield rid
        for rid, value in own.items():
            if rid not in self._template:
                yield rid

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, rid: object) -> bool:
        own = self._own
        if own is not None and rid in own:
            return own[rid] is not _DELETED  # type: ignore[index]
        return rid in self._template

    def __repr__(self) -> str:
        return f"InstanceValues({dict(self.items())!r})"
