"""ELF model-section rewrite on ELFs built in this run: byte identity outside the section."""

from __future__ import annotations

import re
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from ota import elf
from ota.elf import ElfError, ModelTooLargeError, find_section, read_model, rewrite_section
from tests.ota.elfbuild import build_firmware_elf

ARCHES = ["x86_64", "arm"]


def _readelf_sections(path: Path) -> list[tuple[str, str, str]]:
    out = subprocess.run(["readelf", "-S", "-W", str(path)], check=True, capture_output=True,
                         text=True).stdout
    rows = re.findall(r"\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", out)
    assert rows, out
    return rows


@pytest.mark.parametrize("arch", ARCHES)
def test_rewrite_changes_only_the_model_section(firmware_elfs: dict[str, bytes], arch: str,
                                                retrained_model_wasm: bytes) -> None:
    original = firmware_elfs[arch]
    sec = find_section(original)
    new = rewrite_section(original, retrained_model_wasm)
    assert len(new) == len(original)
    lo, hi = sec.offset, sec.offset + sec.size
    assert new[:lo] == original[:lo]
    assert new[hi:] == original[hi:]
    for i in range(len(original)):  # byte by byte, to name the first difference if any
        if not lo <= i < hi:
            assert new[i] == original[i], f"byte {i} outside the section changed"
    assert new[lo:hi] == retrained_model_wasm + b"\xff" * (sec.size - len(retrained_model_wasm))
    assert elf.list_sections(new) == elf.list_sections(original)


@pytest.mark.parametrize("arch", ARCHES)
def test_rewritten_elf_reads_with_readelf_and_pyelftools(
        firmware_elfs: dict[str, bytes], arch: str, retrained_model_wasm: bytes,
        tmp_path: Path) -> None:
    original = firmware_elfs[arch]
    new = rewrite_section(original, retrained_model_wasm)
    (tmp_path / "old.elf").write_bytes(original)
    (tmp_path / "new.elf").write_bytes(new)
    assert _readelf_sections(tmp_path / "new.elf") == _readelf_sections(tmp_path / "old.elf")
    ef = ELFFile(BytesIO(new))
    assert ef.elfclass == (64 if arch == "x86_64" else 32)
    assert ef["e_machine"] == ("EM_X86_64" if arch == "x86_64" else "EM_ARM")
    data = ef.get_section_by_name(".wasm_model").data()
    assert data[:len(retrained_model_wasm)] == retrained_model_wasm
    assert set(data[len(retrained_model_wasm):]) == {0xFF}
    sym = ef.get_section_by_name(".symtab").get_symbol_by_name("wasm_model_slot")[0]
    assert sym["st_size"] == 65536


@pytest.mark.parametrize("arch", ARCHES)
def test_read_model_returns_the_installed_module(firmware_elfs: dict[str, bytes], arch: str,
                                                 example_model_wasm: bytes,
                                                 retrained_model_wasm: bytes) -> None:
    assert read_model(firmware_elfs[arch]) == example_model_wasm
    assert read_model(rewrite_section(firmware_elfs[arch], retrained_model_wasm)) == \
        retrained_model_wasm


@pytest.mark.parametrize("arch", ARCHES)
def test_module_larger_than_the_section_is_refused(firmware_elfs: dict[str, bytes],
                                                   arch: str) -> None:
    with pytest.raises(ModelTooLargeError, match="65537 bytes does not fit the 65536-byte"):
        rewrite_section(firmware_elfs[arch], b"\0asm\x01\0\0\0" + bytes(65529))


def test_module_exactly_the_section_size_fits(firmware_elfs: dict[str, bytes]) -> None:
    module = bytes(range(256)) * 256
    new = rewrite_section(firmware_elfs["arm"], module)
    sec = find_section(new)
    assert new[sec.offset:sec.offset + sec.size] == module


def test_other_section_name_is_honoured(tmp_path: Path, example_model_wasm: bytes) -> None:
    image = build_firmware_elf(tmp_path, example_model_wasm, section=".ml_slot", slot_size=4096)
    assert find_section(image, ".ml_slot").size == 4096
    with pytest.raises(ElfError, match="no section '.wasm_model'"):
        rewrite_section(image, example_model_wasm)
    assert read_model(rewrite_section(image, example_model_wasm, ".ml_slot"), ".ml_slot") == \
        example_model_wasm


def test_not_an_elf_is_refused(example_model_wasm: bytes) -> None:
    with pytest.raises(ElfError, match="not an ELF"):
        rewrite_section(example_model_wasm + bytes(100), example_model_wasm)


def test_big_endian_elf_is_refused(firmware_elfs: dict[str, bytes],
                                   example_model_wasm: bytes) -> None:
    image = bytearray(firmware_elfs["arm"])
    image[5] = 2
    with pytest.raises(ElfError, match="big-endian"):
        rewrite_section(bytes(image), example_model_wasm)


def test_truncated_elf_is_refused(firmware_elfs: dict[str, bytes],
                                  example_model_wasm: bytes) -> None:
    image = firmware_elfs["x86_64"]
    with pytest.raises(ElfError, match="past the end"):
        rewrite_section(image[: len(image) // 2], example_model_wasm)


def test_section_overlapping_the_headers_is_refused(firmware_elfs: dict[str, bytes],
                                                    example_model_wasm: bytes) -> None:
    image = bytearray(firmware_elfs["x86_64"])
    sec = find_section(bytes(image))
    shoff = int.from_bytes(image[0x28:0x30], "little")
    header = shoff + sec.index * 64
    image[header + 0x18:header + 0x20] = (0).to_bytes(8, "little")  # sh_offset -> 0
    with pytest.raises(ElfError, match="overlaps the ELF header"):
        rewrite_section(bytes(image), example_model_wasm)
