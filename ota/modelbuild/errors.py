"""The error family of ``ota.modelbuild``: one exception whose message says what to change."""

from __future__ import annotations

from ota.errors import OtaError

__all__ = ["ModelBuildError"]


class ModelBuildError(OtaError, ValueError):
    """A model cannot become a model Wasm module; the message names the cause and the fix."""
