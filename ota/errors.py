"""The one exception family of the ``ota`` package: every error it raises is an ``OtaError``.

Each module adds its own subclass (``WasmError``, ``SotaError``, ``ElfError``, ...), so callers can
catch one module's failures or all of them; messages say what is wrong and what was expected.
"""

from __future__ import annotations

__all__ = ["OtaError"]


class OtaError(Exception):
    """Base of every error raised by the ``ota`` package."""
