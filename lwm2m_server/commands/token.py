"""``lwm2m-server token create|list|revoke``: manage API tokens in the server's database."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["register"]


SCOPES = ("read", "write", "deploy", "admin")  # store.tokens.SCOPES, kept here for a fast --help


def _engine(args: argparse.Namespace) -> Any:
    from ..store.db import init_db, make_engine

    settings = settings_for(args, db_url=args.db)
    engine = make_engine(settings.db_url)
    init_db(engine)
    return engine


def _create(args: argparse.Namespace) -> int:
    from ..store.tokens import TokenError, create_token

    engine = _engine(args)
    try:
        row, plaintext = create_token(engine, args.name, args.scopes)
    except TokenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({**row.summary(), "token": plaintext}))
    else:
        # The token alone on stdout, so `TOKEN=$(lwm2m-server token create ...)` works.
        print(plaintext)
        print(f"created token {row.id} '{row.name}' with scopes {row.scopes}; "
              "it is shown only once", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..store.tokens import list_tokens

    engine = _engine(args)
    try:
        rows = list_tokens(engine, include_revoked=args.all)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([r.summary() for r in rows]))
        return 0
    print(f"{'id':>4}  {'name':<20} {'prefix':<14} {'scopes':<24} {'last used':<26} state")
    for r in rows:
        s = r.summary()
        print(f"{s['id']:>4}  {r.name:<20} {r.display_prefix:<14} {','.join(s['scopes']):<24} "  # type: ignore[arg-type]
              f"{s['last_used_at'] or '-':<26} {'revoked' if r.revoked else 'active'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ..store.tokens import TokenError, revoke_token

    engine = _engine(args)
    try:
        row = revoke_token(engine, args.token)
    except TokenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"revoked token {row.id} '{row.name}'")
    return 0


def register(subparsers: Any) -> None:
    """Add ``token create|list|revoke`` to the CLI."""
    p = subparsers.add_parser("token", help="manage REST API tokens")
    sub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    db_help = "database URL (default: LWM2M_DB_URL, else lwm2m.db in the data folder)"

    c = sub.add_parser("create", help="create a token and print it (once)")
    c.add_argument("--name", required=True, help="what the token is for")
    c.add_argument("--scopes", default="read",
                   help=f"comma-separated scopes from {','.join(SCOPES)} (default: read)")
    c.add_argument("--db", default=None, help=db_help)
    add_data_dir_arg(c)
    c.add_argument("--json", action="store_true", help="print a JSON object instead of the bare token")
    c.set_defaults(func=_create)

    ls = sub.add_parser("list", help="list tokens (never their values)")
    ls.add_argument("--db", default=None, help=db_help)
    add_data_dir_arg(ls)
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    r = sub.add_parser("revoke", help="revoke a token by id or name")
    r.add_argument("token", help="token id or name")
    r.add_argument("--db", default=None, help=db_help)
    add_data_dir_arg(r)
    r.set_defaults(func=_revoke)
