"""``--help`` that shows every default: the one help formatter the command modules share."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DefaultsFormatter", "add_parser"]


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to each option's help, except where the text already says its
    default, or there is none worth printing (None, False: an unset option or a plain flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def add_parser(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """``subparsers.add_parser`` with the defaults formatter."""
    kwargs.setdefault("formatter_class", DefaultsFormatter)
    if "help" in kwargs and "description" not in kwargs:
        kwargs["description"] = kwargs["help"][:1].upper() + kwargs["help"][1:] + "."
    return subparsers.add_parser(name, **kwargs)  # type: ignore[no-any-return]
