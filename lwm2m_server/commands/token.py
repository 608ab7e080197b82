"""``lwm2m-server token create|list|revoke``: API tokens.

``create`` works on the server's database (``--db``) on the server's host: it makes the first
admin token, before any token can call the API. ``list`` and ``revoke`` talk to a running
server over REST (admin scope) when a server is configured, else to the database.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import remote
from ._datadir import add_data_dir_arg, settings_for
from ._help import add_parser

__all__ = ["register"]

SCOPES = ("read", "write", "deploy", "admin")  # store.tokens.SCOPES, without importing the store


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


@remote.fail
def _list(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        from ..store.tokens import list_tokens

        engine = _engine(args)
        try:
            rows: list[dict[str, Any]] = [r.summary() for r in
                                          list_tokens(engine, include_revoked=args.all)]
        finally:
            engine.dispose()
    else:
        rows = remote.client_from_args(args).get("/tokens", include_revoked=str(args.all).lower())
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'id':>4}  {'name':<20} {'prefix':<14} {'scopes':<24} {'last used':<26} state")
    for s in rows:
        print(f"{s['id']:>4}  {s['name']:<20} {s['prefix']:<14} {','.join(s['scopes']):<24} "
              f"{s['last_used_at'] or '-':<26} {'revoked' if s['revoked'] else 'active'}")
    return 0


@remote.fail
def _revoke(args: argparse.Namespace) -> int:
    if not remote.use_local_db(args):
        client = remote.client_from_args(args)
        token_id = args.which
        if not token_id.isdigit():  # a name: the REST route takes ids
            rows = client.get("/tokens", include_revoked="true")
            found = [r for r in rows if r["name"] == args.which and not r["revoked"]]
            if not found:
                raise remote.RemoteError(f"no active token named {args.which!r}")
            token_id = str(found[0]["id"])
        row = client.call("DELETE", f"/tokens/{token_id}")
        if args.json:
            print(json.dumps(row))
        else:
            print(f"revoked token {row['id']} '{row['name']}'")
        return 0
    from ..store.tokens import TokenError, revoke_token

    engine = _engine(args)
    try:
        row = revoke_token(engine, args.which)
    except TokenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(row.summary()))
    else:
        print(f"revoked token {row.id} '{row.name}'")
    return 0


def register(subparsers: Any) -> None:
    """Add ``token create|list|revoke`` to the CLI."""
    p = add_parser(subparsers, "token", help="manage REST API tokens")
    sub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    db_help = "database URL (default: LWM2M_DB_URL, else lwm2m.db in the data folder)"

    c = add_parser(sub, "create", help="create a token and print it (once)",
                   description="Create a token in the server's database and print it (once). "
                               "This one works locally, on the server's host (--db): it makes "
                               "the first admin token, before any token can call the API.")
    c.add_argument("--name", required=True, help="what the token is for")
    c.add_argument("--scopes", default="read",
                   help=f"comma-separated scopes from {','.join(SCOPES)}")
    c.add_argument("--db", default=None, help=db_help)
    add_data_dir_arg(c)
    c.add_argument("--json", action="store_true", help="print a JSON object instead of the bare token")
    c.set_defaults(func=_create)

    ls = add_parser(sub, "list", help="list tokens (never their values)")
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--db", default=None, help=remote.DB_HELP)
    add_data_dir_arg(ls)
    remote.add_remote_args(ls)
    ls.set_defaults(func=_list)

    r = add_parser(sub, "revoke", help="revoke a token by id or name")
    # Not "token": --token (the caller's own credential) has that name.
    r.add_argument("which", metavar="TOKEN", help="token id or name")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.add_argument("--db", default=None, help=remote.DB_HELP)
    add_data_dir_arg(r)
    remote.add_remote_args(r)
    r.set_defaults(func=_revoke)
