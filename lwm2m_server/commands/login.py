"""``lwm2m-server login``: check a server URL and token, and save them for later commands.

The profile (mode 0600 in the user's config folder) is the last place remote commands look,
after ``--server``/``--token`` and ``LWM2M_SERVER_URL``/``LWM2M_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import remote

__all__ = ["register"]


@remote.fail
def _login(args: argparse.Namespace) -> int:
    if not args.server or not args.token:
        raise remote.RemoteError("login needs --server URL and --token T")
    client = remote.Client(args.server, args.token, timeout=args.http_timeout)
    try:
        client.get("/events", limit=1)  # any token with the read scope may list events
    except remote.RemoteError as e:
        if e.status != 403:  # a token without read (deploy only) is still worth saving
            raise
    path = remote.write_profile(client.base_url, args.token)
    if args.json:
        print(json.dumps({"server": client.base_url, "profile": str(path)}))
    else:
        print(f"saved {client.base_url} and the token to {path}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add ``login`` to the CLI."""
    p = subparsers.add_parser(
        "login", help="save a server URL and token for the remote commands",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Check that the server answers and accepts the token, then save both to "
                    f"{remote.profile_path()} (mode 0600). Later commands use them when "
                    f"neither --server/--token nor ${remote.SERVER_ENV}/${remote.TOKEN_ENV} "
                    "are given.")
    p.add_argument("--server", metavar="URL", required=True, help="server base URL")
    p.add_argument("--token", metavar="T", required=True, help="API token")
    p.add_argument("--http-timeout", type=float, default=remote.DEFAULT_TIMEOUT,
                   metavar="SECONDS", help="seconds to wait for the answer")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_login)
