"""``lwm2m-server artifact add|list|show|delete|inspect``: store, list, show, delete and check OTA
artifacts.

``add``, ``list``, ``show`` and ``delete`` talk to a running server over REST (``--server``/``--token``,
see ``remote``); with ``--db`` they work on a database directly, ``add`` through
``ingest_artifact`` (the same path as the REST upload). ``inspect`` stays local: it says
what a file is and whether it verifies, without storing anything: it runs every check that can
run with what it was given (a SOTA package's format, sizes, payload SHA-256, Wasm module and
version order need no key; the signature needs ``--key``) and reports each one, ``ok`` false and
exit code 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import remote
from ._help import add_parser
from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import cli_errors

__all__ = ["register", "sota_checks"]

SOTA_KEY_ENV = "LWM2M_SOTA_PUBLIC_KEY"
ARTIFACT_KINDS = ("firmware", "model", "sota")  # ota.inspection.ARTIFACT_KINDS, without importing it
DEFAULT_MAX_SIZE = 64 * 1024 * 1024  # ota.store.DEFAULT_MAX_SIZE (a test keeps the two equal)
_NO_SOTA_KEY = ("no SOTA public key: pass --key PUBLIC.pem, set LWM2M_SOTA_PUBLIC_KEY, or start "
                "the server once in this data folder (it creates keys/sota-signing.pub.pem)")


@remote.fail
def _add(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _add_local(args)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise remote.RemoteError(f"cannot read {args.file}: {e.strerror or e}") from None
    client = remote.client_from_args(args)
    row = client.upload("/artifacts", {"kind": args.kind, "name": args.name,
                                       "version": args.version},
                        os.path.basename(args.file), data)
    # The same bytes with the same fields again: 200 and the stored artifact (not an error).
    remote.print_json({**row, "created": client.last_status == 201})
    return 0


@cli_errors
def _add_local(args: argparse.Namespace) -> int:
    from ota.store import ArtifactStore

    from ..store.artifacts import ArtifactError, ingest_artifact
    from ..store.db import init_db, make_engine
    from ._ota_cli import CommandError, read_public_key

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


def sota_checks(data: bytes, public_key: Any = None, *, slot_size: int | None = None,
                installed_version: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every check of a SOTA package that can run with what is given, in the order of
    docs/sota-format.md: (what the package says, {check: "passed" | "failed: ..." |
    "skipped: ..."}). Only the signature needs ``public_key``."""
    import hashlib

    from ota import version as ota_version
    from ota.errors import OtaError
    from ota.sota import parse_package, verify_package
    from ota.wasm import inspect_module

    checks: dict[str, str] = {}
    try:
        pkg = parse_package(data)
    except OtaError as e:
        return {}, {"format": f"failed: {e}"}
    checks["format"] = "passed"
    m = pkg.manifest
    info: dict[str, Any] = {"format": "sota", "manifest": m.to_dict(),
                            "kid": None if pkg.kid is None else pkg.kid.hex()}

    def check(name: str, ok: bool, why: str) -> None:
        checks[name] = "passed" if ok else f"failed: {why}"

    check("size", m.payload_size <= m.slot_size and (slot_size is None or m.payload_size <= slot_size),
          f"payload of {m.payload_size} bytes exceeds the "
          f"{min(m.slot_size, slot_size or m.slot_size)}-byte slot")
    if public_key is None:
        checks["signature"] = "skipped: no --key"
    else:
        try:
            verify_package(data, public_key)
            checks["signature"] = "passed"
        except OtaError as e:
            # verify_package stops at its first failure, in the documented order: the slot
            # size check comes before the signature, every other one after it.
            from ota.sota import SotaOversizeError, SotaSignatureError

            if isinstance(e, SotaSignatureError):
                checks["signature"] = f"failed: {e}"
            elif isinstance(e, SotaOversizeError):
                checks["signature"] = "skipped: the size check failed first"
            else:
                checks["signature"] = "passed"
    check("sha256", hashlib.sha256(pkg.payload).digest() == m.sha256,
          "payload SHA-256 differs from the manifest (tampered payload)")
    if installed_version is None:
        checks["version"] = "skipped: no --installed-version"
    else:
        try:
            newer = ota_version.parse(m.version) > ota_version.parse(installed_version)
            check("version", newer, f"version {m.version} is not greater than the installed "
                                    f"{installed_version}")
        except OtaError as e:
            checks["version"] = f"failed: {e}"
    try:
        inspect_module(pkg.payload, required_exports=m.exports)
        checks["wasm"] = "passed"
    except OtaError as e:
        checks["wasm"] = f"failed: {e}"
    info["signature_verified"] = checks["signature"] == "passed"
    return info, checks


