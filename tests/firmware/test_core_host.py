"""The C core on the host: its unit tests (power-loss test included) under ASan and UBSan."""

from __future__ import annotations

import subprocess

import pytest

from tests.firmware.conftest import CoreBuild, run_make


@pytest.fixture(scope="module")
def unit_run(core_build: CoreBuild) -> subprocess.CompletedProcess[str]:
    """One run of `make test` (builds vectors with ota, runs the sanitized unit tests)."""
    return run_make(core_build.build_dir, "test")


def test_core_unit_tests_pass_under_address_and_undefined_sanitizers(
    unit_run: subprocess.CompletedProcess[str],
) -> None:
    out = unit_run.stdout
    print(out)
    assert "0 failed checks" in out
    for suite in ("crypto", "cbor_manifest", "wasm", "slots", "writer"):
        assert f"PASS {suite}" in out, f"suite {suite} did not pass:\n{out}"
    assert "runtime error" not in unit_run.stderr
    assert "AddressSanitizer" not in unit_run.stderr


def test_power_loss_is_cut_at_every_flash_operation_of_two_swaps(
    unit_run: subprocess.CompletedProcess[str],
) -> None:
    lines = [ln for ln in unit_run.stdout.splitlines() if ln.startswith("power-loss:")]
    assert len(lines) == 2, unit_run.stdout
    for ln in lines:
        # erase + writes of the slot, erase + write of the record: every one is a cut point
        assert int(ln.split()[1]) >= 4, ln
