"""``lwm2m-server run``: CoAP and HTTP in one process (or ``--workers N`` processes sharing the
ports) until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["register"]


def _notes(settings: Any, json_logs: bool) -> Callable[[str], None]:
    """Where start-up notes go: a log record with JSON logs, else a plain stderr line."""
    if not json_logs:
        return lambda text: print(f"lwm2m-server: {text}", file=sys.stderr)
    import logging

    from ..logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    return logging.getLogger("lwm2m_server.datadir").info


class _WorkersError(ValueError):
    """``--workers N`` asked for with settings that cannot serve N processes."""


def _check_workers(settings: Any) -> None:
    """N > 1 workers share the fleet through PostgreSQL and the ports through SO_REUSEPORT."""
    n = settings.workers
    if n <= 1:
        return
    if not settings.shares_ports:
        raise _WorkersError(f"--workers {n} needs PostgreSQL (--db postgresql+psycopg://...): "
                            "SQLite serves one process")
    zero = [name for name, port in (("--coap-port", settings.coap_port),
                                    ("--coaps-port", settings.coaps_bind_port),
                                    ("--coaps-bootstrap-port", settings.coaps_bootstrap_port),
                                    ("--http-port", settings.http_port)) if port == 0]
    if zero:
        raise _WorkersError(f"--workers {n} needs fixed ports to share: {', '.join(zero)} "
                            "is 0 (any free port), which every worker would pick differently")


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..datadir import prepare_server_data
    from ..model import DefinitionError
    from ..runner import run

    flags = dict(coap_host=args.coap_host, coap_port=args.coap_port, coaps_port=args.coaps_port,
                 security=args.security, coaps_bootstrap_port=args.coaps_bootstrap_port,
                 http_host=args.http_host, http_port=args.http_port, db_url=args.db,
                 objects_dirs=args.objects, log_level=args.log_level,
                 log_format=args.log_format, access_log=args.access_log or None,
                 workers=args.workers)
    try:
        # JSON logs: the start-up notes become log records too (a shipper reads JSON lines only).
        json_logs = (args.log_format or os.environ.get("LWM2M_LOG_FORMAT")) == "json"
        settings = settings_for(args, quiet=json_logs, **flags)
        _check_workers(settings)  # before the data folder: a refused command creates nothing
        note = _notes(settings, json_logs)
        if json_logs:
            note(settings.describe())
        created = prepare_server_data(settings)
        for what in created:
            note(f"created {what}")
        if created:  # the new key files are part of the settings now
            settings = settings_for(args, quiet=True, **flags)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                             for err in e.errors())
        print(f"error: bad settings: {problems}", file=sys.stderr)
        return 2
    except _WorkersError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: data folder: {e}", file=sys.stderr)
        return 2
    from ..config import SettingsError
    from ..security.keybox import SecretError

    try:
        if settings.workers > 1:
            from ..supervisor import supervise

            return supervise(settings)
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
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="server processes sharing the ports (SO_REUSEPORT) and the database; "
                        "N > 1 needs PostgreSQL (default: LWM2M_WORKERS or 1; docs/scale.md)")
    p.add_argument("--db", default=None,
                   help="database URL: sqlite:///PATH (default: lwm2m.db in the data folder) or "
                        "postgresql+psycopg://user@host/db")
    add_data_dir_arg(p)
    p.add_argument("--objects", action="append", default=None, metavar="DIR",
                   help="folder of extra OMA DDF *.xml object definitions (repeatable)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                   help="default: LWM2M_LOG_LEVEL or info")
    p.add_argument("--log-format", default=None, choices=["text", "json"],
                   help="json: one JSON object a line, for log shippers (default: "
                        "LWM2M_LOG_FORMAT or text)")
    p.add_argument("--access-log", action="store_true",
                   help="log one line per HTTP request (default: LWM2M_ACCESS_LOG or off)")
    p.set_defaults(func=_run)
