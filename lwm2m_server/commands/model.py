"""``lwm2m-server model build``: a trained Python model -> a model Wasm module (-> SOTA package).

A thin layer over ``ota.modelbuild`` (docs/models.md): load, build, check parity on CSV rows,
print size, peak memory and the instruction count of one inference, and optionally sign a SOTA
package with the data folder's key. scikit-learn, emlearn and wasmtime load only when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import CommandError, cli_errors, read_private_key

__all__ = ["register"]

DEFAULT_SLOT_SIZE = 65536  # ota.modelbuild.DEFAULT_SLOT_SIZE, kept here so --help stays light
DEFAULT_MIN_AGREEMENT = 0.99

_DESCRIPTION = """\
Build a trained model into a Wasm module with the project's model interface
(docs/model-abi.md), through emlearn and clang/lld for wasm32.

MODEL is a scikit-learn estimator saved with joblib or pickle (DecisionTreeClassifier,
RandomForestClassifier, ExtraTreesClassifier, MLPClassifier, GaussianNB) or a Keras 3
.keras file of a Sequential model of Dense layers.

Loading a joblib/pickle file runs code the file's author chose: build only files you
trust (your own training runs). .keras files are read as data (config.json and weights),
without Keras.
"""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _print_report(result: Any, out: Path, slot_size: int, extra: list[str]) -> None:
    r = result.report()
    print(f"model: {r['model']}, {r['features']} features, {len(r['classes'])} classes")
    print(f"wasm: {out}, {r['wasm_size']} bytes (model slot {slot_size} bytes)")
    print(f"peak memory: {r['peak_memory']} bytes (static {r['static_memory']}, stack "
          f"{r['stack_used']}) of {r['memory_pages'] * 65536} bytes of linear memory")
    print(f"one inference: {r['instructions_per_inference']} Wasm instructions "
          f"(max {r['instructions_max']}; wasmtime fuel)")
    check = r.get("check")
    if check:
        print(f"check: {check['rows']} rows, agreement {_pct(check['agreement'])}, accuracy "
              f"{_pct(check['accuracy'])} (Python model: {_pct(check['python_accuracy'])})")
    for line in extra:
        print(line)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise CommandError(f"--selftest-input {text!r}: expected comma-separated numbers") from None


@cli_errors
def _build(args: argparse.Namespace) -> int:
    from ota.modelbuild import build_model, sota_package

    if args.sota and not args.version:
        raise CommandError("--sota needs --version (MAJOR.MINOR.PATCH), newer than the version "
                           "the devices run: the default model is 1.0.0")
    if (args.selftest_input is None) != (args.selftest_expected is None):
        raise CommandError("--selftest-input and --selftest-expected go together")
    key = None
    if args.sota:  # find the key before the build, so a missing one fails fast
        key_path = args.key
        if key_path is None:
            key_path = settings_for(args).sota_signing_key
        if key_path is None:
            raise CommandError("--sota needs a signing key: pass --key PRIVATE.pem, set "
                               "LWM2M_SOTA_SIGNING_KEY, or start the server once in this data "
                               "folder (it creates keys/sota-signing.pem)")
        key = read_private_key(key_path)
    result = build_model(args.model, check=args.check, min_agreement=args.min_agreement,
                         slot_size=args.slot_size, memory_pages=args.memory_pages)
    stem = Path(args.model).stem
    out = Path(args.output or f"{stem}.wasm")
    out.write_bytes(result.wasm)
    extra: list[str] = []
    report = result.report()
    report["output"] = str(out)
    if args.sota:
        selftest = None
        if args.selftest_input is not None:
            selftest = (_floats(args.selftest_input), args.selftest_expected)
        package = sota_package(result, private_key=key, name=args.name or stem,
                               version=args.version, slot_size=args.slot_size, selftest=selftest)
        from ota.sota import parse_package

        manifest = parse_package(package).manifest
        sota_out = Path(args.sota_output or out.with_suffix(".sota"))
        sota_out.write_bytes(package)
        st = manifest.selftest
        extra.append(f"sota: {sota_out}, {len(package)} bytes, {manifest.name} {manifest.version}"
                     + (f", self-test {list(st.input)} -> class {st.expected}" if st else
                        ", no self-test (give --check data or --selftest-input)"))
        report["sota"] = {"output": str(sota_out), "size": len(package), **manifest.to_dict()}
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(result, out, args.slot_size, extra)
    return 0


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add ``model build`` to the CLI."""
    p = subparsers.add_parser("model", help="trained Python models to Wasm model modules")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a trained model into a model Wasm module",
                       description=_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("model", metavar="MODEL",
                   help="trained model: joblib/pickle file (trusted files only) or .keras file")
    b.add_argument("-o", "--output", help="Wasm file to write (default: MODEL's name + .wasm)")
    b.add_argument("--check", metavar="DATA.csv",
                   help="CSV rows (features, optional label column) run through the Python "
                        "model and the Wasm module; prints agreement and accuracy")
    b.add_argument("--min-agreement", type=_unit_interval, default=DEFAULT_MIN_AGREEMENT,
                   help=f"fail when agreement is below this (default {DEFAULT_MIN_AGREEMENT})")
    b.add_argument("--slot-size", type=int, default=DEFAULT_SLOT_SIZE,
                   help=f"model slot size in bytes of the devices (default {DEFAULT_SLOT_SIZE})")
    b.add_argument("--memory-pages", type=int, default=1,
                   help="64 KiB pages of linear memory a model may use (default 1)")
    b.add_argument("--sota", action="store_true", help="also write a signed SOTA package")
    b.add_argument("--key", help="private key PEM to sign with (default: LWM2M_SOTA_SIGNING_KEY, "
                                 "else keys/sota-signing.pem in the data folder)")
    b.add_argument("--name", help="model name in the package (default: MODEL's name)")
    b.add_argument("--version", help="package version MAJOR.MINOR.PATCH (needed with --sota)")
    b.add_argument("--sota-output", help="package file (default: the Wasm file's name + .sota)")
    b.add_argument("--selftest-input", help="self-test features, e.g. 5.1,3.5,1.4,0.2 (default: "
                                            "a --check row both models agree on)")
    b.add_argument("--selftest-expected", type=int, help="class index the self-test must answer")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    add_data_dir_arg(b)
    b.set_defaults(func=_build)
