"""``lwm2m-server device add|show|remove``: a device's DTLS credentials in the server's database.

``device add EP --psk-identity ID --psk-key HEX`` (or ``--generate``, which prints the new key
once). Keys are sealed with LWM2M_SECRET_KEY, so the command needs the same secret as the
server. A running server sees the change within seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["open_store", "register"]

DB_HELP = "database URL (default: LWM2M_DB_URL, else lwm2m.db in the data folder)"


def add_db_args(parser: argparse.ArgumentParser) -> None:
    """``--db`` and ``--data-dir``: which server database a local command works on."""
    parser.add_argument("--db", default=None, help=DB_HELP)
    add_data_dir_arg(parser)


def open_store(args: argparse.Namespace) -> Any:
    """The CredentialStore of the configured database (SecretError is raised when used)."""
    from ..security.keybox import keybox_from_settings
    from ..store.credentials import CredentialStore
    from ..store.db import init_db, make_engine

    settings = settings_for(args, db_url=args.db)
    engine = make_engine(settings.db_url)
    init_db(engine)
    return CredentialStore(engine, lambda: keybox_from_settings(settings))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _add(args: argparse.Namespace) -> int:
    import secrets

    from pydantic import ValidationError

    from ..security.keybox import SecretError
    from ..store.credentials import CredentialError, parse_hex_key

    if args.generate == (args.psk_key is not None):
        return _fail("give --psk-key HEX or --generate (not both)")
    try:
        store = open_store(args)
    except ValidationError as e:
        return _fail(f"bad settings: {e.errors()[0]['msg']}")
    try:
        key = secrets.token_bytes(16) if args.generate else parse_hex_key(args.psk_key)
        summary = store.put(args.endpoint, args.psk_identity or args.endpoint, key, args.purpose)
    except (CredentialError, SecretError) as e:
        return _fail(str(e))
    finally:
        store.engine.dispose()
    if args.json:
        print(json.dumps({**summary, **({"psk_key": key.hex()} if args.generate else {})}))
    elif args.generate:
        print(key.hex())  # alone on stdout, so KEY=$(lwm2m-server device add ... --generate) works
        print(f"stored {args.purpose} credential of {args.endpoint!r} (identity "
              f"{summary['psk_identity']!r}); the key is shown only once", file=sys.stderr)
    else:
        print(f"stored {args.purpose} credential of {args.endpoint!r} (identity "
              f"{summary['psk_identity']!r})")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        found = store.summaries(args.endpoint)
    finally:
        store.engine.dispose()
    if not found:
        return _fail(f"endpoint {args.endpoint!r} has no credentials")
    print(json.dumps({"endpoint": args.endpoint, "credentials": found}, indent=2))
    return 0


def _remove(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        n = store.delete(args.endpoint, args.purpose)
    finally:
        store.engine.dispose()
    if n == 0:
        return _fail(f"endpoint {args.endpoint!r} has no credentials")
    print(f"removed {n} credential(s) of {args.endpoint!r}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``device add|show|remove`` to the CLI."""
    p = subparsers.add_parser("device", help="provision device credentials (DTLS-PSK)")
    sub = p.add_subparsers(dest="device_command", metavar="ACTION", required=True)

    a = sub.add_parser("add", help="store a device's PSK identity and key",
                       description="Store a device's PSK (sealed with LWM2M_SECRET_KEY). The "
                                   "endpoint is then refused over plain CoAP.")
    a.add_argument("endpoint", help="the device's endpoint name")
    a.add_argument("--psk-identity", default=None, help="PSK identity (default: the endpoint name)")
    a.add_argument("--psk-key", default=None, help="the key in hex (16..64 bytes)")
    a.add_argument("--generate", action="store_true", help="make a random 128-bit key, print it once")
    a.add_argument("--purpose", choices=("dm", "bootstrap"), default="dm",
                   help="dm: for registering (default); bootstrap: for the bootstrap server")
    add_db_args(a)
    a.add_argument("--json", action="store_true", help="print a JSON object")
    a.set_defaults(func=_add)

    s = sub.add_parser("show", help="show a device's stored credentials (never the keys)")
    s.add_argument("endpoint")
    add_db_args(s)
    s.set_defaults(func=_show)

    r = sub.add_parser("remove", help="remove a device's credentials")
    r.add_argument("endpoint")
    r.add_argument("--purpose", choices=("dm", "bootstrap"), default=None,
                   help="only this purpose (default: all)")
    add_db_args(r)
    r.set_defaults(func=_remove)
