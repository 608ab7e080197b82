"""Shared plumbing of the OTA commands (artifact, sota, keys): file and key reading, errors.

Every OTA command reports a failure as one ``error: ...`` line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ota.keys loads cryptography: only the commands that read keys need it
    from ota.keys import PrivateKey, PublicKey

__all__ = ["CommandError", "cli_errors", "read_file", "read_private_key", "read_public_key"]


class CommandError(Exception):
    """A command-line problem with a message for the operator."""


def cli_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a command can expect into one stderr line and exit code 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        # Imported when the command runs: registering a command (and --help) loads no OTA code.
        from ota.errors import OtaError

        try:
            return func(args)
        except (CommandError, OtaError, ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return wrapper


def read_file(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a ``CommandError`` naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CommandError(f"cannot read {what} {path}: {e.strerror or e}") from None


def read_private_key(path: str | Path) -> PrivateKey:
    from ota.errors import OtaError
    from ota.keys import load_private_key

    try:
        return load_private_key(read_file(path, "key file"))
    except OtaError as e:
        raise CommandError(f"{path}: {e}") from None


def read_public_key(path: str | Path) -> PublicKey:
    from ota.errors import OtaError
    from ota.keys import load_public_key

    try:
        return load_public_key(read_file(path, "key file"))
    except OtaError as e:
        raise CommandError(f"{path}: {e}") from None
