"""``ota.modelbuild``: each supported kind builds to a model Wasm module that agrees with the
Python model in wasmtime; clear refusals for what cannot be built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ota.modelbuild import ModelBuildError, build_model, sota_package
from ota.modelbuild.parity import read_csv
from ota.modelbuild.source import describe_estimator
from ota.sota import parse_package, verify_package
from ota.wasm import inspect_module

from .conftest import train

KINDS = ["DecisionTreeClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
         "MLPClassifier", "GaussianNB"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_supported_kind_builds_and_agrees_with_python_on_every_row(
        kind: str, iris: tuple[Any, Any], iris_csv: Path) -> None:
    model = train(kind, *iris)
    result = build_model(describe_estimator(model), check=iris_csv, min_agreement=0.99)
    info = inspect_module(result.wasm)  # the same checks as artifact upload and devices
    assert info.imports == () and info.memory_pages == 1
    assert result.parity is not None and result.parity.rows == 150
    assert result.parity.agreement >= 0.99
    assert result.parity.accuracy is not None and result.parity.accuracy > 0.9
    assert abs(result.parity.accuracy - result.parity.python_accuracy) <= 0.01  # type: ignore[operator]
    report = result.report()
    assert 0 < report["wasm_size"] == len(result.wasm) < 65536
    assert 0 < report["instructions_per_inference"] <= report["instructions_max"] < 100_000
    assert report["static_memory"] < report["peak_memory"] <= 65536


def test_python_predictions_and_the_wasm_module_match_row_by_row(iris: tuple[Any, Any]) -> None:
    from ota.modelbuild.measure import WasmModel

    X, y = iris
    model = train("MLPClassifier", X, y)
    result = build_model(describe_estimator(model))
    wasm = WasmModel(result.wasm)
    answers = [wasm.infer(list(row)) for row in X[::5]]
    assert [c for c, _ in answers] == list(model.predict(X[::5]))
    # output_score is the class probability: close to what predict_proba says
    proba = model.predict_proba(X[::5])
    for (cls, score), p in zip(answers, proba):
        assert score == pytest.approx(p[cls], abs=1e-4)


def test_string_labels_map_to_class_indices_and_accuracy_compares_labels(
        iris: tuple[Any, Any], tmp_path: Path) -> None:
    import numpy as np

    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = train("DecisionTreeClassifier", X, names)
    csv = tmp_path / "named.csv"
    csv.write_text("a,b,c,d,species\n" + "".join(
        ",".join(f"{v:g}" for v in row) + f",{n}\n" for row, n in zip(X, names)))
    result = build_model(describe_estimator(model), check=csv)
    assert result.spec.classes == ("setosa", "versicolor", "virginica")
    assert result.parity is not None and result.parity.agreement == 1.0
    assert result.parity.accuracy == pytest.approx(model.score(X, names), abs=1e-9)


def test_unsupported_estimators_are_refused_with_the_supported_list(iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression  # noqa: I001
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ModelBuildError, match="unsupported model .*LogisticRegression.*"
                                              "supported: DecisionTreeClassifier"):
        describe_estimator(LogisticRegression(max_iter=1000).fit(*iris))
    with pytest.raises(ModelBuildError, match="Pipeline: build its final step"):
        describe_estimator(make_pipeline(StandardScaler(), train("GaussianNB", *iris)).fit(*iris))
    from sklearn.tree import DecisionTreeClassifier
    with pytest.raises(ModelBuildError, match="not trained: call fit"):
        describe_estimator(DecisionTreeClassifier())


def test_check_data_with_another_feature_count_is_refused(iris: tuple[Any, Any],
                                                          tmp_path: Path) -> None:
    csv = tmp_path / "three.csv"
    csv.write_text("1,2,3\n4,5,6\n")
    spec = describe_estimator(train("GaussianNB", *iris))
    with pytest.raises(ModelBuildError, match="feature-count mismatch: .* has 3 feature columns, "
                                              "the model reads 4"):
        build_model(spec, check=csv)
    csv.write_text("a,b,c,d,e,label\n1,2,3,4,5,0\n")
    with pytest.raises(ModelBuildError, match="5 feature columns and a label column"):
        read_csv(csv, 4)


def test_a_model_too_large_for_memory_or_slot_is_refused_with_sizes(iris: tuple[Any, Any]) -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = rng.integers(0, 4, 3000)
    import warnings

    from sklearn.neural_network import MLPClassifier

    # trees compile to code: deep trees on noise outgrow the slot
    forest = RandomForestClassifier(30, random_state=0).fit(X, y)
    with pytest.raises(ModelBuildError, match=r"the module is \d+ bytes, larger than the "
                                              r"65536-byte model slot: train a smaller model"):
        build_model(describe_estimator(forest))
    # a net's weights are data: 200x200 floats do not fit one 64 KiB page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide = MLPClassifier((200, 200), max_iter=1).fit(X, y)
    with pytest.raises(ModelBuildError, match=r"needs \d+ memory pages .* but a model may use 1 "
                                              r"\(64 KiB\): train a smaller model"):
        build_model(describe_estimator(wide))
    assert build_model(describe_estimator(wide), memory_pages=4, slot_size=1 << 20).info.memory_pages == 4
    small = train("MLPClassifier", *iris)
    with pytest.raises(ModelBuildError, match=r"larger than the 1024-byte model slot"):
        build_model(describe_estimator(small), slot_size=1024)


def test_low_agreement_fails_the_build_and_names_the_rows(iris: tuple[Any, Any],
                                                         tmp_path: Path) -> None:
    from ota.modelbuild.parity import CheckData
    from ota.modelbuild.source import ModelSpec

    spec = describe_estimator(train("DecisionTreeClassifier", *iris))
    # a "Python model" that answers class 0 everywhere: the module cannot agree with it
    liar = ModelSpec(kind=spec.kind, family=spec.family, n_features=4, classes=spec.classes,
                     model=spec.model, predict_index=lambda x: [0] * len(x))
    X, _ = iris
    data = CheckData(rows=tuple(tuple(float(v) for v in r) for r in X), labels=None)
    with pytest.raises(ModelBuildError, match=r"agrees with the Python model on 33\.33% of 150 "
                                              r"rows, below --min-agreement 99\.00%"):
        build_model(liar, check=data)
    assert build_model(liar, check=data, min_agreement=0.3).parity.agreement == pytest.approx(1 / 3)  # type: ignore[union-attr]


def test_sota_package_takes_its_self_test_from_a_checked_row(iris: tuple[Any, Any],
                                                             iris_csv: Path) -> None:
    from ota.keys import generate_private_key, public_key_of

    key = generate_private_key("ed25519")
    result = build_model(describe_estimator(train("RandomForestClassifier", *iris)), check=iris_csv)
    pkg = sota_package(result, private_key=key, name="iris", version="1.1.0")
    manifest = verify_package(pkg, public_key_of(key), slot_size=65536).manifest
    assert manifest.selftest is not None
    assert tuple(manifest.selftest.input) == result.parity.selftest[0]  # type: ignore[union-attr]
    assert manifest.name == "iris" and parse_package(pkg).payload == result.wasm
