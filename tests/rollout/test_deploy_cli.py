"""`lwm2m-server deploy ...` on a database: create, status, pause, resume, cancel, tag, errors."""

from __future__ import annotations

import json

import pytest

from lwm2m_server.cli import main
from lwm2m_server.store.artifacts import add_artifact
from lwm2m_server.store.db import init_db, make_engine


@pytest.fixture
def db_url(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    init_db(engine)
    add_artifact(engine, kind="firmware", name="fw", version="2.0.0", sha256="ab" * 32, size=10)
    engine.dispose()
    return url


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_status_pause_resume_cancel(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "a,b,c",
                         "--stages", "1,50,100", "--db", db_url)
    assert code == 0 and out.strip() == "1" and "3 devices" in err
    code, out, _ = run(capsys, "deploy", "status", "1", "--json", "--db", db_url)
    view = json.loads(out)
    assert view["state"] == "running" and [t["endpoint"] for t in view["targets"]] == ["a", "b", "c"]
    assert view["stages"] == [1, 50, 100]
    code, out, _ = run(capsys, "deploy", "pause", "1", "--db", db_url)
    assert code == 0 and "paused" in out
    code, out, _ = run(capsys, "deploy", "resume", "1", "--db", db_url)
    assert code == 0 and "running" in out
    code, out, _ = run(capsys, "deploy", "cancel", "1", "--db", db_url)
    assert code == 0 and "cancelled" in out
    code, out, _ = run(capsys, "deploy", "status", "1", "--db", db_url)
    assert out.count("cancelled") >= 4
    code, _, err = run(capsys, "deploy", "resume", "1", "--db", db_url)
    assert code == 1 and "cancelled" in err


def test_errors_are_one_line_and_exit_1(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "deploy", "status", "42", "--db", db_url)
    # a first line names the data folder and database used; the error is one line after it
    assert code == 1 and err.splitlines()[-1] == "error: deployment 42 does not exist"
    assert err.startswith("lwm2m-server: data folder ") and len(err.splitlines()) == 2
    code, _, err = run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "a",
                       "--stages", "50,10", "--db", db_url)
    assert code == 1 and "stages" in err
    code, _, err = run(capsys, "deploy", "create", "--artifact", "9", "--endpoints", "a",
                       "--db", db_url)
    assert code == 1 and "artifact 9 does not exist" in err


def test_tags_then_deploy_by_tag(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "deploy", "tag", "x", "eu,lab", "--db", db_url)[0] == 0
    assert run(capsys, "deploy", "tag", "y", "lab", "--db", db_url)[0] == 0
    code, out, _ = run(capsys, "deploy", "create", "--artifact", "1", "--tag", "lab", "--json",
                       "--db", db_url)
    assert code == 0 and json.loads(out)["counts"]["pending"] == 2


def test_cli_actions_leave_the_same_events_as_rest_for_the_running_server(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    # The CLI has no event bus: the service writes its events to the outbox table in the same
    # transaction; the reconciler of the running server publishes them (relay_outbox).
    import asyncio

    from lwm2m_server.events import EventBus
    from lwm2m_server.rollout import service
    from lwm2m_server.rollout.engine import RolloutEngine

    assert run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "a,b",
               "--db", db_url)[0] == 0
    assert run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "c,d",
               "--db", db_url)[0] == 0
    assert run(capsys, "deploy", "pause", "1", "--db", db_url)[0] == 0
    assert run(capsys, "deploy", "cancel", "1", "--db", db_url)[0] == 0
    engine = make_engine(db_url)
    bus = EventBus()
    sub = bus.subscribe()
    # The same actions with a bus, as the REST routes call them.
    service.pause_deployment(engine, 2, events=bus)
    service.cancel_deployment(engine, 2, events=bus)
    relay = RolloutEngine(engine, None, read_artifact=bytes.fromhex, events=bus)  # type: ignore[arg-type]
    assert relay.relay_outbox() == 6  # 2 created, paused, cancelled, 2 targets cancelled
    assert relay.relay_outbox() == 0  # published once
    events = []
    while not sub.queue.empty():
        events.append(asyncio.Queue.get_nowait(sub.queue))
    engine.dispose()

    def shape(dep: int) -> list[tuple[str, str | None, str, list[str]]]:
        return [(e.kind, e.endpoint, e.data["state"], sorted(e.data)) for e in events
                if e.data["deployment_id"] == dep and e.data["state"] != "running"]
    rest, cli = shape(2), shape(1)
    assert [s[2] for s in cli] == ["paused", "cancelled", "cancelled", "cancelled"]
    assert [(k, s, f) for k, _, s, f in cli] == [(k, s, f) for k, _, s, f in rest]


