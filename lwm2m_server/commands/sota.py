"""``lwm2m-server sota build``: sign a new model for a firmware's model section.

Takes the slot size from the ELF's model section, or from ``--slot-size`` when a pipeline has
no firmware ELF at hand; checks the module (and runs its self-test here, as devices will),
signs the package (docs/sota-format.md) and optionally writes the ELF with the new model in
place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ota import elf as ota_elf
from ota import sota as ota_sota

from ._datadir import add_data_dir_arg, settings_for
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
    if args.elf is None and args.slot_size is None:
        raise CommandError("give the model slot size: --elf FIRMWARE.elf (read from its model "
                           "section) or --slot-size BYTES")
    if args.out_elf and args.elf is None:
        raise CommandError("--out-elf needs --elf")
    elf_bytes = read_file(args.elf, "ELF") if args.elf is not None else None
    module = read_file(args.model, "model")
    key_path = args.key or settings_for(args).sota_signing_key
    if key_path is None:
        raise CommandError("no signing key: pass --key PRIVATE.pem, set LWM2M_SOTA_SIGNING_KEY, "
                           "or start the server once in this data folder (it creates "
                           "keys/sota-signing.pem)")
    key = read_private_key(key_path)
    if ota_sota.signature_alg(key) != ota_sota.ALG_ES256:
        print("warning: Zephyr devices verify ES256 (P-256) packages only and will refuse "
              "this Ed25519-signed package (docs/sota-format.md)", file=sys.stderr)
    slot_size = args.slot_size
    if elf_bytes is not None:
        section_size = ota_elf.find_section(elf_bytes, args.section).size
        if slot_size is not None and slot_size != section_size:
            raise CommandError(f"--slot-size {slot_size} differs from the ELF's {args.section} "
                               f"section ({section_size} bytes): give one of them")
        slot_size = section_size
    if slot_size <= 0:
        raise CommandError(f"--slot-size must be positive, got {slot_size}")
    selftest = None
    if (args.selftest_input is None) != (args.selftest_expected is None):
        raise CommandError("--selftest-input and --selftest-expected go together")
    if args.selftest_input is not None:
        from ota.selftest import check_selftest  # wasmtime: only when a self-test runs

        selftest = ota_sota.SelfTest.of((_floats(args.selftest_input), args.selftest_expected))
        check_selftest(module, selftest)  # devices would refuse the package: refuse it here
    if args.version is None:
        print(f"warning: no --version given, using {DEFAULT_VERSION}", file=sys.stderr)
    package = ota_sota.build_package(
        module, name=args.name or Path(args.model).stem, version=args.version or DEFAULT_VERSION,
        private_key=key, slot_size=slot_size, section=args.section, selftest=selftest,
    )
    new_elf = (ota_elf.rewrite_section(elf_bytes, module, args.section)
               if args.out_elf and elf_bytes is not None else None)
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
    b = sub.add_parser("build", help="sign a Wasm model into a SOTA package")
    b.add_argument("--elf", help="firmware ELF with the model section (gives the slot size)")
    b.add_argument("--slot-size", type=int,
                   help="model slot size in bytes, without an ELF (the simulator's is 65536)")
    b.add_argument("--model", required=True, help="the new Wasm module")
    b.add_argument("--key", help="private key PEM: P-256 for Zephyr devices (they verify ES256 only), or Ed25519 "
                                  "for simulated ones (default: "
                                 "LWM2M_SOTA_SIGNING_KEY, else keys/sota-signing.pem in the data "
                                 "folder)")
    add_data_dir_arg(b)
    b.add_argument("-o", "--output", required=True, help="package file to write")
    b.add_argument("--name", help="model name (default: the model file's name)")
    b.add_argument("--version", help=f"MAJOR.MINOR.PATCH (default {DEFAULT_VERSION})")
    b.add_argument("--section", default=ota_elf.DEFAULT_SECTION,
                   help="model section name (default .wasm_model)")
    b.add_argument("--selftest-input", help="comma-separated input features, e.g. 1,0.5,0.2,0.1")
    b.add_argument("--selftest-expected", type=int, help="class the model must answer")
    b.add_argument("--out-elf", help="also write the ELF with the new model in its section")
    b.set_defaults(func=_build)
