"""``lwm2m-server model build`` and ``sota build`` without an ELF, through the installed CLI;
and the data folder every command shares, from any working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lwm2m_server.cli import main


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lwm2m_server.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=120)


@pytest.fixture
def data_dir(tmp_path: Path) -> dict[str, str]:
    """A fresh data folder with the key pair and default model a first server start makes."""
    from lwm2m_server.config import Settings
    from lwm2m_server.datadir import prepare_server_data

    folder = tmp_path / "data"
    created = prepare_server_data(Settings(data_dir=folder))
    assert any("SOTA signing key pair" in c for c in created)
    return {"LWM2M_DATA_DIR": str(folder)}


def test_model_build_prints_size_memory_instructions_and_parity(
        tmp_path: Path, iris_forest_file: Path, iris_csv: Path) -> None:
    done = cli("model", "build", str(iris_forest_file), "--check", str(iris_csv), "-o",
               "out.wasm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "model: RandomForestClassifier, 4 features, 3 classes"
    size = (tmp_path / "out.wasm").stat().st_size
    assert lines[1] == f"wasm: out.wasm, {size} bytes (model slot 65536 bytes)"
    assert lines[2].startswith("peak memory: ") and "of 65536 bytes of linear memory" in lines[2]
    assert lines[3].startswith("one inference: ") and "Wasm instructions" in lines[3]
    assert lines[4].startswith("check: 150 rows, agreement 100.00%, accuracy ")


def test_model_build_sota_signs_with_the_data_folder_key_and_the_server_accepts_it(
        tmp_path: Path, iris_forest_file: Path, iris_csv: Path, data_dir: dict[str, str]) -> None:
    done = cli("model", "build", str(iris_forest_file), "--check", str(iris_csv), "--sota",
               "--version", "1.1.0", "--json", cwd=tmp_path, env=data_dir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sota"]["version"] == "1.1.0" and report["sota"]["name"] == "iris"
    assert report["sota"]["selftest"]["input"] == [5.1, 3.5, 1.4, 0.2]
    assert f"data folder {data_dir['LWM2M_DATA_DIR']}" in done.stderr
    # from another directory, artifact add finds the same data folder, database and key
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    add = cli("artifact", "add", str(tmp_path / "iris.sota"), "--kind", "sota", "--name", "iris",
              "--version", "1.1.0", cwd=elsewhere, env=data_dir)
    assert add.returncode == 0, add.stderr
    listed = cli("artifact", "list", "--json", cwd=tmp_path, env=data_dir)
    assert {(a["name"], a["version"]) for a in json.loads(listed.stdout)} == {
        ("iris", "1.1.0"), ("classifier", "1.0.0")}
    assert not (elsewhere / "lwm2m.db").exists() and not (tmp_path / "lwm2m.db").exists()


def test_model_build_refusals_are_one_line_with_the_fix(tmp_path: Path, iris_forest_file: Path,
                                                        iris_csv: Path) -> None:
    empty = {"LWM2M_DATA_DIR": str(tmp_path / "empty")}
    cases = [
        (["--sota"], "--sota needs --version"),
        (["--sota", "--version", "1.1.0"], "--sota needs a signing key: pass --key"),
        (["--check", str(tmp_path / "missing.csv")], "cannot read check data"),
    ]
    for extra, message in cases:
        done = cli("model", "build", str(iris_forest_file), *extra, cwd=tmp_path, env=empty)
        assert done.returncode == 1 and message in done.stderr, (extra, done.stderr)
        assert done.stderr.splitlines()[-1].startswith("error: ")
    (tmp_path / "not-a-model.pkl").write_bytes(b"garbage")
    done = cli("model", "build", "not-a-model.pkl", cwd=tmp_path)
    assert done.returncode == 1 and "cannot load not-a-model.pkl as a joblib/pickle file" in done.stderr
    done = cli("model", "build", str(iris_forest_file), "--min-agreement", "2", cwd=tmp_path)
    assert done.returncode == 2 and "between 0 and 1" in done.stderr


def test_model_build_help_says_pickles_must_be_trusted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["model", "build", "--help"])
    text = capsys.readouterr().out
    assert "only files you\ntrust" in text or "files you trust" in " ".join(text.split())
    for kind in ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier",
                 "MLPClassifier", "GaussianNB", ".keras"):
        assert kind in text


def test_sota_build_without_elf_takes_the_slot_size(tmp_path: Path, example_model_wasm: bytes,
                                                    data_dir: dict[str, str]) -> None:
    (tmp_path / "m.wasm").write_bytes(example_model_wasm)
    done = cli("sota", "build", "--model", "m.wasm", "--slot-size", "32768", "--version", "1.2.0",
               "-o", "m.sota", cwd=tmp_path, env=data_dir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["slot_size"] == 32768
    done = cli("sota", "build", "--model", "m.wasm", "-o", "m.sota", cwd=tmp_path, env=data_dir)
    assert done.returncode == 1 and "--elf FIRMWARE.elf" in done.stderr and "--slot-size" in done.stderr
    done = cli("sota", "build", "--model", "m.wasm", "--slot-size", "100", "-o", "m.sota",
               cwd=tmp_path, env=data_dir)
    assert done.returncode == 1 and "slot" in done.stderr


def test_sota_upload_without_a_key_says_how_to_configure_one(tmp_path: Path,
                                                             example_model_wasm: bytes) -> None:
    from lwm2m_server.store.artifacts import ArtifactError, ingest_artifact
    from lwm2m_server.store.db import init_db, make_engine
    from ota.store import ArtifactStore

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    init_db(engine)
    with pytest.raises(ArtifactError) as e:
        ingest_artifact(engine, ArtifactStore(tmp_path / "a"), example_model_wasm, kind="sota",
                        name="m", version="1.0.0")
    assert e.value.status == 422
    assert "set LWM2M_SOTA_PUBLIC_KEY" in str(e.value) and "data folder" in str(e.value)
    engine.dispose()


def test_every_command_uses_one_data_folder_and_names_it(tmp_path: Path) -> None:
    env = {"LWM2M_DATA_DIR": str(tmp_path / "data")}
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    made = cli("token", "create", "--name", "t1", cwd=a, env=env)
    assert made.returncode == 0, made.stderr
    assert f"data folder {tmp_path / 'data'} (database sqlite:///{tmp_path / 'data' / 'lwm2m.db'})" \
        in made.stderr
    listed = cli("token", "list", "--json", cwd=b, env=env)
    assert [t["name"] for t in json.loads(listed.stdout)] == ["t1"]
    # --data-dir beats the variable; --db still picks the database
    other = cli("token", "list", "--json", "--data-dir", str(tmp_path / "other"), cwd=b, env=env)
    assert json.loads(other.stdout) == [] and "data folder " + str(tmp_path / "other") in other.stderr
    db = f"sqlite:///{tmp_path / 'data' / 'lwm2m.db'}"
    via_db = cli("token", "list", "--json", "--db", db, "--data-dir", str(tmp_path / "other"),
                 cwd=b, env=env)
    assert [t["name"] for t in json.loads(via_db.stdout)] == ["t1"]
    deps = cli("deploy", "list", "--json", cwd=b, env=env)
    assert deps.returncode == 0 and json.loads(deps.stdout) == []
    # device credentials and bootstrap configuration: the same folder, named, from anywhere
    secret = {**env, "LWM2M_SECRET_KEY": "data-folder-test-secret-0123456789abcdef"}
    added = cli("device", "add", "dev-a", "--psk-identity", "dev-a-id", "--psk-key", "00" * 16,
                cwd=a, env=secret)
    assert added.returncode == 0 and f"data folder {tmp_path / 'data'}" in added.stderr, added.stderr
    shown = cli("device", "show", "dev-a", "--data-dir", str(tmp_path / "data"), cwd=b, env=secret)
    assert shown.returncode == 0 and "dev-a-id" in shown.stdout, shown.stderr
    boot = cli("bootstrap", "list", cwd=b, env=env)
    assert boot.returncode == 0 and f"data folder {tmp_path / 'data'}" in boot.stderr
    assert not list(a.iterdir()) and not list(b.iterdir())


def test_simulate_defaults_to_the_data_folder_key_and_model(tmp_path: Path,
                                                            data_dir: dict[str, str]) -> None:
    from lwm2m_server.cli import build_parser
    from lwm2m_server.commands.simulate import _fleet_config
    from lwm2m_server.datadir import packaged_default_model
    from ota.keys import load_public_key, raw_public_key

    folder = Path(data_dir["LWM2M_DATA_DIR"])
    # The real parser, so the test follows the command's flags as they are.
    args = build_parser(only="simulate").parse_args(
        ["simulate", "--server", "coap://127.0.0.1:5683", "--count", "1", "--prefix", "s-",
         "--lifetime", "60", "--data-dir", str(folder)])
    config = _fleet_config(args)
    want = load_public_key((folder / "keys" / "sota-signing.pub.pem").read_bytes())
    assert raw_public_key(config.trusted_key) == raw_public_key(want)
    assert config.initial_model == (folder / "models" / "default.wasm").read_bytes() \
        == packaged_default_model()
    assert config.state_dir == str(folder / "sim-state")


def test_packaged_default_model_is_the_example_classifier(example_model_wasm: bytes) -> None:
    from lwm2m_server.datadir import packaged_default_model
    from ota.modelbuild.measure import WasmModel

    shipped, built = WasmModel(packaged_default_model()), WasmModel(example_model_wasm)
    rows = [(1.0, 0.5, 0.2, 0.1), (6.7, 3.0, 5.2, 2.3), (0.0, 0.0, 0.0, 0.0), (-1, 2, -3, 4)]
    assert [shipped.infer(r) for r in rows] == [built.infer(r) for r in rows]


def test_keys_export_c_defaults_to_the_data_folder_public_key(tmp_path: Path,
                                                              data_dir: dict[str, str]) -> None:
    from ota.keys import load_public_key, public_key_c_array

    done = cli("keys", "export-c", cwd=tmp_path, env=data_dir)
    assert done.returncode == 0, done.stderr
    pub = Path(data_dir["LWM2M_DATA_DIR"]) / "keys" / "sota-signing.pub.pem"
    assert done.stdout == public_key_c_array(load_public_key(pub.read_bytes()))
    done = cli("keys", "export-c", cwd=tmp_path, env={"LWM2M_DATA_DIR": str(tmp_path / "none")})
    assert done.returncode == 1 and "start the server once there" in done.stderr


def test_deploy_create_wait_exits_6_when_targets_do_not_succeed_in_time(
        tmp_path: Path, data_dir: dict[str, str]) -> None:
    from lwm2m_server.datadir import packaged_default_model

    (tmp_path / "m.wasm").write_bytes(packaged_default_model())
    assert cli("sota", "build", "--model", "m.wasm", "--slot-size", "65536", "--version", "1.5.0",
               "-o", "m.sota", cwd=tmp_path, env=data_dir).returncode == 0
    added = cli("artifact", "add", "m.sota", "--kind", "sota", "--name", "m", "--version", "1.5.0",
                cwd=tmp_path, env=data_dir)
    art = str(json.loads(added.stdout)["id"])
    # no server runs: the target stays pending, --wait gives up after its timeout
    done = cli("deploy", "create", "--artifact", art, "--endpoints", "nobody", "--wait",
               "--wait-timeout", "1", cwd=tmp_path, env=data_dir)
    assert done.returncode == 6 and "still running after 1 s" in done.stderr, done.stderr
    assert "deployment 1: running: pending 1" in done.stderr


def test_help_loads_no_model_build_or_wasm_library() -> None:
    code = ("import sys; from lwm2m_server.cli import build_parser; build_parser(); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'emlearn', 'h5py', 'numpy', 'wasmtime', 'keras', 'jax', 'sqlmodel', "
            "'fastapi')]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
