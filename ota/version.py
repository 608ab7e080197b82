"""Semantic versions ``MAJOR.MINOR.PATCH`` compared numerically (``1.1.10`` > ``1.1.9``).

Used by SOTA manifests (downgrade protection) and artifact records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ota.errors import OtaError

__all__ = ["Version", "VersionError", "parse", "compare"]

_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})")
_MAX_PART = 2**32 - 1


class VersionError(OtaError, ValueError):
    """A version string is not ``MAJOR.MINOR.PATCH``."""


@dataclass(frozen=True, order=True)
class Version:
    """A parsed ``MAJOR.MINOR.PATCH`` version; ordering compares the numbers."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse(text: str | Version) -> Version:
    """Parse ``MAJOR.MINOR.PATCH`` (decimal numbers without leading zeros, each < 2**32)."""
    if isinstance(text, Version):
        return text
    if not isinstance(text, str):
        raise VersionError(f"version must be text like 1.2.3, got {type(text).__name__}")
    m = _VERSION_RE.fullmatch(text)
    if m is None:
        raise VersionError(f"version {text!r} is not MAJOR.MINOR.PATCH (for example 1.2.3)")
    parts = [int(g) for g in m.groups()]
    if any(p > _MAX_PART for p in parts):
        raise VersionError(f"version {text!r}: each number must be below 2**32")
    return Version(*parts)


def compare(a: str | Version, b: str | Version) -> int:
    """-1, 0 or 1 as version ``a`` is lower than, equal to or greater than ``b``."""
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)
