"""Keras Sequential models of dense layers, saved by a real Keras 3 (jax backend) in the test
run, are read from the .keras file with h5py and built without Keras."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ota.modelbuild import ModelBuildError, build_model, load_model

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="the test extra installs keras with the jax backend")


def _fit(model: Any, X: Any, y: Any) -> Any:
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=60, batch_size=16, verbose=0)
    return model


def test_dense_sequential_builds_and_matches_keras_predictions(
        iris: tuple[Any, Any], iris_csv: Path, tmp_path: Path) -> None:
    import numpy as np

    keras.utils.set_random_seed(0)
    X, y = iris
    model = _fit(keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(12, activation="relu", name="hidden"),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(8),
        keras.layers.Activation("tanh"),
        keras.layers.Dense(3, activation="softmax"),
    ]), X, y)
    path = tmp_path / "iris.keras"
    model.save(path)
    spec = load_model(path)
    assert (spec.kind, spec.n_features, spec.classes) == ("keras.Sequential", 4, (0, 1, 2))
    keras_answers = model.predict(X, verbose=0).argmax(axis=1)
    assert list(spec.predict_index(X)) == list(keras_answers)  # the numpy reference is Keras
    result = build_model(path, check=iris_csv)
    assert result.parity is not None and result.parity.agreement >= 0.99
    from ota.modelbuild.measure import WasmModel

    wasm = WasmModel(result.wasm)
    probs = model.predict(X[:10], verbose=0)
    for row, p in zip(X[:10], probs):
        cls, score = wasm.infer(list(row))
        assert cls == int(np.argmax(p)) and score == pytest.approx(float(p.max()), abs=1e-4)


def test_single_sigmoid_output_is_a_binary_classifier(iris: tuple[Any, Any], tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    X, y = iris
    yb = (y == 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    model.fit(X, yb, epochs=40, verbose=0)
    model.save(tmp_path / "bin.keras")
    result = build_model(tmp_path / "bin.keras")
    from ota.modelbuild.measure import WasmModel

    wasm = WasmModel(result.wasm)
    expected = (model.predict(X, verbose=0)[:, 0] > 0.5).astype(int)
    assert [wasm.infer(list(r))[0] for r in X] == list(expected)


def test_layers_other_than_dense_are_refused_by_name(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    model.save(tmp_path / "bn.keras")
    with pytest.raises(ModelBuildError, match="unsupported Keras layer BatchNormalization"):
        load_model(tmp_path / "bn.keras")
    inp = keras.Input((4,))
    functional = keras.Model(inp, keras.layers.Dense(2)(inp))
    functional.save(tmp_path / "fn.keras")
    with pytest.raises(ModelBuildError, match="only Sequential models of Dense layers"):
        load_model(tmp_path / "fn.keras")
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelBuildError, match="not a Keras 3 .keras file"):
        load_model(tmp_path / "junk.keras")
