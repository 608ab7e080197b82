"""The README's model quick tour, run verbatim against a server started here.

The block between ``<!-- quick-tour-model:start -->`` and ``<!-- quick-tour-model:end -->`` is
taken from README.md as it is and run by bash, after ``lwm2m-server run`` (the README's first
set-up command) in a fresh data folder. The tour uses the default ports (CoAP 5683, HTTP 8080)
like a newcomer would, so server and commands run in a private network namespace
(``unshare -rn``) where those ports are free and only loopback exists; where user namespaces
are not available the test runs on the host if both ports are free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- quick-tour-model:start -->", "<!-- quick-tour-model:end -->"


def tour_block(readme: str) -> str:
    """The shell commands of the one fenced block between the markers."""
    section = readme.split(START, 1)[1].split(END, 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the model quick tour must be exactly one ```sh block"
    return str(blocks[0])


_HARNESS = r"""
set -e
if [ -n "$PRIVATE_NET" ]; then ip link set lo up; fi
lwm2m-server run > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for i in $(seq 1 150); do
  curl -sf localhost:8080/healthz >/dev/null && break
  kill -0 $SERVER || { cat "$WORK/server.log"; exit 3; }
  sleep 0.2
done
cd "$WORK/tour"
bash -e tour.sh
"""


def _ports_free() -> bool:
    for family, kind, port in ((socket.AF_INET, socket.SOCK_STREAM, 8080),
                               (socket.AF_INET, socket.SOCK_DGRAM, 5683)):
        with socket.socket(family, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _private_net_available() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    done = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def test_the_readme_model_quick_tour_runs_verbatim_and_the_fleet_answers_with_the_new_model(
        tmp_path: Path) -> None:
    for tool in ("curl", "clang", "bash"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is needed (scripts/test.sh installs it)")
    block = tour_block((ROOT / "README.md").read_text())
    (tmp_path / "tour").mkdir()
    (tmp_path / "tour" / "tour.sh").write_text(block)
    env = {**os.environ, "WORK": str(tmp_path), "LWM2M_DATA_DIR": str(tmp_path / "data"),
           "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("LWM2M_DB_URL", None)
    env.pop("LWM2M_SOTA_PUBLIC_KEY", None)
    if _private_net_available():
        cmd = ["unshare", "-rn", "bash", "-c", _HARNESS]
        env["PRIVATE_NET"] = "1"
    elif _ports_free():
        cmd = ["bash", "-c", _HARNESS]
    else:
        pytest.skip("no user namespaces here and ports 5683/8080 are taken")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    context = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\nserver:\n{log[-3000:]}"
    assert done.returncode == 0, context
    out = done.stdout
    # model build: parity on all 150 rows and the three figures it must print
    assert re.search(r"agreement (99\.\d\d|100\.00)%", out), context
    assert re.search(r"wasm: iris\.wasm, \d+ bytes", out), context
    assert re.search(r"peak memory: \d+ bytes", out), context
    assert re.search(r"one inference: \d+ Wasm instructions", out), context
    # the same Run answers class 1 with the default model and class 2 after the rollout
    outputs = [int(v) for v in re.findall(r'"/33100/0/6":\s*(-?\d+)', out)]
    assert outputs == [1, 2], context
    assert "deployment" in done.stderr and "succeeded 3" in out + done.stderr, context
    inventory = json.loads(out.strip().splitlines()[-1])
    iris = next(m for m in inventory if m["name"] == "iris")
    (v,) = [v for v in iris["versions"] if v["version"] == "1.1.0"]
    assert sorted(d["endpoint"] for d in v["active_on"]) == ["demo-0000", "demo-0001", "demo-0002"]
    assert iris["inference_count"] >= 1 and v["artifacts"][0]["kind"] == "sota"
    classifier = next(m for m in inventory if m["name"] == "classifier")
    assert {d["endpoint"] for v in classifier["versions"] for d in v["installed_on"]} >= {
        "demo-0000", "demo-0001", "demo-0002"}
    # the server made the data folder's key pair and default model on its first start
    data = tmp_path / "data"
    assert (data / "keys" / "sota-signing.pem").is_file()
    assert (data / "models" / "default.wasm").is_file()
    assert oct((data / "keys" / "sota-signing.pem").stat().st_mode & 0o777) == "0o600"
