"""LwM2M paths: ``/``, ``/3``, ``/3/0``, ``/3/0/1`` and ``/3/0/7/2``, validated and ordered."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Path", "PathError", "PathLevel"]

_MAX_ID = 65535


class PathError(ValueError):
    """A string or id list that is not a valid LwM2M path."""


class PathLevel(IntEnum):
    ROOT = 0
    OBJECT = 1
    INSTANCE = 2
    RESOURCE = 3
    RESOURCE_INSTANCE = 4


@dataclass(frozen=True, order=True, slots=True)
class Path:
    """An LwM2M path of up to four 16-bit ids; ``Path()`` is the root ``/``."""

    ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ids) > 4:
            raise PathError(f"a path has at most 4 ids, got {len(self.ids)}")
        for i in self.ids:
            if isinstance(i, bool) or not isinstance(i, int):
                raise PathError(f"path ids are integers, got {i!r}")
            if not 0 <= i <= _MAX_ID:
                raise PathError(f"path id {i} is outside 0..{_MAX_ID}")
        if len(self.ids) >= 2 and self.ids[1] == _MAX_ID:
            # 65535 is reserved as "no instance" (LwM2M 1.1 §7.1).
            raise PathError("object instance id 65535 is reserved")

    def __hash__(self) -> int:
        # The value dataclass(frozen=True) would compute, without its generated wrapper's cost
        # (paths are dict keys everywhere in the codecs).
        return hash((self.ids,))

    @classmethod
    def of(cls, *ids: int) -> Path:
        return cls(tuple(ids))

    @classmethod
    def _trusted(cls, ids: tuple[int, ...]) -> Path:
        """A path from ids the caller has already validated (a tuple of at most 4 ints in
        0..65535, no instance id 65535): skips the checks of ``__init__``. Private to the model
        and codecs, which call it only where the ids come from an existing valid path or have just
        been checked."""
        p = object.__new__(cls)
        _setattr(p, "ids", ids)
        return p

    @classmethod
    def parse(cls, text: str | Path) -> Path:
        """Parse ``"/3/0/1"`` (leading slash optional, no trailing slash except the root)."""
        if isinstance(text, Path):
            return text
        if not isinstance(text, str):
            raise PathError(f"a path is a string, got {type(text).__name__}")
        s = text.strip()
        if s in ("", "/"):
            return cls(())
        if s.startswith("/"):
            s = s[1:]
        if s.endswith("/"):
            s = s[:-1]
        parts = s.split("/")
        ids: list[int] = []
        for part in parts:
            if not part.isdigit() or not part.isascii():
                raise PathError(f"invalid path {text!r}: {part!r} is not a number")
            if len(part) > 1 and part[0] == "0":
                raise PathError(f"invalid path {text!r}: {part!r} has a leading zero")
            ids.append(int(part))
        return cls(tuple(ids))

    # --- accessors -------------------------------------------------------
    @property
    def level(self) -> PathLevel:
        return _LEVELS[len(self.ids)]

    @property
    def object_id(self) -> int | None:
        return self.ids[0] if self.ids else None

    @property
    def instance_id(self) -> int | None:
        return self.ids[1] if len(self.ids) > 1 else None

    @property
    def resource_id(self) -> int | None:
        return self.ids[2] if len(self.ids) > 2 else None

    @property
    def resource_instance_id(self) -> int | None:
        return self.ids[3] if len(self.ids) > 3 else None

    @property
    def is_root(self) -> bool:
        return not self.ids

    @property
    def is_object(self) -> bool:
        return len(self.ids) == 1

    @property
    def is_instance(self) -> bool:
        return len(self.ids) == 2

    @property
    def is_resource(self) -> bool:
        return len(self.ids) == 3

    @property
    def is_resource_instance(self) -> bool:
        return len(self.ids) == 4

    # --- navigation ------------------------------------------------------
    def child(self, id_: int) -> Path:
        ids = self.ids + (id_,)
        # This path is valid: only the new id needs a look (the full checks name what is wrong).
        if type(id_) is int and 0 <= id_ <= _MAX_ID and len(ids) <= 4 and (len(ids) != 2 or id_ != _MAX_ID):
            return Path._trusted(ids)
        return Path(ids)

    def parent(self) -> Path:
        if not self.ids:
            raise PathError("the root path has no parent")
        return Path._trusted(self.ids[:-1])

    def starts_with(self, other: Path) -> bool:
        """True when ``other`` is this path or one of its ancestors."""
        return self.ids[: len(other.ids)] == other.ids

    def __str__(self) -> str:
        return "/" + "/".join(map(str, self.ids))

    def __repr__(self) -> str:
        return f"Path({str(self)!r})"

    def segments(self) -> list[str]:
        """The URI path segments, as a CoAP request to the device carries them."""
        return [str(i) for i in self.ids]


_LEVELS = tuple(PathLevel)
_setattr = object.__setattr__  # frozen dataclass: the one way to fill a slot outside __init__
