"""The parity check: the Python model and its Wasm module on the same rows must agree.

Data is a CSV file: one row per sample, the model's features as numbers, optionally a label
column (named ``label``, ``class``, ``target`` or ``y`` in a header row, or else the one column
past the model's features, the last). Agreement compares class answers; accuracy compares the
Wasm module's answers with the labels, where there are labels.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelBuildError

__all__ = ["CheckData", "Parity", "read_csv", "compare", "LABEL_COLUMNS"]

LABEL_COLUMNS = ("label", "class", "target", "y")


@dataclass(frozen=True)
class CheckData:
    """Feature rows (floats) and, when the file has them, their labels (text as written)."""

    rows: tuple[tuple[float, ...], ...]
    labels: tuple[str, ...] | None


@dataclass(frozen=True)
class Parity:
    """How far the Wasm module matches the Python model on the check rows."""

    rows: int
    agreement: float  # share of rows where both answer the same class
    accuracy: float | None  # share of rows where the Wasm answer equals the label
    python_accuracy: float | None
    disagreements: tuple[int, ...]  # row numbers (0-based, data rows) that differ
    selftest: tuple[tuple[float, ...], int] | None  # a row both agree on, and its class index

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "agreement": self.agreement, "accuracy": self.accuracy,
                "python_accuracy": self.python_accuracy,
                "disagreements": list(self.disagreements[:20])}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_csv(path: str | Path, n_features: int) -> CheckData:
    """Rows and labels of ``path`` for a model reading ``n_features`` features."""
    try:
        with open(path, newline="") as f:
            table = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except OSError as e:
        raise ModelBuildError(f"cannot read check data {path}: {e.strerror or e}") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise ModelBuildError(f"{path} is not a CSV file: {e}") from None
    if not table:
        raise ModelBuildError(f"{path} holds no rows")
    header = None
    if not all(_is_number(c) for c in table[0]):
        header, table = [c.strip().lower() for c in table[0]], table[1:]
    if not table:
        raise ModelBuildError(f"{path} has a header but no data rows")
    width = len(table[0])
    label_col: int | None = None
    if header is not None and any(h in LABEL_COLUMNS for h in header):
        label_col = next(i for i, h in enumerate(header) if h in LABEL_COLUMNS)
    elif width == n_features + 1:
        label_col = width - 1
    n_cols = width - (label_col is not None)
    if n_cols != n_features:
        raise ModelBuildError(f"feature-count mismatch: {path} has {n_cols} feature columns"
                              f"{' and a label column' if label_col is not None else ''}, the "
                              f"model reads {n_features} features")
    rows: list[tuple[float, ...]] = []
    labels: list[str] = []
    for lineno, r in enumerate(table, start=2 if header else 1):
        if len(r) != width:
            raise ModelBuildError(f"{path} line {lineno}: {len(r)} columns, the first row has {width}")
        try:
            feats = tuple(float(c) for i, c in enumerate(r) if i != label_col)
        except ValueError:
            raise ModelBuildError(f"{path} line {lineno}: a feature is not a number") from None
        if not all(math.isfinite(v) for v in feats):
            raise ModelBuildError(f"{path} line {lineno}: features must be finite numbers")
        rows.append(feats)
        if label_col is not None:
            labels.append(r[label_col].strip())
    return CheckData(tuple(rows), tuple(labels) if label_col is not None else None)


def _same_label(text: str, label: Any) -> bool:
    if isinstance(label, (int, float)) and _is_number(text):
        return float(text) == float(label)
    return text == str(label)


def compare(data: CheckData, python: Sequence[int], wasm: Sequence[int],
            classes: Sequence[Any]) -> Parity:
    """Agreement and accuracy of the class indices ``python`` and ``wasm`` on ``data``."""
    n = len(data.rows)
    differ = tuple(i for i in range(n) if int(python[i]) != int(wasm[i]))

    def accuracy(answers: Sequence[int]) -> float | None:
        if data.labels is None:
            return None
        hits = sum(1 for a, lab in zip(answers, data.labels)
                   if 0 <= int(a) < len(classes) and _same_label(lab, classes[int(a)]))
        return hits / n

    agree = [i for i in range(n) if int(python[i]) == int(wasm[i])]
    selftest = (data.rows[agree[0]], int(wasm[agree[0]])) if agree else None
    return Parity(rows=n, agreement=(n - len(differ)) / n, accuracy=accuracy(wasm),
                  python_accuracy=accuracy(python), disagreements=differ, selftest=selftest)
