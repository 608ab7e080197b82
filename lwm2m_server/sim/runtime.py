"""Run model Wasm modules (docs/model-abi.md) in wasmtime, sharing compiled code across devices.

A fleet of ten thousand simulated devices mostly runs the same few models, so one process-wide
``Engine`` compiles each distinct module (keyed by its SHA-256) once, and the instances (a
wasmtime ``Store`` with the module's linear memory) belong to that compiled
module, not to a device: an inference takes an idle instance, runs, and gives it back. Under
the model ABI ``infer`` depends only on the input buffer, which every run writes in full, so an
instance that another device used answers the same. Inferences run to completion without
awaiting, so a module rarely has more than one instance in use; at most ``IDLE_INSTANCES``
idle ones are kept. A device holds only a ``ModelRunner``: the SHA-256 and a reference.
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

__all__ = ["ModelRunner", "Inference", "SharedModule", "compile_module", "check_model",
           "REQUIRED_EXPORTS", "SAMPLE_INPUT", "IDLE_INSTANCES"]

REQUIRED_EXPORTS = ("memory", "input_buffer", "input_size", "infer")
SAMPLE_INPUT = (1.0, 0.5, 0.2, 0.1)
# Instructions one inference may execute before it is stopped (a model that loops forever must
# not hang the device). The example model needs a few hundred.
FUEL_PER_INFERENCE = 5_000_000
MAX_INPUT_FEATURES = 4096
# Idle instances kept per compiled module. Inferences on the event loop never overlap; a swap or
# a self-test in a worker thread may take a second one at the same time.
IDLE_INSTANCES = 2

_engine: wasmtime.Engine | None = None
_modules: dict[str, SharedModule] = {}
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


class _Instance:
    """One instantiation of a module: its Store and the exports the ABI uses."""

    __slots__ = ("store", "exports")

    def __init__(self, module: wasmtime.Module) -> None:
        store = wasmtime.Store(_shared_engine())
        try:
            inst = wasmtime.Instance(store, module, [])
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            raise ModelError(f"model cannot be instantiated: {str(e).splitlines()[0]}") from None
        exports = inst.exports(store)
        self.store = store
        self.exports: dict[str, object] = {k: exports[k] for k in exports}  # type: ignore[union-attr]


class SharedModule:
    """A module compiled once per SHA-256, with the idle instances every device may use."""

    __slots__ = ("sha256", "module", "_idle", "instantiations")

    def __init__(self, sha256: str, module: wasmtime.Module) -> None:
        self.sha256 = sha256
        self.module = module
        self._idle: list[_Instance] = []
        self.instantiations = 0   # instances created so far (the tests' view of the pool)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def take(self) -> _Instance:
        """An idle instance, or a new one when all are in use."""
        with _lock:
            if self._idle:
                return self._idle.pop()
            self.instantiations += 1
        return _Instance(self.module)

    def give(self, inst: _Instance) -> None:
        """Hand ``inst`` back after a run that completed (a trapped one is dropped instead)."""
        with _lock:
            if len(self._idle) < IDLE_INSTANCES:
                self._idle.append(inst)


def compile_module(wasm: bytes) -> SharedModule:
    """The shared module for ``wasm``, compiled on first use of its SHA-256."""
    digest = hashlib.sha256(wasm).hexdigest()
    with _lock:
        shared = _modules.get(digest)
    if shared is not None:
        return shared
    try:
        mod = wasmtime.Module(_shared_engine(), wasm)
    except wasmtime.WasmtimeError as e:
        raise ModelError(f"not a valid Wasm module: {str(e).splitlines()[0]}") from None
    with _lock:
        return _modules.setdefault(digest, SharedModule(digest, mod))


def check_model(wasm: bytes, allowed_imports: frozenset[str] = frozenset()) -> str:
    """Check that ``wasm`` follows the model ABI; returns its SHA-256 or raises ModelError."""
    shared = compile_module(wasm)
    for imp in shared.module.imports:
        name = f"{imp.module}.{imp.name}"
        if name not in allowed_imports:
            raise ModelError(f"model imports {name}, which the device does not offer")
    exports = {e.name for e in shared.module.exports}
    missing = [e for e in REQUIRED_EXPORTS if e not in exports]
    if missing:
        raise ModelError(f"model lacks the export(s) {', '.join(missing)}")
    return shared.sha256


@dataclass(frozen=True, slots=True)
class Inference:
    """One inference: the class index, its score (None when not exported), the latency."""

    output: int
    score: float | None
    latency_us: int


class ModelRunner:
    """A device's handle on one model: runs inferences on the module's shared instances."""

    __slots__ = ("shared",)

    def __init__(self, wasm: bytes) -> None:
        self.shared = compile_module(wasm)

    @property
    def sha256(self) -> str:
        return self.shared.sha256

    def warm_up(self) -> None:
        """Have an instance ready (a swap does this before switching, so the first run is not slow)."""
        self.shared.give(self.shared.take())

    def infer(self, features: Sequence[float]) -> Inference:
        """Run one inference on ``features`` (ABI: write input, call infer, read score)."""
        inst = self.shared.take()
        store, ex = inst.store, inst.exports
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
            # A trapped instance may be left inconsistent: it is not given back.
            raise ModelError(f"inference failed: {str(e).splitlines()[0]}") from None
        except (TypeError, ValueError, struct.error) as e:
            raise ModelError(f"model does not follow the ABI: {e}") from None
        self.shared.give(inst)
        return Inference(int(out), None if score is None else float(score), int(latency))
