"""C to a freestanding wasm32 module with Debian's clang and lld (no libc, no imports).

The model's static data and an 8 KiB stack must fit the memory the model ABI grants
(``memory_pages`` pages of 64 KiB, one by default): linking with exactly that memory makes
wasm-ld refuse a model that does not fit, and a second link without the cap tells how much it
would need, so the error can say by how much the model is too large.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ota.wasm import PAGE_SIZE

from .errors import ModelBuildError

__all__ = ["compile_wasm", "find_clang", "SHIM_INCLUDE", "STACK_SIZE"]

SHIM_INCLUDE = Path(__file__).with_name("include")
STACK_SIZE = 8192
CLANG_ENV = "LWM2M_CLANG"


def find_clang() -> str:
    """The clang to use: ``$LWM2M_CLANG``, else ``clang`` on PATH; says how to install it."""
    explicit = os.environ.get(CLANG_ENV)
    found = explicit or shutil.which("clang")
    if not found:
        raise ModelBuildError("clang is not installed: model build compiles to Wasm with clang "
                              "and lld (Debian: apt-get install clang lld), or set "
                              f"{CLANG_ENV} to a clang with the wasm32 target")
    return found


def _emlearn_include() -> str:
    try:
        import emlearn  # type: ignore[import-untyped]
    except ImportError:
        raise ModelBuildError("model build needs emlearn: pip install 'lwm2m-server[model]'") from None
    return str(emlearn.common.get_include_dir())


def _link(clang: str, src: Path, out: Path, memory: int | None) -> subprocess.CompletedProcess[str]:
    cmd = [clang, "--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-fno-builtin",
           "-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
           "-isystem", str(SHIM_INCLUDE), "-I", _emlearn_include(),
           "-Wl,--no-entry", "-Wl,--export-dynamic", f"-Wl,-z,stack-size={STACK_SIZE}",
           "-Wl,--export=__data_end", "-Wl,--export=__heap_base", "-Wl,--strip-debug"]
    if memory is not None:
        cmd += [f"-Wl,--initial-memory={memory}", f"-Wl,--max-memory={memory}"]
    cmd += ["-o", str(out), str(src)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise ModelBuildError(f"cannot run {clang}: {e.strerror or e}") from None
    except subprocess.TimeoutExpired:
        raise ModelBuildError("clang took more than 5 minutes: the model is far too large "
                              "for a microcontroller") from None


def _needed_memory(wasm: bytes) -> int:
    from ota.wasm import inspect_module

    return inspect_module(wasm, required_exports=(), max_memory_pages=None).memory_pages


def compile_wasm(c_source: str, *, memory_pages: int = 1) -> bytes:
    """The Wasm module built from ``c_source``; ModelBuildError with the compiler's words."""
    clang = find_clang()
    with tempfile.TemporaryDirectory(prefix="lwm2m-model-") as tmp:
        src, out = Path(tmp, "model.c"), Path(tmp, "model.wasm")
        src.write_text(c_source)
        done = _link(clang, src, out, memory_pages * PAGE_SIZE)
        if done.returncode == 0:
            return out.read_bytes()
        text = done.stderr.strip()
        if re.search(r"initial memory too small|memory too small|exceeds", text):
            probe = _link(clang, src, out, None)
            if probe.returncode == 0:
                pages = _needed_memory(out.read_bytes())
                raise ModelBuildError(
                    f"the model needs {pages} memory pages ({pages * PAGE_SIZE // 1024} KiB: "
                    f"weights, buffers and an {STACK_SIZE // 1024} KiB stack) but a model may "
                    f"use {memory_pages} ({memory_pages * PAGE_SIZE // 1024} KiB): train a "
                    "smaller model (fewer trees, lower max_depth, fewer hidden units)")
        if "unknown target" in text or "No available targets" in text or "wasm-ld" in text \
                and "not found" in text:
            raise ModelBuildError(f"{clang} cannot build wasm32 (Debian: apt-get install clang "
                                  f"lld): {text.splitlines()[-1] if text else ''}")
        raise ModelBuildError("compiling the generated C failed:\n" + "\n".join(text.splitlines()[:20]))