def test_retry_verify_and_allow_downgrade_from_the_cli(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update
    from sqlmodel import Session

    from lwm2m_server.rollout.tables import Deployment, Target

    code, out, _ = run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "a,b",
                       "--verify", "result", "--allow-downgrade", "--json", "--db", db_url)
    view = json.loads(out)
    assert code == 0 and view["verify"] == "result" and view["allow_downgrade"] is True
    code, _, err = run(capsys, "deploy", "retry", "1", "--db", db_url)
    assert code == 1 and "no failed targets" in err
    engine = make_engine(db_url)
    with Session(engine) as s:  # as the engine leaves it: one target failed, all done
        s.execute(update(Target).where(Target.endpoint == "a").values(state="failed",
                                                                       reason="x", attempt=2))
        s.execute(update(Target).where(Target.endpoint == "b").values(state="succeeded"))
        s.execute(update(Deployment).values(state="completed_with_failures"))
        s.commit()
    engine.dispose()
    code, out, _ = run(capsys, "deploy", "list", "--state", "completed_with_failures", "--json",
                       "--db", db_url)
    assert [d["id"] for d in json.loads(out)] == [1]
    code, out, _ = run(capsys, "deploy", "retry", "1", "--json", "--db", db_url)
    view = json.loads(out)
    assert code == 0 and view["state"] == "running" and view["counts"]["pending"] == 1
    code, out, _ = run(capsys, "deploy", "status", "1", "--json", "--db", db_url)
    t = {x["endpoint"]: x for x in json.loads(out)["targets"]}
    assert t["a"]["state"] == "pending" and t["a"]["attempt"] == 0 and t["b"]["state"] == "succeeded"


def test_deploy_and_artifact_commands_import_no_heavy_module_to_register() -> None:
    import subprocess
    import sys

    code = ("import argparse, sys\n"
            "import lwm2m_server.commands.deploy as d, lwm2m_server.commands.artifact as a\n"
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); d.register(s); a.register(s)\n"
            "print(','.join(m for m in ('sqlalchemy', 'sqlmodel', 'fastapi', 'aiocoap', "
            "'cryptography', 'pydantic', 'ota') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", proc.stdout


def test_the_artifact_command_size_default_is_the_stores() -> None:
    from lwm2m_server.commands import artifact
    from ota import store

    assert artifact.DEFAULT_MAX_SIZE == store.DEFAULT_MAX_SIZE
    from ota.inspection import ARTIFACT_KINDS

    assert artifact.ARTIFACT_KINDS == tuple(ARTIFACT_KINDS)


def test_status_wait_on_the_database_ends_with_the_deployments_exit_code(db_url, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "a", "--db", db_url)[0] == 0
    assert run(capsys, "deploy", "cancel", "1", "--db", db_url)[0] == 0
    code, out, _ = run(capsys, "deploy", "status", "1", "--wait", "--json", "--db", db_url)
    assert code == 4 and json.loads(out)["state"] == "cancelled"
    assert run(capsys, "deploy", "create", "--artifact", "1", "--endpoints", "b", "--db", db_url)[0] == 0
    code, _, _ = run(capsys, "deploy", "status", "2", "--wait", "--timeout", "0.2", "--poll", "0.05",
                     "--db", db_url)
    assert code == 6  # no server drives it: the wait times out


def test_without_a_server_or_database_the_commands_say_so(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for var in ("LWM2M_SERVER_URL", "LWM2M_TOKEN", "LWM2M_DB_URL", "LWM2M_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "deploy", "list")
    assert code == 1 and err.startswith("error: no server") and "--db" in err
    assert not (tmp_path / "lwm2m.db").exists() and not (tmp_path / "data").exists()
    # On the server's host (a database in the default data folder) they use it.
    folder = tmp_path / "data" / "lwm2m-server"
    folder.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{folder / 'lwm2m.db'}")
    init_db(engine)
    engine.dispose()
    code, out, _ = run(capsys, "deploy", "list", "--json")
    assert code == 0 and json.loads(out) == []
