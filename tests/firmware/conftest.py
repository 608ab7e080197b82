"""Fixtures for the firmware tests: the C core built on the host (ASan/UBSan) in this run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "firmware" / "zephyr_client" / "core"


@dataclass(frozen=True)
class CoreBuild:
    """Where the host build of the core put its programs."""

    build_dir: Path
    sota_verify: Path
    unit_tests: Path


def run_make(build_dir: Path, *targets: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the core's Makefile into ``build_dir``; fail the test with make's output if it fails."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.fail("make and gcc are needed: run the README's test command (scripts/test.sh)")
    proc = subprocess.run(
        # -j: the core's sources compile independently (the sanitizer build was the suite's
        # slowest set-up); the Makefile's dependencies order the generated vectors.
        ["make", f"-j{os.cpu_count() or 1}", "-C", str(CORE), f"BUILD={build_dir}",
         f"PYTHON={sys.executable}", *targets],
        capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"make {' '.join(targets)} failed ({proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def core_build(tmp_path_factory: pytest.TempPathFactory) -> CoreBuild:
    """The unit tests and sota_verify, compiled once per session."""
    build_dir = tmp_path_factory.mktemp("fw-core")
    run_make(build_dir, "-j2", "unit", "sota_verify")
    return CoreBuild(build_dir, build_dir / "sota_verify", build_dir / "unit_tests")
