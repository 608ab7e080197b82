"""Size and speed of the firmware's C core (firmware/zephyr_client/core).

Prints the Cortex-M4 (-mcpu=cortex-m4 -mthumb -Os) size of the core's objects (ours, with the
manifest decoder zcbor generates), of the zcbor runtime it links, and of both linked with
--gc-sections from the core's API (what a firmware image keeps). mbed TLS, which the core calls
through PSA Crypto, is not cross-built here (Debian ships it for the host only): the PSA
functions the core needs are listed; their size comes from the Zephyr build.

With --baseline REV the core of that git revision is built and linked the same way in the same
run (for example the last revision with the hand-written SHA-2/Ed25519/P-256/CBOR code) and the
ratio is printed. Then the time to verify one ES256 package on this host: the C core
(sota_verify, built without sanitizers, one process per package, so process start-up is
included) against the Python verifier ota.sota.verify_package measured in the same run.

Run from the repository root:  python bench/firmware_size.py [--baseline REV]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ota import keys  # noqa: E402
from ota.sota import build_package, verify_package  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

CORE_PATH = "firmware/zephyr_client/core"
CORE = ROOT / CORE_PATH
RUNS = 50
# The core's entry points a firmware calls (firmware/zephyr_client/src); the link keeps what
# they reach.
API = ("sota_verify_package", "sota_writer_init", "sota_writer_write", "sota_writer_finish",
       "sota_slots_boot", "sota_slots_activate", "sota_slots_inactive", "sota_err_name",
       "sota_err_update_result", "sota_version_parse", "sota_trust_alg_for_key_len")
CROSS = "arm-none-eabi-"


def make(core: Path, build: Path, *targets: str, **overrides: str) -> str:
    args = ["make", "-s", "-C", str(core), f"BUILD={build}", f"PYTHON={sys.executable}", *targets]
    args += [f"{k}={v}" for k, v in overrides.items()]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def archive_rows(lib: Path) -> list[tuple[str, int]]:
    """(object, text bytes) of each member of a Cortex-M4 archive."""
    out = subprocess.run([CROSS + "size", str(lib)], check=True, capture_output=True,
                         text=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        rows.append((parts[5], int(parts[0])))
    return rows


def linked(libs: list[Path], work: Path) -> tuple[int, list[str]]:
    """Text bytes kept when the archives are linked from API with --gc-sections, and the
    psa_* functions left for mbed TLS to provide."""
    elf = work / "linked.elf"
    cmd = [CROSS + "gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,--gc-sections",
           "-Wl,--unresolved-symbols=ignore-all", f"-Wl,-e,{API[0]}",
           *[f"-Wl,-u,{sym}" for sym in API[1:]], "-o", str(elf), *map(str, libs)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    size = subprocess.run([CROSS + "size", str(elf)], check=True, capture_output=True,
                          text=True).stdout.splitlines()[1].split()
    undefined = subprocess.run([CROSS + "nm", "-u", str(elf)], check=True, capture_output=True,
                               text=True).stdout.split()
    return int(size[0]), sorted(s for s in undefined if s.startswith("psa_"))


def print_archive(title: str, lib: Path) -> int:
    rows = archive_rows(lib)
    total = sum(n for _, n in rows)
    print(f"{title}: {total} bytes of text")
    for name, n in rows:
        print(f"  {n:7d}  {name}")
    return total


def baseline_core(rev: str, work: Path) -> Path:
    """The core folder of git revision ``rev`` (this repository's own history), unpacked."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, CORE_PATH],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(work, filter="data")
    return work / CORE_PATH


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", metavar="REV",
                    help="also build the core of this git revision and compare")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make(CORE, work / "now", "cross")
        arm = work / "now" / "arm"
        print("Cortex-M4 (-Os), text bytes per object:")
        core = print_archive("core (ours, with the zcbor-generated decoder)",
                             arm / "libsota_core.a")
        zcbor = print_archive("zcbor runtime (library)", arm / "libzcbor.a")
        (work / "l1").mkdir()
        kept, psa = linked([arm / "libsota_core.a", arm / "libzcbor.a"], work / "l1")
        print(f"core + zcbor linked from the core's API with --gc-sections: {kept} bytes")
        print(f"  (archives: {core + zcbor}; mbed TLS not included, it provides: "
              f"{', '.join(psa)})")
        if args.baseline:
            old = baseline_core(args.baseline, work / "old")
            make(old, work / "base", "cross")
            old_total = sum(n for _, n in archive_rows(work / "base" / "arm" / "libsota_core.a"))
            (work / "l2").mkdir()
            old_kept, _ = linked([work / "base" / "arm" / "libsota_core.a"], work / "l2")
            print(f"baseline {args.baseline}: archive {old_total} bytes, linked {old_kept} "
                  f"bytes (baseline)")
            print(f"  now / baseline, linked: {kept / old_kept:5.2f}x  "
                  f"(plus mbed TLS now, which the baseline did not need)")

        make(CORE, work / "host", "sota_verify", SAN="")
        model = build_example_model(work)
        key = keys.generate_private_key("p256")
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
        print(f"verify one {len(pkg)}-byte ES256 package on this host ({RUNS} runs):")
        print(f"  ota.sota.verify_package (baseline): {py_ms:8.3f} ms")
        print(f"  C core sota_verify (incl. exec):    {c_ms:8.3f} ms  ratio {c_ms / py_ms:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
