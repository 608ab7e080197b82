"""Build Wasm modules in the test run (clang --target=wasm32 + wasm-ld; wabt's wat2wasm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL_C = ROOT / "examples" / "model" / "classifier.c"

CLANG_WASM_FLAGS = [
    "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wl,--export-dynamic",
    "-Wl,-z,stack-size=8192", "-Wl,--initial-memory=65536", "-Wl,--max-memory=65536",
]


def build_c_to_wasm(source: Path, out: Path, defines: dict[str, str] | None = None) -> bytes:
    """Compile one C file to a freestanding Wasm module and return its bytes."""
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is needed to build Wasm models: run the README's test command")
    args = [clang, *CLANG_WASM_FLAGS]
    for k, v in (defines or {}).items():
        args.append(f"-D{k}={v}")
    args += ["-o", str(out), str(source)]
    subprocess.run(args, check=True, capture_output=True)
    return out.read_bytes()


def build_example_model(out_dir: Path, bias_shift: float | None = None) -> bytes:
    """The example classifier; ``bias_shift`` builds a "retrained" variant."""
    name = "classifier.wasm" if bias_shift is None else f"classifier_{bias_shift}.wasm"
    defines = {} if bias_shift is None else {"MODEL_BIAS_SHIFT": f"{bias_shift}f"}
    return build_c_to_wasm(EXAMPLE_MODEL_C, out_dir / name, defines)


def wat_to_wasm(wat: str, out_dir: Path, name: str = "module") -> bytes:
    """Assemble WebAssembly text with wabt's wat2wasm."""
    src = out_dir / f"{name}.wat"
    dst = out_dir / f"{name}.wasm"
    src.write_text(wat)
    subprocess.run(["wat2wasm", str(src), "-o", str(dst)], check=True, capture_output=True)
    return dst.read_bytes()
