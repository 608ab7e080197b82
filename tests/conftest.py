"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.wasm import build_example_model


@pytest.fixture(scope="session")
def example_model_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The example classifier compiled to Wasm in this test run."""
    return build_example_model(tmp_path_factory.mktemp("wasm"))


@pytest.fixture(scope="session")
def retrained_model_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The example classifier with shifted output biases: a second version of the model."""
    return build_example_model(tmp_path_factory.mktemp("wasm2"), bias_shift=0.25)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
