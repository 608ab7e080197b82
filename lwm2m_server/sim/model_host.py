"""The device's model host: which slot is active, running inferences, and the no-gap swap.

The host keeps one ``ModelRunner`` for the active slot (a handle on the module shared by every
device with the same bytes, runtime.py). A swap writes nothing to the running module: the new
module is compiled and instantiated first (off the event loop), the active-slot record is flipped
atomically on flash, and only then the runner pointer changes, so an inference loop running next
to it never waits longer than one compile-free step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from .errors import ModelError, StorageError
from .runtime import SAMPLE_INPUT, Inference, ModelRunner
from .storage import DeviceStorage, SlotInfo

__all__ = ["ModelHost"]


class ModelHost:
    """Slots A/B on flash plus the running model; ``on_change`` hears every state change."""

    def __init__(self, storage: DeviceStorage, on_change: Callable[[], None] = lambda: None) -> None:
        self.storage = storage
        self.on_change = on_change
        self.active_slot = 0
        self.runner: ModelRunner | None = None
        self.count = 0
        self.last_latency_us = 0
        self.last_output = -1
        self.last_score: float | None = None
        self.last_error = ""
        self.last_run_at = 0.0

    def load(self) -> None:
        """Restore the active slot from flash (a corrupt record falls back to slot A)."""
        try:
            _, self.active_slot = self.storage.active()
        except StorageError as e:
            self.last_error = str(e)
            self.active_slot = 0
        wasm = self.storage.read_slot(self.active_slot)
        if wasm is None and self.storage.read_slot(1 - self.active_slot) is not None:
            self.active_slot = 1 - self.active_slot
            wasm = self.storage.read_slot(self.active_slot)
        self.runner = None
        if wasm is not None:
            try:
                self.runner = ModelRunner(wasm)
            except ModelError as e:
                self.last_error = f"slot {'AB'[self.active_slot]}: {e}"

    def provision(self, wasm: bytes, info: SlotInfo) -> None:
        """Put a first model into slot A of a device that has none (fleet start-up)."""
        if self.storage.read_slot(0) is None and self.storage.read_slot(1) is None:
            self.storage.write_slot(0, wasm, info)
            self.storage.set_active(0)
            self.load()

    @property
    def inactive_slot(self) -> int:
        return 1 - self.active_slot

    def slot_info(self, slot: int) -> SlotInfo:
        return self.storage.slot_info(slot)

    def run(self, features: Sequence[float] | None = None) -> Inference:
        """One inference on the active model (sample input when ``features`` is None)."""
        runner = self.runner
        if runner is None:
            self.last_error = "no model installed"
            self.on_change()
            raise ModelError("no model installed")
        try:
            res = runner.infer(SAMPLE_INPUT if features is None else features)
        except ModelError as e:
            self.last_error = str(e)
            self.on_change()
            raise
        self.count += 1
        self.last_latency_us = res.latency_us
        self.last_output = res.output
        self.last_score = res.score
        self.last_run_at = time.monotonic()
        self.on_change()
        return res

    async def install(self, slot: int, wasm: bytes, info: SlotInfo) -> None:
        """Write ``wasm`` into ``slot``, which must not be the active one."""
        if slot == self.active_slot and self.runner is not None:
            raise StorageError("refusing to overwrite the active slot")
        await asyncio.to_thread(self.storage.write_slot, slot, wasm, info)
        self.on_change()

    async def activate(self, slot: int) -> None:
        """Make ``slot`` the active model without stopping inference."""
        wasm = await asyncio.to_thread(self.storage.read_slot, slot)
        if wasm is None:
            raise StorageError(f"slot {'AB'[slot]} is empty")

        def prepare() -> ModelRunner:
            r = ModelRunner(wasm)
            r.warm_up()
            return r

        runner = await asyncio.to_thread(prepare)
        await asyncio.to_thread(self.storage.set_active, slot)
        self.runner, self.active_slot = runner, slot
        self.on_change()

    @staticmethod
    async def selftest(wasm: bytes, features: Sequence[float], expected: int) -> int:
        """Run ``features`` through ``wasm`` (off the event loop); the class it answers."""
        def go() -> int:
            return ModelRunner(wasm).infer(features).output
        out = await asyncio.to_thread(go)
        if out != expected:
            raise ModelError(f"self-test answered class {out}, expected {expected}")
        return out
