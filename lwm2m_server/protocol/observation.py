"""Observations the server keeps across restarts and new registrations, as the store holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..model import Path

__all__ = ["StoredObservation", "OBSERVATION_ORIGINS", "paths_key", "parse_paths_key"]

# Who asked for an observation: a REST caller, the rollout engine, or the server itself.
OBSERVATION_ORIGINS = ("api", "rollout", "internal")


def paths_key(paths: tuple[Path, ...]) -> str:
    """The stored form of an observation's paths: ``"/3/0/9"`` or ``"/3/0/9,/5/0/3"``."""
    return ",".join(str(p) for p in paths)


def parse_paths_key(text: str) -> tuple[Path, ...]:
    """The paths of :func:`paths_key`'s text."""
    return tuple(Path.parse(p) for p in text.split(","))


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """An active observation of ``paths`` on ``endpoint``: Observe (``composite`` False, one
    path) or Observe-Composite. ``attributes`` are the Write-Attributes the server set on an
    observed path (re-applied when the observation is re-established), ``origin`` one of
    :data:`OBSERVATION_ORIGINS`."""

    endpoint: str
    paths: tuple[Path, ...]
    composite: bool
    origin: str
    created_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
