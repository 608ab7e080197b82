"""Trained models in, one uniform description out: what ``build_model`` compiles and checks.

scikit-learn estimators come from a joblib or pickle file. Unpickling runs code chosen by
whoever wrote the file, so only files the user trusts may be loaded (the CLI says so). Keras
Sequential models of dense layers come from a ``.keras`` file (a zip with ``config.json`` and
``model.weights.h5``), read with h5py: building needs neither Keras nor a Keras backend.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelBuildError

__all__ = ["ModelSpec", "DenseNet", "load_model", "describe_estimator", "read_keras",
           "SKLEARN_KINDS", "SUPPORTED_KINDS"]

# scikit-learn class name -> code family (how codegen turns it into C).
SKLEARN_KINDS: dict[str, str] = {
    "DecisionTreeClassifier": "trees",
    "RandomForestClassifier": "trees",
    "ExtraTreesClassifier": "trees",
    "MLPClassifier": "net",
    "GaussianNB": "bayes",
}
SUPPORTED_KINDS = (*SKLEARN_KINDS, "keras Sequential (Dense layers)")
# Activation names as emlearn's C code spells them (EmlNetActivationFunction).
_KERAS_ACTIVATIONS = {"linear": "identity", "relu": "relu", "sigmoid": "logistic",
                      "softmax": "softmax", "tanh": "tanh"}
_KERAS_SKIPPED = {"InputLayer", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout"}


@dataclass(frozen=True)
class DenseNet:
    """A feed-forward net of dense layers: per layer weights (in x out), biases, activation."""

    weights: tuple[Any, ...]  # numpy arrays, shape (n_in, n_out)
    biases: tuple[Any, ...]
    activations: tuple[str, ...]  # emlearn names: identity, relu, logistic, softmax, tanh

    def forward(self, x: Any) -> Any:
        """Outputs of the last layer for the rows of ``x`` (numpy, float32 as on the device)."""
        import numpy as np

        out = np.asarray(x, dtype=np.float32)
        for w, b, act in zip(self.weights, self.biases, self.activations):
            out = out @ w.astype(np.float32) + b.astype(np.float32)
            if act == "relu":
                out = np.maximum(out, 0)
            elif act == "logistic":
                out = 1 / (1 + np.exp(-out))
            elif act == "tanh":
                out = np.tanh(out)
            elif act == "softmax":
                e = np.exp(out - out.max(axis=1, keepdims=True))
                out = e / e.sum(axis=1, keepdims=True)
        return out

    def predict_index(self, x: Any) -> Any:
        """Class index per row: argmax, or a 0.5 threshold for a single output."""
        import numpy as np

        out = self.forward(x)
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return out.argmax(axis=1)


@dataclass(frozen=True)
class ModelSpec:
    """A loaded model: its kind, shape and a Python reference that answers class indices."""

    kind: str  # scikit-learn class name, or "keras.Sequential"
    family: str  # trees | net | bayes
    n_features: int
    classes: tuple[Any, ...]  # class labels; a Wasm answer i means classes[i]
    model: Any  # the estimator, or a DenseNet
    predict_index: Callable[[Any], Any]  # rows (n, n_features) -> class indices (n,)


def load_model(path: str | Path) -> ModelSpec:
    """Load a trained model from ``path`` (joblib/pickle or ``.keras``) and describe it."""
    p = Path(path)
    try:
        head = p.read_bytes()[:4]
    except OSError as e:
        raise ModelBuildError(f"cannot read model file {p}: {e.strerror or e}") from None
    if head.startswith(b"PK"):
        return read_keras(p)
    try:
        import joblib  # type: ignore[import-untyped]
    except ImportError:
        raise ModelBuildError("loading scikit-learn models needs scikit-learn and joblib: "
                              "pip install 'lwm2m-server[model]'") from None
    try:
        estimator = joblib.load(p)
    except Exception as e:  # unpickling can raise anything the file's code raises
        raise ModelBuildError(f"cannot load {p} as a joblib/pickle file: "
                              f"{type(e).__name__}: {e}") from None
    return describe_estimator(estimator)


def describe_estimator(estimator: Any) -> ModelSpec:
    """A ``ModelSpec`` for a trained scikit-learn estimator; ModelBuildError when unsupported."""
    kind = type(estimator).__name__
    family = SKLEARN_KINDS.get(kind)
    if family is None:
        hint = (" (a Pipeline: build its final step and apply the preprocessing before the "
                "features reach the device)" if kind == "Pipeline" else "")
        raise ModelBuildError(f"unsupported model {type(estimator).__module__}.{kind}{hint}; "
                              f"supported: {', '.join(SUPPORTED_KINDS)}")
    if not hasattr(estimator, "classes_") or not hasattr(estimator, "n_features_in_"):
        raise ModelBuildError(f"the {kind} is not trained: call fit() before saving it")
    import numpy as np

    classes = tuple(estimator.classes_.tolist())
    if len(classes) < 2:
        raise ModelBuildError(f"the {kind} knows {len(classes)} class; a classifier needs two or more")
    if family == "net" and estimator.n_layers_ < 3:
        raise ModelBuildError("the MLPClassifier has no hidden layer")

    def predict_index(x: Any) -> Any:
        labels = estimator.predict(np.asarray(x, dtype=np.float32))
        return np.searchsorted(estimator.classes_, labels)

    return ModelSpec(kind=kind, family=family, n_features=int(estimator.n_features_in_),
                     classes=classes, model=estimator, predict_index=predict_index)


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out


def read_keras(path: str | Path) -> ModelSpec:
    """A ``ModelSpec`` from a Keras 3 ``.keras`` file of a Sequential model of Dense layers."""
    try:
        import h5py  # type: ignore[import-untyped]
        import numpy as np
    except ImportError:
        raise ModelBuildError("reading .keras files needs h5py and numpy: "
                              "pip install 'lwm2m-server[model]'") from None
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            config = json.loads(z.read("config.json"))
            weights_blob = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise ModelBuildError(f"{p} is not a Keras 3 .keras file (a zip with config.json and "
                              f"model.weights.h5): {e}") from None
    if config.get("class_name") != "Sequential":
        raise ModelBuildError(f"unsupported Keras model {config.get('class_name')!r}: only "
                              "Sequential models of Dense layers can be built")
    layers = config.get("config", {}).get("layers", [])
    weights: list[Any] = []
    biases: list[Any] = []
    activations: list[str] = []
    seen: dict[str, int] = {}
    with h5py.File(io.BytesIO(weights_blob), "r") as h5:
        for layer in layers:
            cls, cfg = layer.get("class_name"), layer.get("config", {})
            if cls in _KERAS_SKIPPED:
                continue
            # Keras 3 stores each layer's variables under a name made from its class, with a
            # counter for repeats ("dense", "dense_1", ...), whatever the layer was called.
            key = _snake(str(cls))
            n = seen.get(key, 0)
            seen[key] = n + 1
            group = f"layers/{key}" + (f"_{n}" if n else "")
            if cls == "Dense":
                act = _activation(cfg.get("activation"))
                if not cfg.get("use_bias", True):
                    raise ModelBuildError(f"Dense layer {cfg.get('name')!r} has no bias; "
                                          "build it with use_bias=True")
                try:
                    kernel = np.asarray(h5[f"{group}/vars/0"], dtype=np.float32)
                    bias = np.asarray(h5[f"{group}/vars/1"], dtype=np.float32)
                except KeyError:
                    raise ModelBuildError(f"{p}: no weights for Dense layer "
                                          f"{cfg.get('name')!r} (expected {group}/vars)") from None
                if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
                    raise ModelBuildError(f"Dense layer {cfg.get('name')!r}: unexpected weight "
                                          f"shapes {kernel.shape} and {bias.shape}")
                if weights and weights[-1].shape[1] != kernel.shape[0]:
                    raise ModelBuildError(f"Dense layer {cfg.get('name')!r} takes "
                                          f"{kernel.shape[0]} inputs but the layer before has "
                                          f"{weights[-1].shape[1]} outputs")
                weights.append(kernel)
                biases.append(bias)
                activations.append(act)
            elif cls in ("Activation", "ReLU", "Softmax") and weights:
                name = {"ReLU": "relu", "Softmax": "softmax"}.get(
                    str(cls)) or _activation(cfg.get("activation"))
                if activations[-1] != "identity":
                    raise ModelBuildError(f"layer {cfg.get('name')!r} applies {name} after an "
                                          f"activation ({activations[-1]}): not supported")
                activations[-1] = name
            else:
                raise ModelBuildError(f"unsupported Keras layer {cls} ({cfg.get('name')!r}): "
                                      "only Dense, Activation, ReLU, Softmax and Dropout")
    if not weights:
        raise ModelBuildError(f"{p}: the model has no Dense layer")
    n_out = int(weights[-1].shape[1])
    net = DenseNet(tuple(weights), tuple(biases), tuple(activations))
    return ModelSpec(kind="keras.Sequential", family="net", n_features=int(weights[0].shape[0]),
                     classes=tuple(range(2 if n_out == 1 else n_out)), model=net,
                     predict_index=net.predict_index)


def _activation(value: Any) -> str:
    name = value if isinstance(value, str) else (value or {}).get("config", {}).get("name", value)
    if name not in _KERAS_ACTIVATIONS:
        raise ModelBuildError(f"unsupported Keras activation {name!r}; supported: "
                              f"{', '.join(_KERAS_ACTIVATIONS)}")
    return _KERAS_ACTIVATIONS[str(name)]
