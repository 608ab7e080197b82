"""The C core cross-compiled for Cortex-M4 (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.firmware.conftest import run_make


def test_core_cross_compiles_for_cortex_m4_and_reports_its_size(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is needed: run the README's test command (scripts/test.sh)")
    proc = run_make(tmp_path, "size")
    lib = tmp_path / "arm" / "libsota_core.a"
    assert lib.is_file() and lib.stat().st_size > 0
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.strip().endswith("(TOTALS)")]
    assert rows, proc.stdout
    text, data, bss = (int(x) for x in rows[0][:3])
    lines = proc.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:3] == ["text", "data", "bss"])
    report = "\n".join(ln.split(" (ex ")[0] for ln in lines[start:] if not ln.startswith("make"))
    (tmp_path / "size.txt").write_text(report + "\n")
    print(f"C core for Cortex-M4 (-Os): text={text} data={data} bss={bss} bytes\n{report}")
    assert 2_000 < text < 64_000  # the whole verifier must stay small enough for a MCU
    assert data + bss < 4_096     # no large static buffers in the core itself
