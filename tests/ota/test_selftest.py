"""Self-test runs on the build machine: the example model's documented answer, and failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota.selftest import check_selftest, run_inference
from ota.sota import SelfTest, SotaSelftestError
from tests.support.wasm import wat_to_wasm

ABI = ('(memory (export "memory") 1)'
       '(func (export "input_buffer") (result i32) i32.const 16)'
       '(func (export "input_size") (result i32) i32.const 4)')


def test_example_model_answers_class_1_for_the_sample_input(example_model_wasm: bytes) -> None:
    assert run_inference(example_model_wasm, [1.0, 0.5, 0.2, 0.1]) == 1
    check_selftest(example_model_wasm, SelfTest((1.0, 0.5, 0.2, 0.1), 1))


def test_wrong_expected_class_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(SotaSelftestError, match="gave class 1, expected 2") as e:
        check_selftest(example_model_wasm, SelfTest((1.0, 0.5, 0.2, 0.1), 2))
    assert e.value.reason == "selftest"


def test_input_of_the_wrong_length_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(SotaSelftestError, match="2 input values, the model reads 4"):
        run_inference(example_model_wasm, [1.0, 2.0])


@pytest.mark.parametrize("body, reason", [
    ("(loop $l (br $l)) i32.const 0", "out of fuel"),
    ("unreachable", "unreachable"),
])
def test_model_that_loops_or_traps_is_refused(tmp_path: Path, body: str, reason: str) -> None:
    module = wat_to_wasm(f'(module {ABI} (func (export "infer") (result i32) {body}))', tmp_path)
    with pytest.raises(SotaSelftestError, match=reason):
        run_inference(module, [1.0, 2.0, 3.0, 4.0])
