"""Wasm model checks: the example model passes; malformed or ABI-breaking modules are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota.wasm import WasmError, inspect_module, module_extent
from tests.support.wasm import wat_to_wasm

ABI_FUNCS = """
  (func (export "input_buffer") (result i32) i32.const 16)
  (func (export "input_size") (result i32) i32.const 4)
  (func (export "infer") (result i32) i32.const 1)
"""


def _wat(tmp_path: Path, body: str, name: str = "m") -> bytes:
    return wat_to_wasm(f"(module {body})", tmp_path, name)


def test_example_model_passes_and_is_described(example_model_wasm: bytes) -> None:
    info = inspect_module(example_model_wasm)
    assert info.size == len(example_model_wasm)
    assert info.memory_pages == 1 and info.memory_max_pages == 1
    assert {"memory", "input_buffer", "input_size", "infer", "output_score"} <= set(info.exports)
    assert info.exports["memory"] == "memory" and info.exports["infer"] == "func"
    assert info.imports == ()
    assert info.sections[0] == "type"


def test_minimal_handwritten_model_passes(tmp_path: Path) -> None:
    info = inspect_module(_wat(tmp_path, '(memory (export "memory") 1)' + ABI_FUNCS))
    assert info.functions == 3


def test_bad_magic_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(WasmError, match="magic"):
        inspect_module(b"\0ASM" + example_model_wasm[4:])


def test_bad_version_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(WasmError, match="version"):
        inspect_module(example_model_wasm[:4] + b"\x02\0\0\0" + example_model_wasm[8:])


def test_truncated_module_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(WasmError, match="runs past the end|unexpected end"):
        inspect_module(example_model_wasm[:-10])


def test_sections_out_of_order_are_refused() -> None:
    # memory section (5) then type section (1): wrong order.
    data = b"\0asm\x01\0\0\0" + b"\x05\x03\x01\x00\x01" + b"\x01\x01\x00"
    with pytest.raises(WasmError, match="type section out of order"):
        inspect_module(data, required_exports=())


def test_repeated_section_is_refused() -> None:
    data = b"\0asm\x01\0\0\0" + b"\x01\x01\x00" + b"\x01\x01\x00"
    with pytest.raises(WasmError, match="out of order or repeated"):
        inspect_module(data, required_exports=())


def test_section_size_running_past_the_end_is_refused() -> None:
    data = b"\0asm\x01\0\0\0" + b"\x01\x7f\x00"
    with pytest.raises(WasmError, match="runs past the end"):
        inspect_module(data, required_exports=())


def test_unknown_section_id_is_refused() -> None:
    with pytest.raises(WasmError, match="unknown section id 99"):
        inspect_module(b"\0asm\x01\0\0\0" + b"\x63\x00", required_exports=())


def test_import_outside_allowlist_is_refused(tmp_path: Path) -> None:
    module = _wat(tmp_path, '(import "env" "log" (func (param i32)))'
                  '(memory (export "memory") 1)' + ABI_FUNCS)
    with pytest.raises(WasmError, match=r"imports outside the allowlist: env\.log \(func\)"):
        inspect_module(module)
    info = inspect_module(module, allowed_imports={"env.log"})
    assert [str(i) for i in info.imports] == ["env.log (func)"]


def test_missing_required_export_is_refused(tmp_path: Path) -> None:
    module = _wat(tmp_path, '(memory (export "memory") 1)'
                  '(func (export "input_buffer") (result i32) i32.const 0)'
                  '(func (export "input_size") (result i32) i32.const 4)')
    with pytest.raises(WasmError, match="required export 'infer' is missing"):
        inspect_module(module)


def test_memory_not_exported_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WasmError, match="'memory' is missing"):
        inspect_module(_wat(tmp_path, "(memory 1)" + ABI_FUNCS))


def test_export_with_wrong_signature_is_refused(tmp_path: Path) -> None:
    module = _wat(tmp_path, '(memory (export "memory") 1)'
                  '(func (export "input_buffer") (result i32) i32.const 0)'
                  '(func (export "input_size") (result i32) i32.const 4)'
                  '(func (export "infer") (param i32) (result i32) i32.const 0)')
    with pytest.raises(WasmError, match=r"'infer' has signature \(i32\) -> \(i32\)"):
        inspect_module(module)


def test_export_of_wrong_kind_is_refused(tmp_path: Path) -> None:
    module = _wat(tmp_path, '(memory 1) (global (export "memory") i32 (i32.const 0))' + ABI_FUNCS)
    with pytest.raises(WasmError, match="'memory' is a global"):
        inspect_module(module)


def test_memory_above_the_page_limit_is_refused(tmp_path: Path) -> None:
    module = _wat(tmp_path, '(memory (export "memory") 4)' + ABI_FUNCS)
    with pytest.raises(WasmError, match="4 memory pages"):
        inspect_module(module)
    assert inspect_module(module, max_memory_pages=4).memory_pages == 4


def test_module_extent_finds_the_end_before_ff_padding(example_model_wasm: bytes) -> None:
    slot = example_model_wasm + b"\xff" * 5000
    assert module_extent(slot) == len(example_model_wasm)
    assert module_extent(example_model_wasm) == len(example_model_wasm)


def test_module_extent_refuses_an_erased_slot() -> None:
    with pytest.raises(WasmError, match="magic"):
        module_extent(b"\xff" * 64)
