"""The firmware's model section and the server's OTA toolchain agree on real ELF files.

The factory model source (src/model_slot.c) and the linker snippet (wasm_model.ld) of the
Zephyr application are built with arm-none-eabi-gcc into a Cortex-M4 ELF (a stub devicetree
header stands in for Zephyr's); `ota.elf` must find the module there, `lwm2m-server sota
build --elf` must take the slot size from it, and the package must verify in the C core.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ota import elf as ota_elf
from ota import keys
from tests.firmware.conftest import CORE, CoreBuild

FW = CORE.parent
SLOT = 65536
MODEL_A = 0xD4000  # boards/*.overlay: model_a_partition

STUB_DEVICETREE = f"""
#define DT_CHOSEN(x) 0
#define DT_NODELABEL(x) 1
#define DT_REG_ADDR(node) ((node) ? {MODEL_A:#x} : 0x0)
"""

LINKER = """
MEMORY { FLASH (rx) : ORIGIN = 0x0000c000, LENGTH = 400K
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 256K }
ENTRY(reset)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH
  .data : { *(.data*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss*) } > RAM
#include "wasm_model.ld"
}
"""

MAIN = """
#include <stdint.h>
extern const uint8_t wasm_model_slot[];
volatile uint8_t sink;
void reset(void) { sink = wasm_model_slot[0]; for (;;) { } }
"""


@pytest.fixture(scope="module")
def firmware_elf(tmp_path_factory: pytest.TempPathFactory, example_model_wasm: bytes) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is needed: run the README's test command (scripts/test.sh)")
    d = tmp_path_factory.mktemp("elf")
    (d / "zephyr").mkdir()
    (d / "zephyr" / "devicetree.h").write_text(STUB_DEVICETREE)
    padded = ota_elf.slot_bytes(example_model_wasm, SLOT)
    (d / "model_slot.inc").write_text(",".join(f"0x{b:02x}" for b in padded) + "\n")
    (d / "main.c").write_text(MAIN)
    (d / "link.ld.S").write_text(LINKER)
    gcc = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-Os"]
    steps = [
        [*gcc, "-E", "-P", "-x", "c", f"-I{d}", f"-I{FW}", str(d / "link.ld.S"),
         "-o", str(d / "link.ld")],
        [*gcc, "-c", f"-DMODEL_SLOT_SIZE={SLOT}", f"-I{d}", str(FW / "src" / "model_slot.c"),
         "-o", str(d / "model_slot.o")],
        [*gcc, "-c", str(d / "main.c"), "-o", str(d / "main.o")],
        [*gcc, "-nostdlib", "-T", str(d / "link.ld"), str(d / "main.o"),
         str(d / "model_slot.o"), "-o", str(d / "zephyr.elf")],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    # What the build does for flashing: the section alone as Intel hex at the partition.
    subprocess.run(["arm-none-eabi-objcopy", "-O", "ihex", "--only-section=.wasm_model",
                    "--set-section-flags", ".wasm_model=alloc,load,contents,readonly",
                    str(d / "zephyr.elf"), str(d / "model_a.hex")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(d / "zephyr.elf"),
                    str(d / "zephyr.bin")], check=True)
    return d / "zephyr.elf"


def test_model_section_lands_at_model_a_and_ota_reads_the_factory_model(
    firmware_elf: Path, example_model_wasm: bytes,
) -> None:
    data = firmware_elf.read_bytes()
    sec = ota_elf.find_section(data)
    assert (sec.addr, sec.size) == (MODEL_A, SLOT)
    assert ota_elf.read_model(data) == example_model_wasm
    rewritten = ota_elf.rewrite_section(data, b"\0asm\x01\0\0\0")
    assert ota_elf.read_model(rewritten) == b"\0asm\x01\0\0\0"


def test_model_section_stays_out_of_the_code_image_and_has_its_own_hex(
    firmware_elf: Path, example_model_wasm: bytes,
) -> None:
    # zephyr.bin (what MCUboot signs) holds the code partition only, not 0xd4000 + 64 KiB
    assert firmware_elf.with_name("zephyr.bin").stat().st_size < 4096
    records = firmware_elf.with_name("model_a.hex").read_text().split()
    data = bytearray()
    base = 0
    for rec in records:
        raw = bytes.fromhex(rec[1:])
        kind, addr, payload = raw[3], int.from_bytes(raw[1:3], "big"), raw[4:-1]
        if kind == 4:  # extended linear address
            base = int.from_bytes(payload, "big") << 16
        elif kind == 2:  # extended segment address
            base = int.from_bytes(payload, "big") << 4
        elif kind == 0:
            if not data:
                start = base + addr
            data += payload
    assert start == MODEL_A
    assert bytes(data) == ota_elf.slot_bytes(example_model_wasm, SLOT)


def test_package_built_from_the_firmware_elf_verifies_in_the_c_core(
    firmware_elf: Path, retrained_model_wasm: bytes, core_build: CoreBuild, tmp_path: Path,
) -> None:
    key = keys.generate_private_key("p256")
    (tmp_path / "sign.pem").write_bytes(keys.private_key_pem(key))
    (tmp_path / "pub.pem").write_bytes(keys.public_key_pem(key))
    (tmp_path / "new.wasm").write_bytes(retrained_model_wasm)
    cli = shutil.which("lwm2m-server")
    assert cli is not None, "the package is installed editable with its CLI"
    proc = subprocess.run(
        [cli, "sota", "build", "--elf", str(firmware_elf), "--model", str(tmp_path / "new.wasm"),
         "--key", str(tmp_path / "sign.pem"), "--version", "1.1.0",
         "--selftest-input", "1,0.5,0.2,0.1", "--selftest-expected", "1",
         "-o", str(tmp_path / "new.sota")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verify = subprocess.run(
        [str(core_build.sota_verify), str(tmp_path / "pub.pem"), str(tmp_path / "new.sota"),
         "--slot-size", str(SLOT), "--installed-version", "1.0.0", "--stream", "512"],
        capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"slot_size={SLOT} payload_size={len(retrained_model_wasm)}" in verify.stdout
