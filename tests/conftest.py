"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.wasm import build_example_model


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Settings built without a data folder use a temporary one, never the user's."""
    import os

    os.environ.setdefault("LWM2M_DATA_DIR", str(tmp_path_factory.mktemp("data-dir")))


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
