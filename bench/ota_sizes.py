"""How many bytes a model update costs: full firmware image vs SOTA package vs delta.

Builds, in this run, a 256 KiB ARM firmware (arm-none-eabi-gcc) whose 64 KiB `.wasm_model`
section holds the example model, then the retrained model; prints the size of the full signed
MCUboot image, of the SOTA package carrying the retrained model, and of a detools delta from the
old model to the new one, with ratios against the full image measured in the same run.

Run from the repository root:  python bench/ota_sizes.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ota import elf, keys, mcuboot, sota  # noqa: E402
from ota.delta import apply_delta, make_delta  # noqa: E402
from tests.ota.elfbuild import build_firmware_elf  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

FIRMWARE_SIZE = 256 * 1024
SLOT_SIZE = 64 * 1024


def _firmware_binary(elf_path: Path, out: Path) -> bytes:
    """The flash image of the ELF (what a full update sends before signing)."""
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf_path), str(out)], check=True)
    return out.read_bytes()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old_model = build_example_model(work)
        new_model = build_example_model(work, bias_shift=0.25)
        # Build once to learn the size of code and libc, then size the filler so the flash
        # image comes out at 256 KiB.
        filler = FIRMWARE_SIZE - SLOT_SIZE
        for _ in range(2):
            old_elf = build_firmware_elf(work / "fw", old_model, arch="arm",
                                         slot_size=SLOT_SIZE, filler=filler)
            (work / "old.elf").write_bytes(old_elf)
            filler -= len(_firmware_binary(work / "old.elf", work / "old.bin")) - FIRMWARE_SIZE
        new_elf = elf.rewrite_section(old_elf, new_model)
        (work / "new.elf").write_bytes(new_elf)
        binary = _firmware_binary(work / "new.elf", work / "new.bin")
        key = keys.generate_private_key("ed25519")
        t0 = time.perf_counter()
        full = mcuboot.sign_image(binary, key, version="1.0.1")
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        package = sota.build_package(new_model, name="classifier", version="1.0.1",
                                     private_key=key, slot_size=SLOT_SIZE,
                                     selftest=([1.0, 0.5, 0.2, 0.1], 1))
        t_sota = time.perf_counter() - t0
        t0 = time.perf_counter()
        patch = make_delta(old_model, new_model)
        t_delta = time.perf_counter() - t0
        assert apply_delta(old_model, patch) == new_model

    print(f"firmware flash image (raw):           {len(binary):>8} bytes")
    print(f"full update (signed MCUboot image):   {len(full):>8} bytes   ({t_full * 1e3:.1f} ms)")
    print(f"SOTA package (retrained model):       {len(package):>8} bytes   ({t_sota * 1e3:.1f} ms)")
    print(f"  of which model payload:             {len(new_model):>8} bytes")
    print(f"  of which header + signed manifest:  {len(package) - len(new_model):>8} bytes")
    print(f"delta old->new model (detools):       {len(patch):>8} bytes   ({t_delta * 1e3:.1f} ms)")
    print(f"ratio full / SOTA:                    {len(full) / len(package):>8.1f}x")
    print(f"ratio full / delta:                   {len(full) / len(patch):>8.1f}x")
    print(f"ratio SOTA / delta:                   {len(package) / len(patch):>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
