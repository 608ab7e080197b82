"""Size and speed of the firmware's C core (firmware/zephyr_client/core).

Prints the Cortex-M4 (-mcpu=cortex-m4 -mthumb -Os) size of each core object and the total,
then the time to verify one SOTA package on this host: the C core (sota_verify, built without
sanitizers, one process per package, so process start-up is included) against the Python
verifier ota.sota.verify_package measured in the same run.

Run from the repository root:  python bench/firmware_size.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ota import keys  # noqa: E402
from ota.sota import build_package, verify_package  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

CORE = ROOT / "firmware" / "zephyr_client" / "core"
RUNS = 50


def make(build: Path, *targets: str, **overrides: str) -> str:
    args = ["make", "-s", "-C", str(CORE), f"BUILD={build}", *targets]
    args += [f"{k}={v}" for k, v in overrides.items()]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size_out = make(work / "arm", "size")
        print("C core for Cortex-M4 (-Os), bytes:")
        for line in size_out.splitlines():
            if line.split()[:1] == ["text"] or "(ex" in line or "(TOTALS)" in line:
                print("  " + line.split(" (ex ")[0])

        make(work / "host", "sota_verify", SAN="", HOST_CFLAGS="-std=c11 -O2 -Iinclude -Ihost")
        model = build_example_model(work)
        key = keys.generate_private_key("ed25519")
        pkg = build_package(model, name="classifier", version="1.0.0", private_key=key,
                            slot_size=65536)
        (work / "pub.raw").write_bytes(keys.raw_public_key(key))
        (work / "p.sota").write_bytes(pkg)
        cmd = [str(work / "host" / "sota_verify"), str(work / "pub.raw"), str(work / "p.sota")]

        t0 = time.perf_counter()
        for _ in range(RUNS):
            subprocess.run(cmd, check=True, capture_output=True)
        c_ms = (time.perf_counter() - t0) * 1000 / RUNS
        pub = keys.public_key_of(key)
        t0 = time.perf_counter()
        for _ in range(RUNS):
            verify_package(pkg, pub)
        py_ms = (time.perf_counter() - t0) * 1000 / RUNS
        print(f"verify one {len(pkg)}-byte package on this host ({RUNS} runs):")
        print(f"  ota.sota.verify_package (baseline): {py_ms:8.3f} ms")
        print(f"  C core sota_verify (incl. exec):    {c_ms:8.3f} ms  ratio {c_ms / py_ms:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
