"""The ``lwm2m-server`` command line: a thin layer over the command modules.

Each module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its command and
sets ``func`` (a callable taking the parsed namespace and returning an exit code). Only the
module of the command being run is imported: ``lwm2m-server --help`` lists the commands from
the table below without loading the server, its database layer or the OTA toolchain.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

# command -> (module that registers it, one line of help for the command list)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lwm2m_server.commands.run", "run the server (CoAP + HTTP) until interrupted"),
    "token": ("lwm2m_server.commands.token", "manage REST API tokens"),
    "simulate": ("lwm2m_server.commands.simulate", "run simulated LwM2M devices (TinyML Wasm models)"),
    "artifact": ("lwm2m_server.commands.artifact", "firmware images, Wasm models, SOTA packages"),
    "sota": ("lwm2m_server.commands.sota", "model-only (SOTA) update packages"),
    "keys": ("lwm2m_server.commands.keys", "signing keys for firmware images and SOTA packages"),
    "deploy": ("lwm2m_server.commands.deploy", "create and steer OTA deployments"),
    "devices": ("lwm2m_server.commands.devices_remote",
                "registered devices of a running server: list, read, write, execute, observe"),
    "login": ("lwm2m_server.commands.login", "save a server URL and token for the remote commands"),
    "model": ("lwm2m_server.commands.model", "build a trained model into a Wasm module (and a SOTA package)"),
    "device": ("lwm2m_server.commands.device", "device credentials for DTLS (PSK): add, show, remove"),
    "bootstrap": ("lwm2m_server.commands.bootstrap", "bootstrap-server configuration per endpoint and template"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command registered by its module; with ``only``, just that
    command's module is imported and the others are listed by name and help alone."""
    parser = argparse.ArgumentParser(
        prog="lwm2m-server",
        description="LwM2M device-management server for fleets of TinyML microcontrollers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is None or only == name:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    # The first word that is not an option names the command (there are no global options).
    chosen = next((a for a in args_in if not a.startswith("-")), "")
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_in)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
