"""The remote CLI against a real server process on loopback: upload, deploy with --wait to
simulated devices, exit codes, --json, errors, login profile, devices and tokens; no database
file on the CLI's side."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ota.mcuboot import sign_image

from .conftest import Server, clean_env, server_env

SIMS = {"sim-0000", "sim-0001", "sim-0002"}


def firmware(tmp: Path, version: str) -> Path:
    """An MCUboot image (hash TLV, as imgtool writes it) the simulated devices accept."""
    path = tmp / f"app-{version}.bin"
    path.write_bytes(sign_image(bytes((i * 7 + 3) % 251 for i in range(20_000)), None,
                                version=version))
    return path


@pytest.fixture(scope="module")
def fleet(server: Server) -> Server:
    server.simulate(3, "sim-")
    server.wait_for_devices(SIMS)
    return server


def upload(server: Server, version: str) -> int:
    done = server.cli("artifact", "add", str(firmware(server.workdir, version)), "--kind",
                      "firmware", "--name", "app", "--version", version)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["id"])


def test_upload_list_show_and_the_same_bytes_again(server: Server) -> None:
    image = firmware(server.workdir, "1.5.0")
    args = ("artifact", "add", str(image), "--kind", "firmware", "--name", "app",
            "--version", "1.5.0")
    first = server.cli(*args)
    assert first.returncode == 0, first.stderr
    row = json.loads(first.stdout)
    assert row["created"] is True and row["kind"] == "firmware" and row["size"] == image.stat().st_size
    again = json.loads(server.cli(*args).stdout)
    assert again["created"] is False and again["id"] == row["id"]
    listed = json.loads(server.cli("artifact", "list", "--json").stdout)
    assert row["id"] in [r["id"] for r in listed]
    shown = server.cli("artifact", "show", str(row["id"]), "--json")
    assert json.loads(shown.stdout)["sha256"] == row["sha256"]
    # A bad file: the server refuses it and the CLI says why, in one line, exit 1.
    (server.workdir / "junk.wasm").write_bytes(b"not a module" * 100)
    bad = server.cli("artifact", "add", str(server.workdir / "junk.wasm"), "--kind", "model",
                     "--name", "junk", "--version", "1.0.0")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "model" in bad.stderr
    # Nothing was written on the CLI's side: no database, no artifact folder.
    assert list((server.workdir / "ci").iterdir()) == []


def test_delete_refused_while_deployed_then_done(server: Server) -> None:
    art = upload(server, "1.6.0")
    made = server.cli("deploy", "create", "--artifact", str(art), "--endpoints", "ghost-del",
                      "--retries", "20", "--json")
    assert made.returncode == 0, made.stderr
    dep = json.loads(made.stdout)["id"]
    refused = server.cli("artifact", "delete", str(art))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(f"error: artifact {art} is used by deployment(s) {dep} ")
    assert server.cli("deploy", "cancel", str(dep)).returncode == 0
    done = server.cli("artifact", "delete", str(art), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] is True
    listed = json.loads(server.cli("artifact", "list", "--json").stdout)
    assert art not in [r["id"] for r in listed]
    gone = server.cli("artifact", "delete", str(art))
    assert gone.returncode == 1 and f"artifact {art} does not exist" in gone.stderr


def test_deploy_wait_succeeds_with_exit_0_and_json(fleet: Server) -> None:
    art = upload(fleet, "2.0.0")
    done = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints",
                     ",".join(sorted(SIMS)), "--wait", "--timeout", "90", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    view = json.loads(done.stdout)
    assert view["state"] == "completed" and view["exit_code"] == 0
    assert view["counts"]["succeeded"] == 3 and len(view["targets"]) == 3
    assert "following deployment" in done.stderr  # progress on stderr with --json
    read = fleet.cli("devices", "read", "sim-0001", "/3/0/3", "--json")
    assert json.loads(read.stdout)["values"] == {"/3/0/3": "2.0.0"}


def test_deploy_wait_plain_lines_and_exit_3_when_a_target_fails(fleet: Server) -> None:
    art = upload(fleet, "2.1.0")
    done = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints",
                     "sim-0000,ghost-1", "--retries", "0", "--failure-threshold", "1", "--wait")
    assert done.returncode == 3, done.stdout + done.stderr
    # Not a terminal: one plain line per change, the failure with its reason.
    assert "  sim-0000 succeeded" in done.stdout
    assert "ghost-1 failed: device offline" in done.stdout
    assert "\x1b[" not in done.stdout
    assert "completed_with_failures" in done.stderr


def test_deploy_wait_exit_5_when_the_failure_threshold_pauses_it(fleet: Server) -> None:
    art = upload(fleet, "2.2.0")
    done = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints",
                     "ghost-2,ghost-3,ghost-4,ghost-5", "--stages", "50,100", "--retries", "0",
                     "--failure-threshold", "0", "--wait", "--json")
    assert done.returncode == 5, done.stdout + done.stderr
    view = json.loads(done.stdout)
    assert view["state"] == "paused" and "failure threshold" in view["reason"]


def test_cancel_timeout_and_retry_exit_codes(fleet: Server) -> None:
    art = upload(fleet, "2.3.0")
    # A target that keeps retrying: --timeout gives up waiting (6), the deployment goes on.
    done = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints", "ghost-9",
                     "--retries", "20", "--wait", "--timeout", "1", "--json")
    assert done.returncode == 6, done.stdout + done.stderr
    dep = json.loads(done.stdout)["id"]
    cancelled = fleet.cli("deploy", "cancel", str(dep), "--json")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["state"] == "cancelled"
    followed = fleet.cli("deploy", "status", str(dep), "--wait")
    assert followed.returncode == 4 and "cancelled" in followed.stdout
    again = fleet.cli("deploy", "resume", str(dep))
    assert again.returncode == 1 and again.stderr.startswith("error: deployment") and "cancelled" in again.stderr
    listed = json.loads(fleet.cli("deploy", "list", "--state", "cancelled", "--json").stdout)
    assert dep in [d["id"] for d in listed]


def test_devices_write_execute_observe_and_tags(fleet: Server) -> None:
    w = fleet.cli("devices", "write", "sim-0002", "/1/0/1", "120")
    assert w.returncode == 0, w.stderr
    r = fleet.cli("devices", "read", "sim-0002", "/1/0/1")
    assert r.stdout.strip() == "/1/0/1 = 120"
    x = fleet.cli("devices", "execute", "sim-0002", "/1/0/8")
    assert x.returncode == 0, x.stderr
    o = fleet.cli("devices", "observe", "sim-0002", "/3/0/9", "--json")
    assert o.returncode == 0 and "/3/0/9" in json.loads(o.stdout)["values"]
    c = fleet.cli("devices", "observe", "sim-0002", "/3/0/9", "--cancel")
    assert c.returncode == 0, c.stderr
    t = fleet.cli("deploy", "tag", "sim-0002", "lab,eu")
    assert json.loads(t.stdout)["tags"] == ["eu", "lab"] or set(json.loads(t.stdout)["tags"]) == {"eu", "lab"}
    missing = fleet.cli("devices", "read", "nobody", "/3/0")
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_errors_are_one_line_and_no_database_is_created(server: Server) -> None:
    bad = server.cli("deploy", "list", env=server.env(LWM2M_TOKEN="lwm2m_wrong"))
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "--token" in bad.stderr
    gone = server.cli("artifact", "list", env=server.env(LWM2M_SERVER_URL="http://127.0.0.1:9"))
    assert gone.returncode == 1 and "cannot reach http://127.0.0.1:9" in gone.stderr
    nothing = server.cli("deploy", "list", env=clean_env(XDG_CONFIG_HOME=str(server.workdir / "none"),
                                                         XDG_DATA_HOME=str(server.workdir / "none")))
    assert nothing.returncode == 1 and "no server" in nothing.stderr
    assert not (server.workdir / "ci" / "lwm2m.db").exists()
    unknown = server.cli("deploy", "create", "--artifact", "999", "--endpoints", "a")
    assert unknown.returncode == 1 and "artifact 999 does not exist" in unknown.stderr


def test_login_saves_a_private_profile_the_commands_use(server: Server, tmp_path: Path) -> None:
    env = clean_env(XDG_CONFIG_HOME=str(tmp_path))
    refused = server.cli("login", "--server", server.url, "--token", "lwm2m_wrong", env=env)
    assert refused.returncode == 1 and not (tmp_path / "lwm2m-server").exists()
    done = server.cli("login", "--server", server.url, "--token", server.token, env=env)
    assert done.returncode == 0, done.stderr
    profile = tmp_path / "lwm2m-server" / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    listed = server.cli("token", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "ci" in [t["name"] for t in json.loads(listed.stdout)]
    assert server.token not in listed.stdout  # never a token's value
    os.chmod(profile, 0o644)
    loose = server.cli("token", "list", env=env)
    assert loose.returncode == 1 and "chmod 600" in loose.stderr


def test_token_revoke_over_rest(server: Server) -> None:
    made = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "token", "create", "--name",
                           "short-lived", "--db", f"sqlite:///{server.workdir / 'server.db'}"],
                          capture_output=True, text=True, env=server_env(server.workdir), check=True)
    token = made.stdout.strip()
    assert server.cli("artifact", "list", env=server.env(LWM2M_TOKEN=token)).returncode == 0
    revoked = server.cli("token", "revoke", "short-lived")
    assert revoked.returncode == 0 and "revoked token" in revoked.stdout
    time.sleep(0.1)
    assert server.cli("artifact", "list", env=server.env(LWM2M_TOKEN=token)).returncode == 1


def test_wait_on_a_terminal_redraws_one_line_and_prints_failures(fleet: Server) -> None:
    """``follow`` as on a terminal: the status line is redrawn in place, failures get lines."""
    import io

    from lwm2m_server.commands.follow import follow
    from lwm2m_server.commands.remote import Client

    art = upload(fleet, "2.4.0")
    client = Client(fleet.url, fleet.token)
    out = io.StringIO()
    view, code = follow(client, lambda: int(client.post("/deployments", {
        "artifact_id": art, "endpoints": ["sim-0000", "ghost-tty"], "retries": 0,
        "failure_threshold": 1})["id"]), timeout=60, out=out, tty=True)
    text = out.getvalue()
    assert code == 3 and view["state"] == "completed_with_failures"
    import re

    assert "\r\x1b[K" in text
    assert re.search(r"stage 1/1: (pending|transferring|transferred|updating|succeeded|failed) \d", text)
    assert "  ghost-tty failed: device offline" in text
    assert "  sim-0000 succeeded\n" not in text  # no per-change lines on a terminal


def test_metrics_count_rollout_targets_bytes_and_durations(fleet: Server) -> None:
    import urllib.request

    art = upload(fleet, "2.5.0")
    done = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints", "sim-0001",
                     "--delivery", "pull", "--wait", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    paused = fleet.cli("deploy", "create", "--artifact", str(art), "--endpoints", "ghost-m1",
                       "--retries", "20")
    assert paused.returncode == 0
    fleet.cli("deploy", "pause", paused.stdout.strip())
    with urllib.request.urlopen(f"{fleet.url}/metrics", timeout=20) as resp:
        text = resp.read().decode()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line and not line.startswith("#")}
    assert values['lwm2m_rollout_transfer_bytes_total{method="coap"}'] >= 20_000
    assert values['lwm2m_rollout_target_transitions_total{state="succeeded"}'] >= 1
    assert values['lwm2m_rollout_target_seconds_count{outcome="succeeded"}'] >= 1
    assert values['lwm2m_deployments_total{state="completed"}'] >= 1
    # The paused deployment's target still counts among the open ones.
    assert values['lwm2m_rollout_targets{state="pending"}'] >= 1


def test_wait_without_the_read_scope_fails_before_creating_anything(server: Server) -> None:
    made = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "token", "create", "--name",
                           "deploy-only", "--scopes", "deploy",
                           "--db", f"sqlite:///{server.workdir / 'server.db'}"],
                          capture_output=True, text=True, env=server_env(server.workdir), check=True)
    before = json.loads(server.cli("deploy", "list", "--json").stdout)
    art = upload(server, "4.0.0")
    done = server.cli("deploy", "create", "--artifact", str(art), "--endpoints", "x", "--wait",
                      env=server.env(LWM2M_TOKEN=made.stdout.strip()))
    assert done.returncode == 1 and "'read' scope" in done.stderr, done.stderr
    assert json.loads(server.cli("deploy", "list", "--json").stdout) == before
