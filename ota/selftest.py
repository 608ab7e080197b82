"""Run a model's self-test on the build machine (wasmtime), before a package is signed.

Devices run the manifest's self-test after verifying a package (docs/sota-format.md, step 7);
``sota build`` runs the same check first so a package every device would refuse is never made.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import wasmtime

if TYPE_CHECKING:  # wasmtime does not re-export this type
    from wasmtime._instance import InstanceExports

from ota.sota import SelfTest, SotaSelftestError

__all__ = ["run_inference", "check_selftest", "FUEL"]

FUEL = 10_000_000  # instructions one inference may take; a looping model is stopped


def run_inference(module: bytes, features: tuple[float, ...] | list[float]) -> int:
    """The class ``infer()`` returns for ``features`` (the model ABI of docs/model-abi.md)."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    store = wasmtime.Store(engine)
    store.set_fuel(FUEL)
    try:
        instance = wasmtime.Instance(store, wasmtime.Module(engine, module), [])
        exports = instance.exports(store)
        memory = exports["memory"]
        if not isinstance(memory, wasmtime.Memory):
            raise SotaSelftestError("export 'memory' is not a memory")
        size = _func(exports, "input_size")(store)
        if size != len(features):
            raise SotaSelftestError(f"self-test has {len(features)} input values, the model "
                                    f"reads {size}")
        addr = _func(exports, "input_buffer")(store)
        data = struct.pack(f"<{len(features)}f", *features)
        if addr < 0 or addr + len(data) > memory.data_len(store):
            raise SotaSelftestError(f"input buffer at {addr} lies outside the model's memory")
        memory.write(store, data, addr)
        return int(_func(exports, "infer")(store))
    except (wasmtime.WasmtimeError, wasmtime.Trap, KeyError) as e:
        raise SotaSelftestError(f"model failed to run: {_reason(e)}") from None


def _func(exports: "InstanceExports", name: str) -> wasmtime.Func:
    func = exports[name]
    if not isinstance(func, wasmtime.Func):
        raise SotaSelftestError(f"export {name!r} is not a function")
    return func


def check_selftest(module: bytes, selftest: SelfTest) -> None:
    """Raise ``SotaSelftestError`` unless the model answers ``selftest.expected``."""
    got = run_inference(module, list(selftest.input))
    if got != selftest.expected:
        raise SotaSelftestError(f"self-test gave class {got}, expected {selftest.expected}")


def _reason(e: Exception) -> str:
    """The line of a wasmtime error that says what happened (it ends with the cause)."""
    if isinstance(e, wasmtime.Trap) and e.trap_code is not None:
        return str(e.trap_code.name).lower().replace("_", " ")
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__
