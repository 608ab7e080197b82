"""The OTA commands of lwm2m-server: keys, sota build, artifact add/inspect/list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lwm2m_server.cli import main
from ota import elf, keys, sota


@pytest.fixture()
def workdir(tmp_path: Path, firmware_elfs: dict[str, bytes], retrained_model_wasm: bytes) -> Path:
    (tmp_path / "app.elf").write_bytes(firmware_elfs["arm"])
    (tmp_path / "new.wasm").write_bytes(retrained_model_wasm)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_generate_writes_a_private_pem_readable_only_by_the_owner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    code, _, err = _run(capsys, "keys", "generate", "--type", "p256", "-o", str(key),
                        "--public-out", str(tmp_path / "k.pub"))
    assert code == 0 and "kid" in err
    assert keys.key_kind(keys.load_private_key(key.read_bytes())) == "p256"
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert keys.load_public_key((tmp_path / "k.pub").read_bytes())
    code, _, err = _run(capsys, "keys", "generate", "-o", str(key))
    assert code == 1 and err.strip() == f"error: {key} exists: refusing to overwrite a key " \
                                         "(use --force)"


def test_keys_export_c_prints_the_public_key_array(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    key = keys.generate_private_key("ed25519")
    (tmp_path / "k.pem").write_bytes(keys.private_key_pem(key))
    code, out, _ = _run(capsys, "keys", "export-c", "--key", str(tmp_path / "k.pem"))
    assert code == 0
    assert "const uint8_t sota_public_key[32]" in out
    assert f"0x{keys.raw_public_key(key)[0]:02x}" in out


def test_sota_build_writes_a_package_that_verifies(workdir: Path, retrained_model_wasm: bytes,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    key = keys.generate_private_key("ed25519")
    (workdir / "key.pem").write_bytes(keys.private_key_pem(key))
    code, out, err = _run(capsys, "sota", "build", "--elf", str(workdir / "app.elf"),
                          "--model", str(workdir / "new.wasm"), "--key", str(workdir / "key.pem"),
                          "-o", str(workdir / "pkg.sota"), "--name", "clf", "--version", "1.0.1",
                          "--selftest-input", "1,0.5,0.2,0.1", "--selftest-expected", "1",
                          "--out-elf", str(workdir / "new.elf"))
    assert code == 0, err
    assert json.loads(out)["slot_size"] == 65536
    pkg = sota.verify_package((workdir / "pkg.sota").read_bytes(), keys.public_key_of(key),
                              slot_size=65536, installed_version="1.0.0")
    assert pkg.payload == retrained_model_wasm
    assert pkg.manifest.selftest == sota.SelfTest((1.0, 0.5, 0.2, 0.1), 1)
    assert elf.read_model((workdir / "new.elf").read_bytes()) == retrained_model_wasm


def test_sota_build_errors_are_one_line_and_non_zero(workdir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "key.pem").write_bytes(keys.private_key_pem(keys.generate_private_key("p256")))
    base = ["sota", "build", "--elf", str(workdir / "app.elf"), "--key", str(workdir / "key.pem"),
            "-o", str(workdir / "pkg.sota"), "--version", "1.0.0"]
    code, _, err = _run(capsys, *base, "--model", str(workdir / "missing.wasm"))
    assert code == 1 and err.startswith("error: cannot read model") and err.count("\n") == 1
    (workdir / "notwasm.bin").write_bytes(b"\x7fELF not a model")
    code, _, err = _run(capsys, *base, "--model", str(workdir / "notwasm.bin"))
    assert code == 1 and "magic" in err and err.count("\n") == 1
    code, _, err = _run(capsys, *base, "--model", str(workdir / "new.wasm"),
                        "--selftest-input", "1,0.5,0.2,0.1", "--selftest-expected", "2")
    assert code == 1 and err == "error: self-test gave class 1, expected 2\n"
    code, _, err = _run(capsys, *base, "--model", str(workdir / "new.wasm"),
                        "--section", ".nothing")
    assert code == 1 and "no section '.nothing'" in err
    assert not (workdir / "pkg.sota").exists()


def test_artifact_inspect_reports_and_verifies(workdir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    key = keys.generate_private_key("ed25519")
    (workdir / "pub.pem").write_bytes(keys.public_key_pem(key))
    pkg = sota.build_package((workdir / "new.wasm").read_bytes(), name="clf", version="2.0.0",
                             private_key=key, slot_size=65536)
    (workdir / "pkg.sota").write_bytes(pkg)
    code, out, _ = _run(capsys, "artifact", "inspect", str(workdir / "pkg.sota"),
                        "--key", str(workdir / "pub.pem"))
    info = json.loads(out)
    assert code == 0 and info["kind"] == "sota" and info["signature_verified"] is True
    code, out, _ = _run(capsys, "artifact", "inspect", str(workdir / "app.elf"))
    assert code == 0 and json.loads(out)["model_section"]["size"] == 65536
    (workdir / "bad.sota").write_bytes(pkg[:-1] + bytes([pkg[-1] ^ 1]))
    code, out, err = _run(capsys, "artifact", "inspect", str(workdir / "bad.sota"),
                          "--key", str(workdir / "pub.pem"))
    assert code == 1 and json.loads(out)["ok"] is False and "tampered payload" in err
    assert err.count("\n") == 1


def test_artifact_add_and_list_through_the_installed_command(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{workdir / 'cli.db'}"
    args = ["artifact", "add", str(workdir / "new.wasm"), "--kind", "model", "--name", "clf",
            "--version", "1.0.1", "--db", db, "--artifacts-dir", str(workdir / "arts")]
    proc = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", *args],
                          capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["created"] is True and (workdir / "arts" / row["sha256"]).is_file()
    code, out, _ = _run(capsys, *args)
    assert code == 0 and json.loads(out)["created"] is False
    code, out, _ = _run(capsys, "artifact", "list", "--db", db, "--json")
    assert [r["sha256"] for r in json.loads(out)] == [row["sha256"]]
    code, _, err = _run(capsys, "artifact", "add", str(workdir / "app.elf"), "--kind", "model",
                        "--name", "x", "--version", "1.0.0", "--db", db,
                        "--artifacts-dir", str(workdir / "arts"))
    # the first line names the data folder and database used, the last one the refusal
    assert err.startswith("lwm2m-server: data folder ") and f"(database {db})" in err
    assert code == 1 and err.splitlines()[-1].startswith("error: model check failed")
    assert len(list((workdir / "arts").iterdir())) == 1


def test_artifact_inspect_without_key_still_checks_the_payload_hash(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = keys.generate_private_key("ed25519")
    pkg = sota.build_package((workdir / "new.wasm").read_bytes(), name="clf", version="2.0.0",
                             private_key=key, slot_size=65536)
    (workdir / "good.sota").write_bytes(pkg)
    code, out, _ = _run(capsys, "artifact", "inspect", str(workdir / "good.sota"))
    info = json.loads(out)
    assert code == 0 and info["ok"] is True and info["signature_verified"] is False
    assert info["checks"]["sha256"] == "passed" and info["checks"]["wasm"] == "passed"
    assert info["checks"]["signature"].startswith("skipped")
    (workdir / "altered.sota").write_bytes(pkg[:-1] + bytes([pkg[-1] ^ 1]))
    code, out, err = _run(capsys, "artifact", "inspect", str(workdir / "altered.sota"))
    info = json.loads(out)
    assert code == 1 and info["ok"] is False
    assert info["checks"]["sha256"].startswith("failed") and "tampered payload" in err
    code, out, _ = _run(capsys, "artifact", "inspect", str(workdir / "good.sota"),
                        "--installed-version", "2.0.0")
    assert code == 1 and json.loads(out)["checks"]["version"].startswith("failed")
    # A SOTA package inspected as firmware is not firmware.
    code, out, _ = _run(capsys, "artifact", "inspect", str(workdir / "good.sota"),
                        "--kind", "firmware")
    assert code == 1 and json.loads(out)["checks"]["kind"].startswith("failed")


@pytest.mark.postgres
def test_artifact_add_on_postgresql_puts_the_bytes_in_the_database(
        workdir: Path, retrained_model_wasm: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    from lwm2m_server.store.blobs import blob_fetcher
    from lwm2m_server.store.db import make_engine
    from tests.support.postgres import temporary_database

    with temporary_database("ota_cli_") as db:
        code, out, err = _run(capsys, "artifact", "add", str(workdir / "new.wasm"), "--kind",
                              "model", "--name", "clf", "--version", "1.0.1", "--db", db,
                              "--artifacts-dir", str(workdir / "arts"))
        assert code == 0, err
        engine = make_engine(db)
        try:
            fetch = blob_fetcher(engine)
            assert fetch is not None
            assert b"".join(fetch(json.loads(out)["sha256"]) or []) == retrained_model_wasm
        finally:
            engine.dispose()
