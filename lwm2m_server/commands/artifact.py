"""``lwm2m-server artifact add|inspect|list``: store, check and list OTA artifacts.

``add`` goes through ``ingest_artifact`` (the same path as the REST upload); ``inspect`` says
what a file is and whether it verifies, without storing anything.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ota.inspection import ARTIFACT_KINDS, inspect_artifact
from ota.store import DEFAULT_MAX_SIZE, ArtifactStore

from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import CommandError, cli_errors, read_file, read_public_key

__all__ = ["register"]

SOTA_KEY_ENV = "LWM2M_SOTA_PUBLIC_KEY"
_NO_SOTA_KEY = ("no SOTA public key: pass --key PUBLIC.pem, set LWM2M_SOTA_PUBLIC_KEY, or start "
                "the server once in this data folder (it creates keys/sota-signing.pub.pem)")


@cli_errors
def _add(args: argparse.Namespace) -> int:
    from ..store.artifacts import ArtifactError, ingest_artifact
    from ..store.db import init_db, make_engine

    settings = settings_for(args, db_url=args.db, artifacts_dir=args.artifacts_dir)
    key_path = args.key or (settings.sota_public_key if args.kind == "sota" else None)
    if args.kind == "sota" and key_path is None:
        raise CommandError(_NO_SOTA_KEY)
    key = read_public_key(key_path) if key_path else None
    store = ArtifactStore(settings.artifacts_dir, max_size=args.max_size)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        try:
            with open(args.file, "rb") as f:
                result = ingest_artifact(
                    engine, store, f, kind=args.kind, name=args.name, version=args.version,
                    sota_public_key=key if args.kind == "sota" else None,
                    firmware_public_key=key if args.kind == "firmware" else None,
                )
        except ArtifactError as e:
            raise CommandError(str(e)) from None
    finally:
        engine.dispose()
    print(json.dumps({**result.artifact.summary(), "created": result.created}))
    return 0


@cli_errors
def _inspect(args: argparse.Namespace) -> int:
    data = read_file(args.file)
    key = read_public_key(args.key) if args.key else None
    info = inspect_artifact(data, args.kind, public_key=key, slot_size=args.slot_size,
                            installed_version=args.installed_version)
    print(json.dumps({"file": args.file, "ok": True, **info}, indent=2))
    return 0


@cli_errors
def _list(args: argparse.Namespace) -> int:
    from ..store.artifacts import list_artifacts
    from ..store.db import init_db, make_engine

    settings = settings_for(args, db_url=args.db)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        rows = list_artifacts(engine, args.kind)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([r.summary() for r in rows]))
        return 0
    print(f"{'id':>4}  {'kind':<8} {'name':<24} {'version':<12} {'size':>9}  sha256")
    for r in rows:
        print(f"{r.id:>4}  {r.kind:<8} {r.name:<24} {r.version:<12} {r.size:>9}  {r.sha256}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``artifact add|inspect|list`` to the CLI."""
    p = subparsers.add_parser("artifact", help="firmware images, Wasm models, SOTA packages")
    sub = p.add_subparsers(dest="artifact_command", metavar="ACTION", required=True)
    db_help = "database URL (default: LWM2M_DB_URL, else lwm2m.db in the data folder)"

    a = sub.add_parser("add", help="check a file and add it to the artifact store")
    a.add_argument("file")
    a.add_argument("--kind", required=True, choices=ARTIFACT_KINDS)
    a.add_argument("--name", required=True)
    a.add_argument("--version", required=True)
    a.add_argument("--db", default=None, help=db_help)
    a.add_argument("--artifacts-dir", default=None,
                   help="artifact folder (default: LWM2M_ARTIFACTS_DIR, else artifacts/ in the "
                        "data folder)")
    add_data_dir_arg(a)
    a.add_argument("--key", help=f"public key PEM: verifies SOTA packages (default: "
                   f"${SOTA_KEY_ENV}, else the data folder's key) and MCUboot signatures")
    a.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE,
                   help=f"largest accepted file in bytes (default {DEFAULT_MAX_SIZE})")
    a.set_defaults(func=_add)

    i = sub.add_parser("inspect", help="say what a file is and whether it verifies")
    i.add_argument("file")
    i.add_argument("--kind", choices=ARTIFACT_KINDS, help="default: detected from the file")
    i.add_argument("--key", help="public key PEM for signature checks")
    i.add_argument("--slot-size", type=int, help="receiver's model slot size (SOTA)")
    i.add_argument("--installed-version", help="refuse SOTA packages not newer than this")
    i.set_defaults(func=_inspect)

    ls = sub.add_parser("list", help="list stored artifacts")
    ls.add_argument("--kind", choices=ARTIFACT_KINDS)
    ls.add_argument("--db", default=None, help=db_help)
    add_data_dir_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
