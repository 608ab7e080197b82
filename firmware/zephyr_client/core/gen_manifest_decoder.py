"""Generate the core's manifest decoder (generated/) from sota_manifest.cddl with zcbor.

Usage: python3 gen_manifest_decoder.py [OUT_DIR]   (default: generated/ next to this file)

The output is committed, as Zephyr does with its own zcbor decoders, so a firmware build needs
no Python; tests/firmware/test_manifest_cddl.py regenerates it and fails when the committed
files differ (the CDDL changed without regenerating, or another zcbor version is installed).
Prints the path of the zcbor C runtime (include/ and src/) that matches the generated code.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CDDL = HERE / "sota_manifest.cddl"
ENTRY_TYPES = ("SOTA_COSE_Sign1", "SOTA_Protected", "SOTA_Manifest")
ZCBOR_VERSION = "0.9.1"  # the runtime the generated code is written for (pyproject pins it)
HEADER = "Generated from sota_manifest.cddl by gen_manifest_decoder.py: do not edit."


def load_zcbor() -> object:
    """zcbor's module, with cbor2 >= 6 made to look like the cbor2 it was written for."""
    import cbor2

    if not hasattr(cbor2, "CBORDecodeValueError"):
        # zcbor 0.9.1 imports this name only to catch it while reading CBOR input files;
        # cbor2 6 folded it into CBORDecodeError.
        cbor2.CBORDecodeValueError = cbor2.CBORDecodeError  # type: ignore[attr-defined]
    import zcbor

    return zcbor


def generate(out: Path) -> list[Path]:
    """Write sota_manifest_decode.{c,h} and sota_manifest_decode_types.h into ``out``."""
    zcbor = load_zcbor()
    installed = (Path(zcbor.__file__).parent / "zcbor" / "VERSION").read_text().strip()
    if installed != ZCBOR_VERSION:
        raise SystemExit(f"zcbor {installed} is installed; the core is generated with "
                         f"{ZCBOR_VERSION} (pip install zcbor=={ZCBOR_VERSION})")
    out.mkdir(parents=True, exist_ok=True)
    c, h = out / "sota_manifest_decode.c", out / "sota_manifest_decode.h"
    argv = ["zcbor", "code", "--cddl", str(CDDL), "--decode", "--short-names",
            "--entry-types", *ENTRY_TYPES, "--output-c", str(c), "--output-h", str(h),
            "--file-header", HEADER]
    saved = sys.argv
    sys.argv = argv
    try:
        zcbor.main()  # type: ignore[attr-defined]
    finally:
        sys.argv = saved
    return [c, h, out / "sota_manifest_decode_types.h"]


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: gen_manifest_decoder.py [OUT_DIR]")
    generate(Path(sys.argv[1]) if len(sys.argv) == 2 else HERE / "generated")
