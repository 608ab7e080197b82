"""Run model Wasm modules (docs/model-abi.md) in wasmtime, sharing compiled code across devices.

A fleet of a thousand simulated devices mostly runs the same few models, so one process-wide
``Engine`` compiles each distinct module (keyed by its SHA-256) once; each device holds only a
``ModelRunner``, which instantiates its module lazily on the first inference.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import wasmtime

from .errors import ModelError

__all__ = ["ModelRunner", "Inference", "compile_module", "check_model", "REQUIRED_EXPORTS",
           "SAMPLE_INPUT"]

REQUIRED_EXPORTS = ("memory", "input_buffer", "input_size", "infer")
SAMPLE_INPUT = (1.0, 0.5, 0.2, 0.1)
# Instructions one inference may execute before it is stopped (a model that loops forever must
# not hang the device). The example model needs a few hundred.
FUEL_PER_INFERENCE = 5_000_000
MAX_INPUT_FEATURES = 4096

_engine: wasmtime.Engine | None = None
_modules: dict[str, wasmtime.Module] = {}
_lock = threading.Lock()


def _shared_engine() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        # Models use at most a few pages: a small reservation keeps a fleet's address space low.
        cfg.memory_reservation = 1 << 20
        cfg.memory_guard_size = 1 << 16
        cfg.memory_reservation_for_growth = 0
        _engine = wasmtime.Engine(cfg)
    return _engine


def compile_module(wasm: bytes) -> tuple[str, wasmtime.Module]:
    """The module for ``wasm`` (compiled once per SHA-256) and that SHA-256 in hex."""
    digest = hashlib.sha256(wasm).hexdigest()
    with _lock:
        mod = _modules.get(digest)
    if mod is not None:
        return digest, mod
    try:
        mod = wasmtime.Module(_shared_engine(), wasm)
    except wasmtime.WasmtimeError as e:
        raise ModelError(f"not a valid Wasm module: {str(e).splitlines()[0]}") from None
    with _lock:
        mod = _modules.setdefault(digest, mod)
    return digest, mod


def check_model(wasm: bytes, allowed_imports: frozenset[str] = frozenset()) -> str:
    """Check that ``wasm`` follows the model ABI; returns its SHA-256 or raises ModelError."""
    digest, mod = compile_module(wasm)
    for imp in mod.imports:
        name = f"{imp.module}.{imp.name}"
        if name not in allowed_imports:
            raise ModelError(f"model imports {name}, which the device does not offer")
    exports = {e.name for e in mod.exports}
    missing = [e for e in REQUIRED_EXPORTS if e not in exports]
    if missing:
        raise ModelError(f"model lacks the export(s) {', '.join(missing)}")
    return digest


@dataclass(frozen=True, slots=True)
class Inference:
    """One inference: the class index, its score (None when not exported), the latency."""

    output: int
    score: float | None
    latency_us: int


class ModelRunner:
    """One device's instance of one model module; instantiated on the first ``infer``."""

    __slots__ = ("sha256", "_module", "_store", "_exports")

    def __init__(self, wasm: bytes) -> None:
        self.sha256, self._module = compile_module(wasm)
        self._store: wasmtime.Store | None = None
        self._exports: dict[str, object] | None = None

    def _instance(self) -> tuple[wasmtime.Store, dict[str, object]]:
        if self._store is None or self._exports is None:
            store = wasmtime.Store(_shared_engine())
            try:
                inst = wasmtime.Instance(store, self._module, [])
            except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
                raise ModelError(f"model cannot be instantiated: {str(e).splitlines()[0]}") from None
            exports = inst.exports(store)
            self._exports = {k: exports[k] for k in exports}  # type: ignore[union-attr]
            self._store = store
        return self._store, self._exports

    def warm_up(self) -> None:
        """Instantiate now (a swap does this before switching, so the first run is not slow)."""
        self._instance()

    def infer(self, features: Sequence[float]) -> Inference:
        """Run one inference on ``features`` (ABI: write input, call infer, read score)."""
        store, ex = self._instance()
        try:
            missing = [e for e in REQUIRED_EXPORTS if e not in ex]
            if missing:
                raise ModelError(f"model lacks the export(s) {', '.join(missing)}")
            store.set_fuel(FUEL_PER_INFERENCE)
            t0 = time.perf_counter_ns()
            addr = ex["input_buffer"](store)  # type: ignore[operator]
            n = ex["input_size"](store)  # type: ignore[operator]
            if not 0 < n <= MAX_INPUT_FEATURES:
                raise ModelError(f"model reports input_size {n}")
            vals = list(features)[:n] + [0.0] * max(0, n - len(features))
            ex["memory"].write(store, struct.pack(f"<{n}f", *vals), addr)  # type: ignore[attr-defined]
            out = ex["infer"](store)  # type: ignore[operator]
            score = ex["output_score"](store) if "output_score" in ex else None  # type: ignore[operator]
            latency = (time.perf_counter_ns() - t0) // 1000
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            # A trapped instance may be left inconsistent: start fresh next time.
            self._store = self._exports = None
            raise ModelError(f"inference failed: {str(e).splitlines()[0]}") from None
        except (TypeError, ValueError, struct.error) as e:
            raise ModelError(f"model does not follow the ABI: {e}") from None
        return Inference(int(out), None if score is None else float(score), int(latency))
