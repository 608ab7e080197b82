"""Parsers of untrusted bytes fail only with their own error, whatever the input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota import keys
from ota.elf import ElfError, list_sections, read_model
from ota.mcuboot import McubootError, parse_image, sign_image, verify_image
from ota.sota import SotaError, build_package, verify_package
from ota.wasm import WasmError, inspect_module, module_extent

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with a few bytes flipped, truncated, or extended."""
    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
        out = bytes(data if cut is None else data[:cut])
        return out + draw(st.binary(max_size=8))
    return mutate()


@pytest.fixture(scope="module")
def package(example_model_wasm: bytes) -> tuple[bytes, keys.PublicKey]:
    key = keys.generate_private_key("ed25519")
    return (build_package(example_model_wasm, name="clf", version="1.0.0", private_key=key,
                          slot_size=65536, selftest=([1.0, 0.5, 0.2, 0.1], 1)),
            keys.public_key_of(key))


@FUZZ
@given(data=st.data())
def test_mutated_packages_fail_only_with_sota_errors(package: tuple[bytes, keys.PublicKey],
                                                     data: st.DataObject) -> None:
    pkg, pub = package
    mutated = data.draw(_mutations(pkg))
    try:
        result = verify_package(mutated, pub, slot_size=65536)
    except SotaError as e:
        assert e.reason in {"format", "oversize", "signature", "hash", "wasm"}
    else:  # only changes the signature does not cover can pass, and then nothing changed
        assert result.payload == pkg[-len(result.payload):]


@FUZZ
@given(data=st.data())
def test_mutated_modules_fail_only_with_wasm_errors(example_model_wasm: bytes,
                                                    data: st.DataObject) -> None:
    mutated = data.draw(_mutations(example_model_wasm))
    for check in (inspect_module, module_extent):
        try:
            check(mutated)
        except WasmError:
            pass


@FUZZ
@given(data=st.data())
def test_mutated_images_fail_only_with_mcuboot_errors(data: st.DataObject) -> None:
    image = sign_image(b"app" * 100, None, version="1.0.0")
    mutated = data.draw(_mutations(image))
    try:
        parse_image(mutated)
        verify_image(mutated)
    except McubootError:
        pass


@FUZZ
@given(data=st.data())
def test_mutated_elfs_fail_only_with_elf_errors(firmware_elfs: dict[str, bytes],
                                                data: st.DataObject) -> None:
    base = firmware_elfs[data.draw(st.sampled_from(["x86_64", "arm"]))]
    # The parser reads the ELF header and the section header table (at the end of the file).
    if data.draw(st.booleans()):
        mutated = data.draw(_mutations(base[:256])) + base[256:]
    else:
        mutated = base[:-2048] + data.draw(_mutations(base[-2048:]))
    try:
        list_sections(mutated)
        read_model(mutated)
    except (ElfError, WasmError):
        pass
