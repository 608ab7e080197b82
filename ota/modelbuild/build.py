"""From a trained model to a checked model Wasm module (and a signed SOTA package).

``build_model`` loads the model, generates C (emlearn plus the model ABI), compiles it for
wasm32, checks the module as devices do (``ota.wasm.inspect_module``), measures one inference
in wasmtime and, given check data, compares the module's answers with the Python model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ota.wasm import DEFAULT_EXPORTS, WasmError, WasmInfo, inspect_module

from .codegen import generate_c
from .compiler import compile_wasm
from .errors import ModelBuildError
from .measure import Cost, WasmModel
from .parity import CheckData, Parity, compare, read_csv
from .source import ModelSpec, load_model

__all__ = ["BuildResult", "build_model", "sota_package", "DEFAULT_SLOT_SIZE",
           "DEFAULT_MIN_AGREEMENT"]

DEFAULT_SLOT_SIZE = 65536  # one model partition of the simulator and the reference firmware
DEFAULT_MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class BuildResult:
    """The module and what the build found out about it."""

    wasm: bytes
    spec: ModelSpec
    info: WasmInfo
    cost: Cost
    parity: Parity | None
    seconds: float

    def report(self) -> dict[str, Any]:
        """JSON-friendly summary (the CLI prints it)."""
        out: dict[str, Any] = {
            "model": self.spec.kind, "features": self.spec.n_features,
            "classes": [c if isinstance(c, (int, float, str)) else str(c) for c in self.spec.classes],
            "wasm_size": len(self.wasm), "memory_pages": self.info.memory_pages,
            "peak_memory": self.cost.peak_memory, "static_memory": self.cost.static_bytes,
            "stack_used": self.cost.stack_bytes,
            "instructions_per_inference": round(self.cost.instructions_mean),
            "instructions_max": self.cost.instructions_max,
            "build_seconds": round(self.seconds, 3),
        }
        if self.parity is not None:
            out["check"] = self.parity.to_dict()
        return out


def build_model(
    model: str | Path | ModelSpec,
    *,
    check: str | Path | CheckData | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    slot_size: int = DEFAULT_SLOT_SIZE,
    memory_pages: int = 1,
) -> BuildResult:
    """Build ``model`` (a file or a loaded ``ModelSpec``) into a model Wasm module.

    Refuses (``ModelBuildError``) unsupported models, check data whose feature count differs,
    modules larger than ``slot_size`` bytes or needing more than ``memory_pages`` pages, and
    agreement with the Python model below ``min_agreement`` on the check rows.
    """
    if not 0.0 <= min_agreement <= 1.0:
        raise ModelBuildError(f"--min-agreement must be between 0 and 1, got {min_agreement}")
    started = time.perf_counter()
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    data = read_csv(check, spec.n_features) if isinstance(check, (str, Path)) else check
    if data is not None and len(data.rows[0]) != spec.n_features:
        raise ModelBuildError(f"feature-count mismatch: the check rows have {len(data.rows[0])} "
                              f"features, the model reads {spec.n_features}")
    wasm = compile_wasm(generate_c(spec), memory_pages=memory_pages)
    seconds = time.perf_counter() - started
    if len(wasm) > slot_size:
        raise ModelBuildError(f"the module is {len(wasm)} bytes, larger than the {slot_size}-byte "
                              "model slot: train a smaller model (fewer trees, lower max_depth, "
                              "fewer hidden units) or give the real slot size (--slot-size)")
    try:
        info = inspect_module(wasm, required_exports=DEFAULT_EXPORTS, max_memory_pages=memory_pages)
    except WasmError as e:  # a codegen bug rather than the user's: say so plainly
        raise ModelBuildError(f"the built module breaks the model ABI: {e}") from None
    runner = WasmModel(wasm)
    parity = None
    if data is None:
        runner.infer([0.0] * spec.n_features)
    else:
        import numpy as np

        wasm_answers = runner.predict(data.rows)
        python_answers = [int(v) for v in spec.predict_index(np.asarray(data.rows, dtype=np.float32))]
        parity = compare(data, python_answers, wasm_answers, spec.classes)
        if parity.agreement < min_agreement:
            raise ModelBuildError(
                f"the Wasm module agrees with the Python model on {parity.agreement:.2%} of "
                f"{parity.rows} rows, below --min-agreement {min_agreement:.2%} (rows that "
                f"differ: {', '.join(map(str, parity.disagreements[:10]))})")
    return BuildResult(wasm=wasm, spec=spec, info=info, cost=runner.cost(), parity=parity,
                       seconds=seconds)


def sota_package(result: BuildResult, *, private_key: Any, name: str, version: str,
                 slot_size: int = DEFAULT_SLOT_SIZE,
                 selftest: tuple[tuple[float, ...], int] | None = None) -> bytes:
    """A signed SOTA package of the built module; its self-test defaults to a checked row."""
    from ota import sota
    from ota.selftest import check_selftest

    chosen = selftest or (result.parity.selftest if result.parity is not None else None)
    test = sota.SelfTest.of((list(chosen[0]), chosen[1])) if chosen is not None else None
    if test is not None:
        check_selftest(result.wasm, test)
    return sota.build_package(result.wasm, name=name, version=version, private_key=private_key,
                              slot_size=slot_size, selftest=test)
