"""The ``lwm2m-server`` command line: a thin layer over the command modules.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its sub-commands
and sets ``func`` (a callable taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = [
    "lwm2m_server.commands.run",       # run
    "lwm2m_server.commands.token",     # token create|list|revoke
    "lwm2m_server.commands.simulate",  # simulate
    "lwm2m_server.commands.artifact",  # artifact add|inspect|list
    "lwm2m_server.commands.sota",      # sota build
    "lwm2m_server.commands.keys",      # keys generate|export-c
    "lwm2m_server.commands.deploy",    # deploy create|status|pause|resume|cancel
    "lwm2m_server.commands.device",    # device add|show|remove (credentials)
    "lwm2m_server.commands.bootstrap",  # bootstrap set|show|list|remove
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwm2m-server",
        description="LwM2M device-management server for fleets of TinyML microcontrollers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command is not part of this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
