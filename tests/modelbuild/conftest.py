"""Tiny models trained in the test run (scikit-learn's bundled iris data, seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn", reason="model build tests need the model extra")


@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def iris_csv(tmp_path_factory: pytest.TempPathFactory, iris: tuple[Any, Any]) -> Path:
    import numpy as np

    X, y = iris
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%g",
               header="sepal_length,sepal_width,petal_length,petal_width,label", comments="")
    return path


def train(kind: str, X: Any, y: Any) -> Any:
    """A small trained estimator of ``kind`` (deterministic)."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    makers = {
        "DecisionTreeClassifier": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
        "RandomForestClassifier": lambda: RandomForestClassifier(10, max_depth=4, random_state=0),
        "ExtraTreesClassifier": lambda: ExtraTreesClassifier(10, max_depth=5, random_state=0),
        "MLPClassifier": lambda: MLPClassifier((8,), max_iter=3000, random_state=0),
        "GaussianNB": GaussianNB,
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return makers[kind]().fit(X, y)


@pytest.fixture(scope="session")
def iris_forest_file(tmp_path_factory: pytest.TempPathFactory, iris: tuple[Any, Any]) -> Path:
    import joblib

    path = tmp_path_factory.mktemp("models") / "iris.joblib"
    joblib.dump(train("RandomForestClassifier", *iris), path)
    return path
