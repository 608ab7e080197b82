"""``lwm2m-server bootstrap set|show|list|remove``: what the bootstrap server gives devices.

``bootstrap set --template ...`` sets the default for every endpoint without its own
configuration; ``bootstrap set EP ...`` sets one endpoint's. Written to the server's database.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .device import add_db_args, open_store

__all__ = ["register"]


def _name(args: argparse.Namespace) -> str | None:
    if args.template == (args.endpoint is not None):
        return None
    return "*" if args.template else str(args.endpoint)


def _set(args: argparse.Namespace) -> int:
    from ..protocol.bootstrap import BootstrapError, config_from_json
    from ..security.keybox import SecretError
    from ..store.credentials import CredentialError

    name = _name(args)
    if name is None:
        print("error: give an endpoint or --template (not both)", file=sys.stderr)
        return 2
    data: dict[str, Any] = {"security_mode": args.security_mode, "short_server_id": args.ssid,
                            "lifetime": args.lifetime, "binding": args.binding}
    if args.server_uri:
        data["server_uri"] = args.server_uri
    if args.psk_identity is not None or args.psk_key is not None:
        data["psk_identity"], data["psk_key_hex"] = args.psk_identity, args.psk_key
    store = open_store(args)
    try:
        cfg = config_from_json(data)
        store.set_bootstrap(name, cfg.to_json())
    except (BootstrapError, CredentialError, SecretError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.engine.dispose()
    print(json.dumps({"name": "template" if name == "*" else name, **cfg.public_json()}))
    return 0


def _on_store(args: argparse.Namespace, action: Callable[[Any], Any]) -> Any:
    """``action(store)`` on the server's credential store, closed afterwards."""
    store = open_store(args)
    try:
        return action(store)
    finally:
        store.engine.dispose()


def _named(args: argparse.Namespace) -> str:
    name = _name(args)
    if name is None:
        print("error: give an endpoint or --template", file=sys.stderr)
        raise SystemExit(2)
    return name


def _show(args: argparse.Namespace) -> int:
    name = _named(args)
    data = _on_store(args, lambda store: store.get_bootstrap(name))
    if data is None:
        print(f"error: no bootstrap configuration for {'the template' if name == '*' else repr(name)}",
              file=sys.stderr)
        return 2
    print(json.dumps(data, indent=2))
    return 0


def _list(args: argparse.Namespace) -> int:
    all_ = _on_store(args, lambda store: store.list_bootstrap())
    print(json.dumps({("template" if k == "*" else k): v for k, v in sorted(all_.items())}, indent=2))
    return 0


def _remove(args: argparse.Namespace) -> int:
    name = _named(args)
    if not _on_store(args, lambda store: store.delete_bootstrap(name)):
        print("error: nothing to remove", file=sys.stderr)
        return 2
    print("removed")
    return 0


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", nargs="?", default=None, help="the endpoint (or --template)")
    p.add_argument("--template", action="store_true", help="the default for every endpoint")
    add_db_args(p)


def register(subparsers: Any) -> None:
    """Add ``bootstrap set|show|list|remove`` to the CLI."""
    p = subparsers.add_parser("bootstrap", help="configure the bootstrap server")
    sub = p.add_subparsers(dest="bootstrap_command", metavar="ACTION", required=True)

    s = sub.add_parser("set", help="set what a device (or every device) is given at bootstrap",
                       description="The LwM2M server account written to a bootstrapping device: "
                                   "Security (/0) and Server (/1) instances.")
    _target(s)
    s.add_argument("--security-mode", choices=("psk", "nosec"), default="psk",
                   help="psk (default): the device gets its DM credential (generated if it has "
                        "none); nosec: plain CoAP")
    s.add_argument("--server-uri", default=None,
                   help="the LwM2M server's URI (default: this server's coaps/coap address)")
    s.add_argument("--ssid", type=int, default=1, help="Short Server ID (default 1)")
    s.add_argument("--lifetime", type=int, default=300, help="registration lifetime (default 300 s)")
    s.add_argument("--binding", choices=("U", "UQ"), default="U")
    s.add_argument("--psk-identity", default=None, help="the DM PSK identity to give (endpoint only)")
    s.add_argument("--psk-key", default=None, help="the DM PSK in hex (endpoint only)")
    s.set_defaults(func=_set)

    sh = sub.add_parser("show", help="show a configuration")
    _target(sh)
    sh.set_defaults(func=_show)

    ls = sub.add_parser("list", help="list every configuration")
    add_db_args(ls)
    ls.set_defaults(func=_list)

    r = sub.add_parser("remove", help="remove a configuration")
    _target(r)
    r.set_defaults(func=_remove)
