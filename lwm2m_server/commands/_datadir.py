"""The ``--data-dir`` flag every command shares, and the settings it resolves to.

Each command calls ``settings_for(args, ...)``: flags win over ``LWM2M_*`` variables, which
win over the data folder's defaults; the folder is created if needed and named on stderr.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_data_dir_arg", "settings_for", "DATA_DIR_HELP"]

DATA_DIR_HELP = ("data folder holding the database, artifacts, SOTA keys and default model "
                 "(default: LWM2M_DATA_DIR, else $XDG_DATA_HOME/lwm2m-server or "
                 "~/.local/share/lwm2m-server)")


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` to a sub-command."""
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)


def settings_for(args: argparse.Namespace, *, quiet: bool = False, **flags: Any) -> Any:
    """``Settings`` for this command: its flags, ``--data-dir`` and the environment."""
    from ..config import Settings
    from ..datadir import open_data_dir

    settings = Settings.from_args(data_dir=getattr(args, "data_dir", None), **flags)
    return open_data_dir(settings, quiet=quiet)
