"""Build firmware ELFs with a model section in the test run (host gcc, arm-none-eabi-gcc).

The model slot is a fixed-size const array in ``.wasm_model``: the module, then 0xFF up to the
slot size (docs/sota-format.md). ``filler`` bytes of pseudo-random read-only data make the
firmware as large as a real one (the benchmark uses a 256 KiB image).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

TOOLCHAINS = {
    "x86_64": ["gcc", "-O1", "-no-pie"],
    "arm": ["arm-none-eabi-gcc", "-O1", "-mcpu=cortex-m4", "-mthumb", "-specs=nosys.specs"],
}

_SOURCE = """\
#include <stdint.h>
#define SLOT_SIZE {slot}
__attribute__((section("{section}"), used, aligned(4)))
const uint8_t wasm_model_slot[SLOT_SIZE] = {{ {init} }};
__asm__(".section .rodata.filler,\\"a\\"\\n.global app_filler\\napp_filler:\\n"
        ".incbin \\"{filler}\\"\\n.previous\\n");
extern const uint8_t app_filler[];
volatile uint32_t sink;
int main(void) {{
    sink = wasm_model_slot[0] + app_filler[0];
    return 0;
}}
"""


def build_firmware_elf(out_dir: Path, module: bytes, *, arch: str = "x86_64",
                       slot_size: int = 65536, section: str = ".wasm_model",
                       filler: int = 4096, seed: int = 1) -> bytes:
    """Compile a small application whose ``section`` holds ``module`` padded to ``slot_size``."""
    cc = TOOLCHAINS[arch]
    if shutil.which(cc[0]) is None:
        raise RuntimeError(f"{cc[0]} is needed: run the README's test command")
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = out_dir / f"filler_{arch}.bin"
    blob.write_bytes(random.Random(seed).randbytes(max(filler, 1)))
    init = ", ".join(str(b) for b in module)
    init = (init + ", " if module else "") + f"[{len(module)} ... SLOT_SIZE - 1] = 0xFF"
    src = out_dir / f"app_{arch}.c"
    src.write_text(_SOURCE.format(slot=slot_size, section=section, init=init,
                                  filler=blob.name))
    out = out_dir / f"app_{arch}.elf"
    subprocess.run([*cc, "-o", str(out), src.name], cwd=out_dir, check=True,
                   capture_output=True)
    return out.read_bytes()
