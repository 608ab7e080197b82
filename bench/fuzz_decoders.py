"""Fuzz every content-format decoder and the link-format parsers for N minutes.

Random and mutated TLV, SenML JSON/CBOR, LwM2M JSON/CBOR, text, opaque and link-format payloads
(tests/fuzz/harness.py, the same fuzzer the test run uses for a few seconds). Prints inputs
tried, outcomes (decoded, refused with the decoder's error, crash), the first crashes, and RSS
before and after.

    python bench/fuzz_decoders.py --minutes 5 [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz.harness import fuzz_decoders, rss_bytes  # noqa: E402

MIB = 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    fuzz_decoders(count=20_000, seed=args.seed + 1)  # warm-up: imports, caches, registry
    before = rss_bytes()
    started = time.monotonic()
    n, outcomes, crashes = fuzz_decoders(seconds=args.minutes * 60, seed=args.seed)
    elapsed = time.monotonic() - started
    after = rss_bytes()
    print(f"run: {elapsed:.0f} s, seed {args.seed}")
    print(f"inputs: {n} ({n / elapsed:.0f}/s)")
    print("outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    print(f"crashes: {len(crashes) if crashes else 0}")
    for c in crashes:
        print("  " + c)
    print(f"RSS: before {before / MIB:.1f} MiB, after {after / MIB:.1f} MiB "
          f"({(after - before) / MIB:+.1f} MiB, {(after - before) / MIB / n * 1e6:+.1f} MiB per "
          "million inputs)")
    if crashes:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
