"""``lwm2m-server keys generate|export-c``: signing keys for firmware and SOTA packages.

The private key goes to a PEM file only (mode 0600); the server's database never holds one.
``export-c`` defaults to the data folder's SOTA public key (the one the server made or was
given), so firmware trusts the same key as the server and the simulator.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ota import keys as ota_keys

from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import CommandError, cli_errors, read_public_key

__all__ = ["register"]


@cli_errors
def _generate(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists: refusing to overwrite a key (use --force)")
    key = ota_keys.generate_private_key(args.type)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(ota_keys.private_key_pem(key))
    os.chmod(out, 0o600)
    if args.public_out:
        Path(args.public_out).write_bytes(ota_keys.public_key_pem(key))
    print(f"wrote {args.type} private key to {out} (kid {ota_keys.key_id(key).hex()})",
          file=sys.stderr)
    return 0


@cli_errors
def _export_c(args: argparse.Namespace) -> int:
    key_path = args.key
    if key_path is None:
        key_path = settings_for(args).sota_public_key
        if key_path is None:
            raise CommandError("no --key and no SOTA public key in the data folder: start the "
                               "server once there, set LWM2M_SOTA_PUBLIC_KEY, or pass --key")
    key = read_public_key(key_path)
    if ota_keys.key_kind(key) != "p256":
        print("warning: the firmware's SOTA verifier takes a P-256 key (ES256 only); this "
              "Ed25519 key will not verify any package on the device", file=sys.stderr)
    text = ota_keys.public_key_c_array(key, args.name)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: Any) -> None:
    """Add ``keys generate|export-c`` to the CLI."""
    p = subparsers.add_parser("keys", help="signing keys for firmware images and SOTA packages")
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    g = sub.add_parser("generate", help="generate a private key (PEM, mode 0600)")
    g.add_argument("--type", choices=ota_keys.KEY_KINDS, default="p256",
                   help="key type (default p256: the Zephyr firmware verifies SOTA packages "
                        "with ES256 only, docs/sota-format.md)")
    g.add_argument("-o", "--output", required=True, help="PEM file for the private key")
    g.add_argument("--public-out", help="also write the public key PEM here")
    g.add_argument("--force", action="store_true", help="overwrite an existing file")
    g.set_defaults(func=_generate)

    e = sub.add_parser("export-c", help="print the public key as a C array for the firmware")
    e.add_argument("--key", help="public or private key PEM (default: LWM2M_SOTA_PUBLIC_KEY, "
                                 "else the data folder's keys/sota-signing.pub.pem)")
    add_data_dir_arg(e)
    e.add_argument("--name", default="sota_public_key", help="C identifier (default sota_public_key)")
    e.add_argument("-o", "--output", help="write to this file instead of stdout")
    e.set_defaults(func=_export_c)