@cli_errors
def _inspect(args: argparse.Namespace) -> int:
    import hashlib

    from ota.errors import OtaError
    from ota.inspection import detect_kind, inspect_artifact

    from ._ota_cli import read_file, read_public_key

    data = read_file(args.file)
    key = read_public_key(args.key) if args.key else None
    kind = args.kind or detect_kind(data)
    head = {"file": args.file, "kind": kind, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
    if kind == "sota":
        info, checks = sota_checks(data, key, slot_size=args.slot_size,
                                   installed_version=args.installed_version)
    else:
        try:
            info = inspect_artifact(data, kind, public_key=key, slot_size=args.slot_size,
                                    installed_version=args.installed_version)
            checks = {kind: "passed"}
        except OtaError as e:
            info, checks = {}, {kind: f"failed: {e}"}
        if kind == "firmware" and detect_kind(data) != "firmware":
            checks["kind"] = f"failed: the file is a {detect_kind(data)}, not firmware"
    failed = [f"{name} check {c}" for name, c in checks.items() if c.startswith("failed")]
    print(json.dumps({**head, **{k: v for k, v in info.items() if k not in head},
                      "ok": not failed, "checks": checks}, indent=2))
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
    return 1 if failed else 0


def _print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'id':>4}  {'kind':<8} {'name':<24} {'version':<12} {'size':>9}  sha256")
    for r in rows:
        print(f"{r['id']:>4}  {r['kind']:<8} {r['name']:<24} {r['version']:<12} {r['size']:>9}  "
              f"{r['sha256']}")


@remote.fail
def _list(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _list_local(args)
    rows = remote.client_from_args(args).get("/artifacts", kind=args.kind, limit=args.limit)
    if args.json:
        remote.print_json(rows)
    else:
        _print_rows(rows)
    return 0


@remote.fail
def _show(args: argparse.Namespace) -> int:
    row = remote.client_from_args(args).get(f"/artifacts/{args.id}")
    if args.json:
        remote.print_json(row)
    else:
        _print_rows([row])
    return 0


@remote.fail
def _delete(args: argparse.Namespace) -> int:
    row = remote.client_from_args(args).call("DELETE", f"/artifacts/{args.id}")
    if args.json:
        remote.print_json(row)
    else:
        print(f"deleted artifact {row['id']}: {row['kind']} {row['name']} {row['version']} "
              f"({row['sha256']})")
    return 0


@cli_errors
def _list_local(args: argparse.Namespace) -> int:
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
    _print_rows([r.summary() for r in rows])
    return 0


def register(subparsers: Any) -> None:
    """Add ``artifact add|list|show|delete|inspect`` to the CLI."""
    p = add_parser(subparsers, "artifact", help="firmware images, Wasm models, SOTA packages")
    sub = p.add_subparsers(dest="artifact_command", metavar="ACTION", required=True)

    a = add_parser(sub, "add", help="upload a file to the server's artifact store (it checks it)")
    a.add_argument("file")
    a.add_argument("--kind", required=True, choices=ARTIFACT_KINDS)
    a.add_argument("--name", required=True)
    a.add_argument("--version", required=True)
    a.add_argument("--db", default=None, help=remote.DB_HELP)
    a.add_argument("--artifacts-dir", default=None,
                   help="with --db: artifact folder (default: LWM2M_ARTIFACTS_DIR, else "
                        "artifacts/ in the data folder)")
    add_data_dir_arg(a)
    a.add_argument("--key", help=f"with --db: public key PEM that verifies SOTA packages "
                   f"(default: ${SOTA_KEY_ENV}, else the data folder's key) and MCUboot "
                   "signatures; a server uses its own")
    a.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE,
                   help="with --db: largest accepted file in bytes")
    a.add_argument("--json", action="store_true",
                   help="accepted for symmetry: the answer is always one JSON object")
    remote.add_remote_args(a)
    a.set_defaults(func=_add)

    ls = add_parser(sub, "list", help="list stored artifacts, newest first")
    ls.add_argument("--kind", choices=ARTIFACT_KINDS)
    ls.add_argument("--limit", type=int, default=100, help="at most this many (remote)")
    ls.add_argument("--db", default=None, help=remote.DB_HELP)
    add_data_dir_arg(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    remote.add_remote_args(ls)
    ls.set_defaults(func=_list)

    s = add_parser(sub, "show", help="one stored artifact with its metadata")
    s.add_argument("id", type=int, help="artifact id")
    s.add_argument("--json", action="store_true", help="print JSON")
    remote.add_remote_args(s)
    s.set_defaults(func=_show)

    d = add_parser(sub, "delete", help="delete a stored artifact no deployment needs any more "
                                       "(refused while one runs, is paused or has devices "
                                       "updating)")
    d.add_argument("id", type=int, help="artifact id")
    d.add_argument("--json", action="store_true", help="print the deleted artifact as JSON")
    remote.add_remote_args(d)
    d.set_defaults(func=_delete)

    i = add_parser(sub, "inspect", help="say what a local file is and whether it verifies "
                                        "(no server, nothing stored)")
    i.add_argument("file")
    i.add_argument("--kind", choices=ARTIFACT_KINDS, help="default: detected from the file")
    i.add_argument("--key", help="public key PEM for signature checks")
    i.add_argument("--slot-size", type=int, help="receiver's model slot size (SOTA)")
    i.add_argument("--installed-version", help="refuse SOTA packages not newer than this")
    i.add_argument("--json", action="store_true", help="accepted for symmetry: the report is "
                   "always JSON")
    i.set_defaults(func=_inspect)
