"""``lwm2m-server run``: CoAP and HTTP in one process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..datadir import prepare_server_data
    from ..model import DefinitionError
    from ..runner import run

    flags = dict(coap_host=args.coap_host, coap_port=args.coap_port, coaps_port=args.coaps_port,
                 security=args.security, coaps_bootstrap_port=args.coaps_bootstrap_port,
                 http_host=args.http_host, http_port=args.http_port, db_url=args.db,
                 objects_dirs=args.objects, log_level=args.log_level)
    try:
        settings = settings_for(args, **flags)
        created = prepare_server_data(settings)
        for what in created:
            print(f"lwm2m-server: created {what}", file=sys.stderr)
        if created:  # the new key files are part of the settings now
            settings = settings_for(args, quiet=True, **flags)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                             for err in e.errors())
        print(f"error: bad settings: {problems}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: data folder: {e}", file=sys.stderr)
        return 2
    from ..config import SettingsError
    from ..security.keybox import SecretError

    try:
        return run(settings)
    except DefinitionError as e:
        print(f"error: object definitions: {e}", file=sys.stderr)
        return 2
    except (SecretError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def register(subparsers: Any) -> None:
    """Add ``run`` to the CLI."""
    p = subparsers.add_parser("run", help="run the server (CoAP + HTTP) until interrupted",
                              description="Run the LwM2M server: CoAP over UDP and the HTTP "
                                          "REST API in one process. Flags override LWM2M_* "
                                          "environment variables.")
    p.add_argument("--coap-host", default=None, help="CoAP bind address (default :: = IPv6 and IPv4)")
    p.add_argument("--coap-port", type=int, default=None, help="CoAP UDP port (default 5683; 0 = any free)")
    p.add_argument("--coaps-port", type=int, default=None,
                   help="CoAP over DTLS (coaps) UDP port on the same host (default 5684; 0 = any "
                        "free; LWM2M_COAPS=false turns DTLS off)")
    p.add_argument("--coaps-bootstrap-port", type=int, default=None,
                   help="an extra coaps port serving only the bootstrap interface, for clients "
                        "that keep one DTLS session per server address (e.g. 5784)")
    p.add_argument("--security", choices=("optional", "required"), default=None,
                   help="optional (default): plain CoAP stays open to endpoints without "
                        "credentials; required: DTLS only")
    p.add_argument("--http-host", default=None, help="HTTP bind address (default 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=None, help="HTTP port (default 8080; 0 = any free)")
    p.add_argument("--db", default=None,
                   help="database URL: sqlite:///PATH (default: lwm2m.db in the data folder) or "
                        "postgresql+psycopg://user@host/db")
    add_data_dir_arg(p)
    p.add_argument("--objects", action="append", default=None, metavar="DIR",
                   help="folder of extra OMA DDF *.xml object definitions (repeatable)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)
