"""Delta updates: a detools patch from the installed model to the new one.

Worth sending only where smaller than the plain package; ``delta_if_smaller`` decides.
"""

from __future__ import annotations

import io

import detools

from ota.errors import OtaError

__all__ = ["DeltaError", "make_delta", "apply_delta", "delta_if_smaller"]


class DeltaError(OtaError, ValueError):
    """A patch cannot be made or does not apply to the given source."""


def make_delta(old: bytes, new: bytes, *, compression: str = "heatshrink") -> bytes:
    """A sequential detools patch turning ``old`` into ``new``.

    heatshrink is the default compression because it is what small devices decompress.
    """
    out = io.BytesIO()
    try:
        detools.create_patch(io.BytesIO(old), io.BytesIO(new), out, compression=compression)
    except detools.Error as e:
        raise DeltaError(f"cannot create patch: {e}") from None
    return out.getvalue()


def apply_delta(old: bytes, patch: bytes) -> bytes:
    """Apply a patch from ``make_delta`` to ``old``; ``DeltaError`` if it does not apply."""
    out = io.BytesIO()
    try:
        detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), out)
    except (detools.Error, EOFError, ValueError, IndexError) as e:
        raise DeltaError(f"patch does not apply: {e}") from None
    return out.getvalue()


def delta_if_smaller(old: bytes, new: bytes, plain_size: int) -> bytes | None:
    """The patch from ``old`` to ``new`` when it is smaller than ``plain_size``, else None."""
    patch = make_delta(old, new)
    return patch if len(patch) < plain_size else None
