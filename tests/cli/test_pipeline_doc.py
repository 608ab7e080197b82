"""docs/pipeline.md as it stands: its set-up commands and its ``ci/deploy.sh`` block run against
a real server process with simulated devices, so the page cannot drift from the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .conftest import Server, server_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"
MARKER = "<!-- pipeline: ci/deploy.sh"


def sh_blocks(text: str) -> list[str]:
    """The ```sh fenced blocks of ``text``, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def setup_and_job(text: str) -> tuple[list[str], str]:
    """The set-up commands (the sh blocks before the job) and the job script."""
    before, marker, after = text.partition(MARKER)
    assert marker, f"{DOC.name} lost its {MARKER!r} marker"
    setup = [line for block in sh_blocks(before) for line in block.splitlines()
             if line.strip() and not line.startswith("#")]
    return setup, sh_blocks(after)[0]


def test_the_setup_and_the_job_of_the_pipeline_page_work(server: Server, tmp_path: Path) -> None:
    setup, job = setup_and_job(DOC.read_text())
    server.simulate(2, "sim-")
    server.wait_for_devices({"sim-0000", "sim-0001"})
    # The set-up runs on the server's host: token create finds the database in LWM2M_DB_URL;
    # the tags go through the API (an admin token).
    host_env = server.env(LWM2M_DB_URL=f"sqlite:///{server.workdir / 'server.db'}",
                          LWM2M_DATA_DIR=str(server.workdir / "data"))
    runner = tmp_path / "runner"
    runner.mkdir()
    bin_dir = Path(sys.executable).parent  # lwm2m-server and imgtool of this environment
    host_env["PATH"] = f"{bin_dir}{os.pathsep}{host_env['PATH']}"
    pipeline_token = ""
    for line in setup:
        assert line.startswith("lwm2m-server "), line
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, env=host_env,
                              cwd=runner, timeout=120, check=False)
        assert done.returncode == 0, (line, done.stderr)
        if " token create " in f" {line} ":
            pipeline_token = done.stdout.strip()
    assert pipeline_token.startswith("lwm2m_")
    assert (runner / "signing-key.pem").is_file()

    # The runner: the build's output, the four values the CI system gives, nothing else.
    (runner / "build" / "zephyr").mkdir(parents=True)
    (runner / "build" / "zephyr" / "zephyr.bin").write_bytes(
        bytes((i * 13 + 5) % 256 for i in range(24_000)))
    (runner / "deploy.sh").write_text(job)
    job_env = {k: v for k, v in host_env.items() if not k.startswith("LWM2M_")}
    job_env.update(LWM2M_SERVER_URL=server.url, LWM2M_TOKEN=pipeline_token,
                   SIGNING_KEY="signing-key.pem", VERSION="3.1.0",
                   XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(["sh", "deploy.sh"], capture_output=True, text=True, env=job_env,
                          cwd=runner, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((runner / "inspect.json").read_text())["signature_verified"] is True
    fleet = json.loads((runner / "fleet.json").read_text())
    assert fleet["state"] == "completed" and fleet["tag"] == "fleet" and fleet["total"] == 2
    assert fleet["stages"] == [10, 50, 100]
    # Both deployments ran, the canary first; every device runs the new version.
    listed = json.loads(server.cli("deploy", "list", "--json").stdout)
    by_tag = {d["tag"]: d for d in listed if d["version"] == "3.1.0"}
    assert by_tag["canary"]["state"] == "completed" and by_tag["canary"]["total"] == 1
    assert by_tag["canary"]["id"] < by_tag["fleet"]["id"]
    for ep in ("sim-0000", "sim-0001"):
        read = server.cli("devices", "read", ep, "/3/0/3", "--json")
        assert json.loads(read.stdout)["values"]["/3/0/3"] == "3.1.0"
    # Nothing but what the job wrote: no database on the runner.
    assert not list(runner.glob("*.db"))


def test_a_failing_canary_stops_the_job_before_the_fleet(server: Server, tmp_path: Path) -> None:
    """set -e and the exit codes: a canary target that fails (a device that does not answer)
    ends the job with the deploy's code, and the fleet is not touched."""
    _, job = setup_and_job(DOC.read_text())
    runner = tmp_path / "runner"
    (runner / "build" / "zephyr").mkdir(parents=True)
    (runner / "build" / "zephyr" / "zephyr.bin").write_bytes(b"\x07" * 5000)
    (runner / "deploy.sh").write_text(job.replace("--tag canary", "--tag canary-broken"))
    subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "keys", "generate", "--type", "p256",
                    "-o", str(runner / "k.pem")], check=True, capture_output=True,
                   env=server_env(server.workdir))
    tagged = server.cli("deploy", "tag", "ghost-canary", "canary-broken")
    assert tagged.returncode == 0, tagged.stderr
    env = server.env(SIGNING_KEY="k.pem", VERSION="3.2.0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # A device that never answers fails after its retries; keep them short for the test.
    (runner / "deploy.sh").write_text((runner / "deploy.sh").read_text().replace(
        "--tag canary-broken --wait", "--tag canary-broken --retries 0 --wait"))
    done = subprocess.run(["sh", "deploy.sh"], capture_output=True, text=True, env=env,
                          cwd=runner, timeout=300, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    listed = json.loads(server.cli("deploy", "list", "--json").stdout)
    assert not [d for d in listed if d["version"] == "3.2.0" and d["tag"] == "fleet"]
