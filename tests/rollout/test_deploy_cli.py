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
