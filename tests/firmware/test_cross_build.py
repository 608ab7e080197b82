"""The C core cross-compiled for Cortex-M4 (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os).

The core (with the decoder zcbor generated from the CDDL) and the zcbor runtime are compiled;
mbed TLS is compiled against (its PSA headers) but not built, as Debian ships it for the host
only (firmware/zephyr_client/core/README.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.firmware.conftest import run_make


def test_core_cross_compiles_for_cortex_m4_and_reports_its_size(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is needed: run the README's test command (scripts/test.sh)")
    proc = run_make(tmp_path, "size")
    core, zcbor = tmp_path / "arm" / "libsota_core.a", tmp_path / "arm" / "libzcbor.a"
    assert core.is_file() and zcbor.is_file()
    totals = [[int(x) for x in ln.split()[:3]] for ln in proc.stdout.splitlines()
              if ln.strip().endswith("(TOTALS)")]
    assert len(totals) == 2, proc.stdout
    (text, data, bss), (ztext, zdata, zbss) = totals
    report = "\n".join(ln.split(" (ex ")[0] for ln in proc.stdout.splitlines()
                       if not ln.startswith(("make", "arm-none-eabi-", "ln ", "rm ")))
    (tmp_path / "size.txt").write_text(report + "\n")
    print(f"C core for Cortex-M4 (-Os): text={text} data={data} bss={bss} bytes; "
          f"zcbor runtime: text={ztext} bytes\n{report}")
    assert 2_000 < text < 64_000  # the whole verifier must stay small enough for a MCU
    assert data + bss + zdata + zbss < 4_096  # no large static buffers
    # Every hash and signature goes to PSA Crypto: the core calls it and defines none of it.
    symbols = subprocess.run(["arm-none-eabi-nm", str(core)], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    undefined = {ln.split()[-1] for ln in symbols if ln.strip().startswith("U ")}
    defined = {ln.split()[-1] for ln in symbols if len(ln.split()) == 3}
    assert {"psa_hash_compute", "psa_verify_hash", "psa_import_key"} <= undefined
    assert {"cbor_decode_SOTA_COSE_Sign1", "cbor_decode_SOTA_Manifest"} <= defined
    assert not any("sha256_transform" in s or "ed25519" in s or "p256" in s for s in defined)
