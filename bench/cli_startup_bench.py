"""CLI start-up: ``lwm2m-server --help`` and each command's ``--help`` beside ``python -c pass``.

Prints the median wall time of N runs of each command and its ratio to the bare interpreter, in
the same run (target: ``lwm2m-server --help`` under 0.3 s).

    python bench/cli_startup_bench.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from lwm2m_server.cli import COMMANDS


def _median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "lwm2m_server.cli"]
    base = _median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"{'command':<34} {'median s':>9} {'x python -c pass':>17}")
    print(f"{'python -c pass':<34} {base:9.3f} {1.0:17.2f}")
    for label, extra in [("lwm2m-server --help", ["--help"])] + [
            (f"lwm2m-server {name} --help", [name, "--help"]) for name in COMMANDS]:
        t = _median_seconds(cli + extra, args.runs)
        print(f"{label:<34} {t:9.3f} {t / base:17.2f}")


if __name__ == "__main__":
    main()
