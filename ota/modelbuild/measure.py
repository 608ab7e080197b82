"""Run a model module in wasmtime the way a device does, and measure what one inference costs.

``WasmModel`` follows the model ABI (write the input buffer, call ``infer``, read
``output_score``). Per inference it counts wasmtime fuel (one unit per executed Wasm
instruction, near enough: the instruction count the build report prints) and the stack the
call touched: the stack area is filled with a pattern once, and the lowest changed byte after
the runs is the stack's high-water mark. Peak memory = static data + that stack depth.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ModelBuildError

__all__ = ["WasmModel", "Cost"]

_FUEL = 50_000_000  # far above any model that fits a microcontroller; stops runaway loops
_PATTERN = 0xA5


@dataclass(frozen=True)
class Cost:
    """What the inferences so far cost: instructions per inference and peak memory bytes."""

    instructions_mean: float
    instructions_max: int
    static_bytes: int  # everything below the stack: null page guard, constants, buffers
    stack_bytes: int  # deepest stack use seen
    memory_bytes: int  # linear memory reserved (pages x 64 KiB)

    @property
    def peak_memory(self) -> int:
        return self.static_bytes + self.stack_bytes


class WasmModel:
    """One instance of a model module in wasmtime, with fuel and stack accounting."""

    def __init__(self, wasm: bytes) -> None:
        import wasmtime

        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        self._store = wasmtime.Store(wasmtime.Engine(cfg))
        try:
            module = wasmtime.Module(self._store.engine, wasm)
            inst = wasmtime.Instance(self._store, module, [])
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            raise ModelBuildError(f"the built module does not load in wasmtime: {e}") from None
        ex = inst.exports(self._store)
        # Exports by name; typed loosely, the model ABI fixes what each one is.
        self._ex: dict[str, Any] = {name: ex[name] for name in ex}  # type: ignore[union-attr]
        self._mem: Any = self._ex["memory"]
        self.n_features = int(self._call("input_size"))
        self._addr = int(self._call("input_buffer"))
        self._stack_low = int(self._global("__data_end"))
        self._stack_high = int(self._global("__heap_base"))
        if self._stack_high > self._stack_low:
            self._mem.write(self._store, bytes([_PATTERN]) * (self._stack_high - self._stack_low),
                            self._stack_low)
        self._fuel: list[int] = []

    def _global(self, name: str) -> int:
        g = self._ex.get(name)
        return int(g.value(self._store)) if g is not None else 0

    def _call(self, name: str) -> Any:
        self._store.set_fuel(_FUEL)
        return self._ex[name](self._store)

    def infer(self, features: Sequence[float]) -> tuple[int, float | None]:
        """Class index and score (None when the module has no ``output_score``) for one row."""
        import wasmtime

        if len(features) != self.n_features:
            raise ModelBuildError(f"a row has {len(features)} features, the model reads "
                                  f"{self.n_features}")
        self._mem.write(self._store, struct.pack(f"<{self.n_features}f", *features), self._addr)
        try:
            cls = int(self._call("infer"))
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            raise ModelBuildError(f"inference trapped in wasmtime: {str(e).splitlines()[0]}") from None
        self._fuel.append(_FUEL - self._store.get_fuel())
        score = float(self._call("output_score")) if "output_score" in self._ex else None
        return cls, score

    def predict(self, rows: Iterable[Sequence[float]]) -> list[int]:
        """Class index per row."""
        return [self.infer(r)[0] for r in rows]

    def cost(self) -> Cost:
        """Instructions per inference and peak memory over the inferences run so far."""
        if not self._fuel:
            raise ModelBuildError("no inference has run yet")
        stack = 0
        if self._stack_high > self._stack_low:
            area = self._mem.read(self._store, self._stack_low, self._stack_high)
            touched = next((i for i, b in enumerate(area) if b != _PATTERN), len(area))
            stack = len(area) - touched
        return Cost(
            instructions_mean=sum(self._fuel) / len(self._fuel),
            instructions_max=max(self._fuel), static_bytes=self._stack_low, stack_bytes=stack,
            memory_bytes=int(self._mem.data_len(self._store)))
