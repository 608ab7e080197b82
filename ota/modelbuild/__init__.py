"""Trained Python models to model Wasm modules (docs/models.md, docs/model-abi.md).

Modules: ``source`` loads a scikit-learn estimator (joblib/pickle: trusted files only) or a
Keras ``.keras`` file of dense layers; ``codegen`` writes C through emlearn plus the model ABI;
``compiler`` builds it with clang/lld for wasm32; ``measure`` runs it in wasmtime (instruction
count, peak memory); ``parity`` compares it with the Python model on CSV rows; ``build`` ties
them together and signs SOTA packages. scikit-learn, emlearn, h5py and wasmtime are imported
only when a build runs (the ``model`` extra).
"""

from __future__ import annotations

from .build import DEFAULT_MIN_AGREEMENT, DEFAULT_SLOT_SIZE, BuildResult, build_model, sota_package
from .errors import ModelBuildError
from .source import SUPPORTED_KINDS, ModelSpec, load_model

__all__ = ["build_model", "sota_package", "BuildResult", "ModelBuildError", "ModelSpec",
           "load_model", "SUPPORTED_KINDS", "DEFAULT_SLOT_SIZE", "DEFAULT_MIN_AGREEMENT"]
