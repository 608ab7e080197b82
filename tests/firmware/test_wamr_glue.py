"""The firmware's WAMR glue and model manager against WAMR built for a Linux host.

Runs only when WAMR_ROOT names a WAMR checkout whose Linux library is built (the manual
command is in firmware/zephyr_client/README.md); WAMR itself is never part of this repository.
Results of the device code are compared with wasmtime running the same modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lwm2m_server.sim.runtime import ModelRunner
from ota import keys
from ota.sota import build_package
from tests.firmware.conftest import CORE, run_make
from tests.firmware.sota_tools import SELFTEST, SLOT, flip, resign

FW = CORE.parent
SAMPLE = [1.0, 0.5, 0.2, 0.1]
ZERO = [0.0, 0.0, 0.0, 0.0]


def _wamr() -> tuple[Path, Path]:
    root = os.environ.get("WAMR_ROOT")
    if not root:
        pytest.skip("WAMR_ROOT is not set: point it at a WAMR checkout with its Linux library "
                    "built (firmware/zephyr_client/README.md, 'WAMR host check')")
    lib = Path(os.environ.get("WAMR_LIB", Path(root) / "product-mini" / "platforms" / "linux"
                              / "build" / "libiwasm.a"))
    header = Path(root) / "core" / "iwasm" / "include" / "wasm_export.h"
    if not header.is_file():
        pytest.skip(f"WAMR_ROOT={root} is not a WAMR checkout (no core/iwasm/include/wasm_export.h)")
    if not lib.is_file():
        pytest.skip(f"{lib} is missing: build WAMR for Linux first (firmware/zephyr_client/"
                    "README.md, 'WAMR host check'), or set WAMR_LIB to the built libiwasm.a")
    return header.parent, lib


@pytest.fixture(scope="module")
def host_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    include, lib = _wamr()
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed: run the README's test command (scripts/test.sh)")
    build = tmp_path_factory.mktemp("wamr")
    out = build / "wamr_host_check"
    # The core with its libraries (generated decoder, zcbor; mbed TLS linked below).
    run_make(build / "core", "host-lib")
    sources = [FW / "tests" / "wamr_host_check.c", FW / "src" / "model_manager.c",
               FW / "src" / "model_runtime.c", CORE / "host" / "ram_flash.c"]
    cmd = ["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           f"-I{FW / 'include'}", f"-I{CORE / 'include'}", f"-I{CORE / 'host'}", f"-I{include}",
           *map(str, sources), str(build / "core" / "host" / "libsota_core.a"), str(lib),
           "-lmbedcrypto", "-lpthread", "-lm", "-ldl", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return out


def _expected(wasm: bytes) -> str:
    runner = ModelRunner(wasm)
    a, z = runner.infer(SAMPLE), runner.infer(ZERO)
    assert a.score is not None and z.score is not None
    return f"class={a.output} score={a.score:.6f} zero_class={z.output} zero_score={z.score:.6f}"


def test_wamr_glue_boots_swaps_under_load_and_keeps_the_old_model_on_failures(
    host_check: Path, tmp_path: Path, example_model_wasm: bytes, retrained_model_wasm: bytes,
) -> None:
    signer = keys.generate_private_key("p256")  # the core verifies ES256 only
    (tmp_path / "pub.raw").write_bytes(keys.raw_public_key(signer))
    (tmp_path / "factory.wasm").write_bytes(example_model_wasm)

    def pkg(module: bytes, version: str) -> bytes:
        return build_package(module, name="classifier", version=version, private_key=signer,
                             slot_size=SLOT, selftest=SELFTEST)

    v2 = pkg(retrained_model_wasm, "2.0.0")
    steps = [
        ("v2", v2, "ok", retrained_model_wasm),
        ("v1 again", pkg(example_model_wasm, "1.0.0"), "downgrade", retrained_model_wasm),
        ("tampered", flip(pkg(example_model_wasm, "3.0.0"), -30), "hash", retrained_model_wasm),
        ("bad self-test", resign(pkg(example_model_wasm, "3.0.0"), signer,
                                 manifest={8: {1: SAMPLE, 2: 2}}), "selftest",
         retrained_model_wasm),
        ("v3", pkg(example_model_wasm, "3.0.0"), "ok", example_model_wasm),
    ]
    args = [str(host_check), str(tmp_path / "pub.raw"), str(tmp_path / "factory.wasm")]
    for i, (_name, data, reason, _m) in enumerate(steps):
        (tmp_path / f"{i}.sota").write_bytes(data)
        args += [str(tmp_path / f"{i}.sota"), reason]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert f"boot run {_expected(example_model_wasm)} slot=0 version=" in lines
    after = [ln for ln in lines if ln.startswith("after run ")]
    assert len(after) == len(steps)
    for line, (name, _d, _r, module) in zip(after, steps):
        assert _expected(module) in line, (name, line)
    assert after[0].endswith("slot=1 version=2.0.0")
    assert after[-1].endswith("slot=0 version=3.0.0")
    # inferences kept running on another thread during every update, none failed
    assert "failures=0 mismatches=0" in lines
    assert all(int(ln.rsplit("=", 1)[1]) > 0 for ln in lines if "inferences-during-update" in ln)
    assert f"reboot run {_expected(example_model_wasm)} slot=0 version=3.0.0" in lines
    assert any("bad input: the model reads 4 features, got 3" in ln for ln in lines)
