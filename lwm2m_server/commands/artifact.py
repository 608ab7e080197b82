"""``lwm2m-server artifact add|inspect|list``: store, check and list OTA artifacts.

``add`` goes through ``ingest_artifact`` (the same path as the REST upload); ``inspect`` says
what a file is and whether it verifies, without storing anything: it runs every check that can
run with what it was given (a SOTA package's format, sizes, payload SHA-256, Wasm module and
version order need no key; the signature needs ``--key``) and reports each one, ``ok`` false and
exit code 1 when any failed.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["register", "sota_checks"]

SOTA_KEY_ENV = "LWM2M_SOTA_PUBLIC_KEY"
ARTIFACT_KINDS = ("firmware", "model", "sota")  # ota.inspection.ARTIFACT_KINDS, without importing it
DEFAULT_MAX_SIZE = 64 * 1024 * 1024  # ota.store.DEFAULT_MAX_SIZE (a test keeps the two equal)
_NO_SOTA_KEY = ("no SOTA public key: pass --key PUBLIC.pem, set LWM2M_SOTA_PUBLIC_KEY, or start "
                "the server once in this data folder (it creates keys/sota-signing.pub.pem)")


def _cli(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``cli_errors`` applied when the command runs (``--help`` needs no OTA libraries)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from ._ota_cli import cli_errors

        return cli_errors(func)(args)
    return run


@_cli
def _add(args: argparse.Namespace) -> int:
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


@_cli
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


@_cli
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
