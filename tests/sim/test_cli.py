"""``lwm2m-server simulate``: flag checking and a short fleet run against the peer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from lwm2m_server.cli import main

from .peer import Peer


@pytest.mark.parametrize("argv,message", [
    (["--server", "http://127.0.0.1:5683"], "expected coap://HOST:PORT"),
    (["--server", "coap://127.0.0.1:5683", "--count", "0"], "--count must be at least 1"),
    (["--server", "coap://127.0.0.1:5683", "--drop-rate", "1.5"], "--drop-rate must be between 0 and 1"),
    (["--server", "coap://127.0.0.1:5683", "--trusted-key", "/nonexistent.pem"], "--trusted-key"),
    (["--server", "coap://127.0.0.1:99999"], "--server"),
])
def test_bad_flags_exit_2_with_a_message(argv, message, capsys, tmp_path: Path):
    assert main(["simulate", *argv, "--state-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_a_model_that_is_not_wasm_is_refused(capsys, tmp_path: Path):
    bad = tmp_path / "m.wasm"
    bad.write_bytes(b"not wasm")
    assert main(["simulate", "--server", "coap://127.0.0.1:5683", "--model", str(bad)]) == 2
    assert "not a valid Wasm module" in capsys.readouterr().err


async def test_simulate_registers_the_fleet_and_deregisters_on_exit(peer: Peer, tmp_path: Path,
                                                                    example_model_wasm: bytes):
    model = tmp_path / "m.wasm"
    model.write_bytes(example_model_wasm)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lwm2m_server.cli", "simulate", "--server", peer.uri, "--count", "3",
        "--prefix", "cli-", "--state-dir", str(tmp_path / "st"), "--model", str(model),
        "--jitter", "0.2", "--duration", "3", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    regs = [ep for kind, ep in peer.events if kind == "register"]
    assert sorted(regs) == ["cli-0000", "cli-0001", "cli-0002"]
    assert sorted(ep for kind, ep in peer.events if kind == "deregister") == sorted(regs)
    assert (tmp_path / "st" / "cli-0001" / "slot_a.wasm").read_bytes() == example_model_wasm
