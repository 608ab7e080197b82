"""What `lwm2m-server model build` makes of each supported model kind, trained here on iris.

Per kind: Wasm module size, build time (C generation + clang/lld), Wasm instructions and
peak memory of one inference, and the time of one inference in wasmtime beside the Python
model's own predict() on one row (ratio = Wasm time / Python time, measured in the same run).
Keras runs when keras (jax backend) is installed.

Run from the repository root:  python bench/model_build_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ota.modelbuild import build_model  # noqa: E402
from ota.modelbuild.measure import WasmModel  # noqa: E402
from ota.modelbuild.source import describe_estimator, load_model  # noqa: E402


def _estimators() -> dict[str, Any]:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    return {
        "DecisionTree (depth 4)": DecisionTreeClassifier(max_depth=4, random_state=0),
        "RandomForest (10x depth 4)": RandomForestClassifier(10, max_depth=4, random_state=0),
        "ExtraTrees (10x depth 5)": ExtraTreesClassifier(10, max_depth=5, random_state=0),
        "MLP (16 hidden)": MLPClassifier((16,), max_iter=3000, random_state=0),
        "GaussianNB": GaussianNB(),
    }


def _per_call(fn: Any, rows: Any, repeat: int) -> float:
    """Median seconds per call of fn(row) over the rows, best of ``repeat`` passes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for r in rows:
            fn(r)
        times.append((time.perf_counter() - t0) / len(rows))
    return statistics.median(times)


def _keras_spec(X: Any, y: Any, work: Path) -> Any | None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return None
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=60, verbose=0)
    model.save(work / "iris.keras")
    return load_model(work / "iris.keras"), (lambda row: model.predict(row[None, :], verbose=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X32 = X.astype(np.float32)
    rows = [list(map(float, r)) for r in X32]
    cases: list[tuple[str, Any, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, est in _estimators().items():
            est.fit(X, y)
            cases.append((label, describe_estimator(est), lambda r, e=est: e.predict(r[None, :])))
    with tempfile.TemporaryDirectory() as tmp:
        keras_case = _keras_spec(X, y, Path(tmp))
        if keras_case is not None:
            cases.append(("Keras Dense (16 hidden)", *keras_case))
        print(f"{'model':<28} {'wasm B':>7} {'build s':>8} {'instr':>7} {'peak B':>7} "
              f"{'wasm us':>8} {'python us':>10} {'ratio':>6}")
        for label, spec, python_predict in cases:
            result = build_model(spec)
            wasm = WasmModel(result.wasm)
            t_wasm = _per_call(wasm.infer, rows, args.repeat)
            t_py = _per_call(python_predict, X32[:30], args.repeat)
            cost = wasm.cost()
            print(f"{label:<28} {len(result.wasm):>7} {result.seconds:>8.2f} "
                  f"{round(cost.instructions_mean):>7} {cost.peak_memory:>7} {t_wasm * 1e6:>8.1f} "
                  f"{t_py * 1e6:>10.1f} {t_wasm / t_py:>6.3f}")
    print("wasm us: one inference through the model ABI in wasmtime (fuel metering on), from "
          "Python; python us: the trained model's predict() on one row.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
