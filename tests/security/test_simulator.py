"""``lwm2m-server simulate`` on the secure path: PSK flags, a fleet credentials file, fault
options over DTLS."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from lwm2m_server.cli import main
from lwm2m_server.sim.transfer import Faults

from .conftest import KEY, SecureEnv, eventually


@pytest.mark.parametrize("argv,message", [
    (["--server", "coaps://127.0.0.1:5684"], "needs --psk-identity/--psk-key or --credentials"),
    (["--server", "coaps://127.0.0.1:5684", "--psk-identity", "x"], "go together"),
    (["--server", "coaps://127.0.0.1:5684", "--psk-identity", "x", "--psk-key", "zz"], "hexadecimal"),
    (["--server", "coaps://127.0.0.1:5684", "--psk-identity", "x", "--psk-key", "00" * 16,
      "--count", "2"], "use --credentials for a fleet"),
    (["--bootstrap", "http://127.0.0.1:5684"], "--bootstrap"),
    ([], "give --server, or --bootstrap"),
])
def test_bad_security_flags_exit_2_with_a_message(argv: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["simulate", *argv, "--state-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_bad_credentials_file_line_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    creds = tmp_path / "fleet.csv"
    creds.write_text("# endpoint,identity,key\nsim-0000,id-0,00112233445566778899aabbccddeeff\nsim-0001,id-1\n")
    assert main(["simulate", "--server", "coaps://127.0.0.1:5684", "--credentials", str(creds),
                 "--state-dir", str(tmp_path)]) == 2
    assert "line 3" in capsys.readouterr().err


async def test_fleet_from_a_credentials_file_registers_over_dtls_with_faults(
        senv: SecureEnv, tmp_path: Path) -> None:
    lines = []
    for i in range(3):
        senv.provision(f"fleet-{i:04d}", f"fleet-id-{i}", KEY)
        lines.append(f"fleet-{i:04d},fleet-id-{i},{KEY.hex()}")
    creds = tmp_path / "fleet.csv"
    creds.write_text("\n".join(lines) + "\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lwm2m_server.cli", "simulate", "--server", senv.coaps_uri,
        "--count", "3", "--prefix", "fleet-", "--credentials", str(creds), "--drop-rate", "0.1",
        "--latency", "5", "--state-dir", str(tmp_path / "state"), "--jitter", "0.2",
        "--duration", "60", stderr=asyncio.subprocess.PIPE)
    try:
        await eventually(lambda: all(senv.server.registrations.get(f"fleet-{i:04d}") is not None
                                     for i in range(3)), timeout=40)
        assert {senv.server.registrations.get(f"fleet-{i:04d}").security for i in range(3)} == {"psk"}
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    # A device whose 2.01 was lost may still be retransmitting its Register when stopped.
    assert proc.returncode == 0 and b"stopping:" in err, err


async def test_lossy_link_over_dtls_still_serves_reads(senv: SecureEnv) -> None:
    senv.provision("lossy", "lossy-id")
    dev = await senv.device("lossy", psk_identity="lossy-id", psk_key=KEY,
                            faults=Faults(drop_rate=0.25, latency_ms=20))
    ok = 0
    for _ in range(5):
        r = await senv.api.get("/api/v1/devices/lossy/data/3/0/3", params={"timeout": 20})
        ok += r.status_code == 200 and r.json()["values"]["/3/0/3"] == dev.firmware_version
    # CoAP retransmissions (2, 4, 8 s) over the DTLS session carry the reads through a 25 % loss.
    assert ok >= 4
