"""Delta patches between model versions."""

from __future__ import annotations

import pytest

from ota import keys
from ota.delta import DeltaError, apply_delta, delta_if_smaller, make_delta
from ota.sota import build_package


def test_delta_turns_the_old_model_into_the_new_one(example_model_wasm: bytes,
                                                    retrained_model_wasm: bytes) -> None:
    assert example_model_wasm != retrained_model_wasm
    patch = make_delta(example_model_wasm, retrained_model_wasm)
    assert apply_delta(example_model_wasm, patch) == retrained_model_wasm


def test_delta_of_a_retrained_model_is_smaller_than_the_package(
        example_model_wasm: bytes, retrained_model_wasm: bytes, ed_key: keys.PrivateKey) -> None:
    package = build_package(retrained_model_wasm, name="clf", version="1.0.1",
                            private_key=ed_key, slot_size=65536)
    patch = delta_if_smaller(example_model_wasm, retrained_model_wasm, len(package))
    assert patch is not None and len(patch) < len(package) // 4


def test_delta_is_not_offered_when_larger_than_the_plain_package(
        example_model_wasm: bytes) -> None:
    unrelated = bytes(reversed(example_model_wasm))
    assert delta_if_smaller(example_model_wasm, unrelated, 16) is None


def test_corrupt_patch_is_refused(example_model_wasm: bytes,
                                  retrained_model_wasm: bytes) -> None:
    with pytest.raises(DeltaError, match="patch does not apply"):
        apply_delta(example_model_wasm, b"\x00garbage patch")
