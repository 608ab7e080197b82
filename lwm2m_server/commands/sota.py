"""``lwm2m-server sota build``: sign a new model for a firmware's model section.

Reads the slot size from the ELF's model section, checks the module (and runs its self-test
here, as devices will), signs the package (docs/sota-format.md) and optionally writes the ELF
with the new model in place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ota import elf as ota_elf
from ota import sota as ota_sota
from ota.selftest import check_selftest

from ._ota_cli import CommandError, cli_errors, read_file, read_private_key

__all__ = ["register"]

DEFAULT_VERSION = "1.0.0"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CommandError(f"--selftest-input {text!r}: expected comma-separated numbers") from None


@cli_errors
def _build(args: argparse.Namespace) -> int:
    elf_bytes = read_file(args.elf, "ELF")
    module = read_file(args.model, "model")
    key = read_private_key(args.key)
    if ota_sota.signature_alg(key) != ota_sota.ALG_ES256:
        print("warning: Zephyr devices verify ES256 (P-256) packages only and will refuse "
              "this Ed25519-signed package (docs/sota-format.md)", file=sys.stderr)
    section = ota_elf.find_section(elf_bytes, args.section)
    selftest = None
    if (args.selftest_input is None) != (args.selftest_expected is None):
        raise CommandError("--selftest-input and --selftest-expected go together")
    if args.selftest_input is not None:
        selftest = ota_sota.SelfTest.of((_floats(args.selftest_input), args.selftest_expected))
        check_selftest(module, selftest)  # devices would refuse the package: refuse it here
    if args.version is None:
        print(f"warning: no --version given, using {DEFAULT_VERSION}", file=sys.stderr)
    package = ota_sota.build_package(
        module, name=args.name or Path(args.model).stem, version=args.version or DEFAULT_VERSION,
        private_key=key, slot_size=section.size, section=args.section, selftest=selftest,
    )
    new_elf = ota_elf.rewrite_section(elf_bytes, module, args.section) if args.out_elf else None
    Path(args.output).write_bytes(package)
    if new_elf is not None:
        Path(args.out_elf).write_bytes(new_elf)
    manifest = ota_sota.parse_package(package).manifest
    print(json.dumps({"output": str(args.output), "size": len(package), **manifest.to_dict()}))
    return 0


def register(subparsers: Any) -> None:
    """Add ``sota build`` to the CLI."""
    p = subparsers.add_parser("sota", help="model-only (SOTA) update packages")
    sub = p.add_subparsers(dest="sota_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="sign a Wasm model into a SOTA package for a firmware ELF")
    b.add_argument("--elf", required=True, help="firmware ELF with the model section")
    b.add_argument("--model", required=True, help="the new Wasm module")
    b.add_argument("--key", required=True,
                   help="private key PEM: P-256 for Zephyr devices (they verify ES256 only), "
                        "or Ed25519 for simulated ones")
    b.add_argument("-o", "--output", required=True, help="package file to write")
    b.add_argument("--name", help="model name (default: the model file's name)")
    b.add_argument("--version", help=f"MAJOR.MINOR.PATCH (default {DEFAULT_VERSION})")
    b.add_argument("--section", default=ota_elf.DEFAULT_SECTION,
                   help="model section name (default .wasm_model)")
    b.add_argument("--selftest-input", help="comma-separated input features, e.g. 1,0.5,0.2,0.1")
    b.add_argument("--selftest-expected", type=int, help="class the model must answer")
    b.add_argument("--out-elf", help="also write the ELF with the new model in its section")
    b.set_defaults(func=_build)
