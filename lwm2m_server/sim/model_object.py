"""Our TinyML Model object (33100, objects/33100.xml) on the simulated device.

Resources: 0 active slot, 1..3 slot name/version/SHA-256 (instance 0 = slot A, 1 = slot B),
4 inference count, 5 last latency (µs), 6 last output, 7 last score, 8 Run (argument 0: the
comma-separated input; none: the sample input), 9 inference period (s, 0 = off), 10 runtime,
11 last error.
"""

from __future__ import annotations

import math
from importlib import metadata

from ..model import MODEL_OBJECT_ID
from .errors import BAD_REQUEST, INTERNAL_SERVER_ERROR, ModelError, RequestError
from .model_host import ModelHost
from .objects import ResourceData, SimObject, parse_execute_args

__all__ = ["ModelObject", "parse_features"]

try:
    _RUNTIME = f"wasmtime {metadata.version('wasmtime')}"
except metadata.PackageNotFoundError:  # pragma: no cover - installed from source
    _RUNTIME = "wasmtime"


def parse_features(text: str) -> list[float]:
    """``"1.0, 0.5,0.2"`` -> floats; RequestError (4.00) for anything else."""
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        raise RequestError(BAD_REQUEST, f"Run input must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise RequestError(BAD_REQUEST, "Run input must be finite numbers")
    return vals


class ModelObject(SimObject):
    """Object 33100, instance 0: a view of the device's ModelHost plus Run and the period."""

    object_id = MODEL_OBJECT_ID

    def __init__(self, device) -> None:  # type: ignore[no-untyped-def]
        # Start from the computed values, so devices running the same model share them.
        super().__init__(device, {0: {**self._computed(device.model), 9: 0, 10: _RUNTIME}})

    @staticmethod
    def _computed(host: ModelHost) -> dict[int, ResourceData]:
        infos = [host.slot_info(0), host.slot_info(1)]
        return {
            0: host.active_slot,
            1: {i: s.name for i, s in enumerate(infos)},
            2: {i: s.version for i, s in enumerate(infos)},
            3: {i: s.sha256 for i, s in enumerate(infos)},
            4: host.count,
            5: host.last_latency_us,
            6: host.last_output,
            7: float(host.last_score) if host.last_score is not None else 0.0,
            11: host.last_error,
        }

    def refresh(self, iid: int) -> None:
        inst = self.data[0]
        for rid, value in self._computed(self.device.model).items():
            inst[rid] = value

    def check_write(self, iid: int, rid: int, value: ResourceData) -> None:
        if rid == 9 and isinstance(value, int) and not 0 <= value <= 86400:
            raise RequestError(BAD_REQUEST, "inference period is 0 (off) .. 86400 s")

    def write_resource(self, iid: int, rid: int, value: ResourceData) -> None:
        super().write_resource(iid, rid, value)
        if rid == 9:
            self.device.set_inference_period(float(value))  # type: ignore[arg-type]

    def execute(self, iid: int, rid: int, args: str) -> None:
        self.instance(iid)
        if rid != 8:
            super().execute(iid, rid, args)
            return
        text = args.strip()
        if not text:
            features = None
        elif "=" in text:
            arg0 = parse_execute_args(text).get(0)
            features = parse_features(arg0) if arg0 else None
        else:
            features = parse_features(text)
        try:
            self.device.model.run(features)
        except ModelError as e:
            raise RequestError(INTERNAL_SERVER_ERROR, str(e)) from None
