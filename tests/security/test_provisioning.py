"""Provisioning: credentials through the CLI and REST (admin only, keys never read back), keys
sealed at rest with the server secret, bootstrap configuration through the CLI and REST."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from lwm2m_server.app import create_app
from lwm2m_server.cli import main
from lwm2m_server.config import Settings
from lwm2m_server.security.keybox import KeyBox, SecretError
from lwm2m_server.store.credentials import CredentialStore
from lwm2m_server.store.db import init_db, make_engine
from lwm2m_server.store.tokens import create_token

SECRET = "k" + secrets.token_urlsafe(32)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LWM2M_SECRET_KEY", SECRET)
    monkeypatch.delenv("LWM2M_ENVIRONMENT", raising=False)
    return f"sqlite:///{tmp_path / 'p.db'}"


def raw_rows(url: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT endpoint, purpose, psk_identity, sealed_key FROM device_credential").fetchall()


def test_device_add_generate_prints_the_key_once_and_stores_it_sealed(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "add", "dev-a", "--generate", "--db", db]) == 0
    out, err = capsys.readouterr()
    key = bytes.fromhex(out.strip())
    assert len(key) == 16 and "shown only once" in err
    ((ep, purpose, identity, sealed),) = raw_rows(db)
    assert (ep, purpose, identity) == ("dev-a", "dm", "dev-a")
    assert key not in sealed and key.hex().encode() not in sealed
    assert KeyBox(SECRET).open(sealed, "dev-a", "dm", "dev-a") == key
    with pytest.raises(SecretError):  # another secret does not open it
        KeyBox("another secret of enough length 0123456789").open(sealed, "dev-a", "dm", "dev-a")
    with pytest.raises(SecretError):  # nor does the ciphertext moved to another row
        KeyBox(SECRET).open(sealed, "dev-b", "dm", "dev-a")
    # show: identity and purpose, never the key
    assert main(["device", "show", "dev-a", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "dev-a" in shown and key.hex() not in shown


def test_device_add_with_a_given_key_and_identity_rules(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "add", "dev-b", "--psk-identity", "id-b", "--psk-key", "00" * 16,
                 "--db", db]) == 0
    # One identity, one endpoint.
    assert main(["device", "add", "dev-c", "--psk-identity", "id-b", "--psk-key", "11" * 16,
                 "--db", db]) == 2
    assert "already belongs to endpoint 'dev-b'" in capsys.readouterr().err
    assert main(["device", "add", "dev-c", "--psk-key", "abc", "--db", db]) == 2
    assert "hexadecimal" in capsys.readouterr().err
    assert main(["device", "add", "dev-c", "--psk-key", "00" * 8, "--db", db]) == 2
    assert "16..64 bytes" in capsys.readouterr().err
    assert main(["device", "remove", "dev-b", "--db", db]) == 0
    assert raw_rows(db) == []


def test_keys_are_refused_without_a_secret_outside_development(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LWM2M_SECRET_KEY", raising=False)
    monkeypatch.delenv("LWM2M_ENVIRONMENT", raising=False)
    db = f"sqlite:///{tmp_path / 'n.db'}"
    assert main(["device", "add", "dev-x", "--generate", "--db", db]) == 2
    assert "LWM2M_SECRET_KEY is not set" in capsys.readouterr().err
    assert raw_rows(db) == []
    for weak in ("changethis", "short", "a" * 40):
        with pytest.raises(ValidationError, match="secret_key"):
            Settings(secret_key=weak)
    Settings(secret_key="a" * 40, environment="development")  # allowed for the quick tour


async def test_server_with_stored_keys_refuses_to_start_without_the_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwm2m_server.server import LwM2MServer

    monkeypatch.delenv("LWM2M_SECRET_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    init_db(engine)
    CredentialStore(engine, KeyBox(SECRET)).put("dev-s", "id-s", bytes(16))
    server = LwM2MServer(Settings(coap_host="127.0.0.1", coap_port=0, db_url=url), engine=engine)
    with pytest.raises(SecretError, match="LWM2M_SECRET_KEY is not set"):
        await server.start()
    assert server.coap_port is None


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Any]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    init_db(engine)
    tokens = {s: create_token(engine, f"t-{s}", [s])[1] for s in ("read", "write", "admin")}
    app = create_app(Settings(secret_key=SECRET), server=None, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c, tokens, engine
    engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_rest_credentials_are_admin_only_and_never_return_keys(api: Any) -> None:
    c, tokens, engine = api
    url = "/api/v1/devices/dev-r/credentials"
    body = {"psk_identity": "id-r", "psk_key": "ab" * 16}
    for scope in ("read", "write"):
        r = await c.put(url, json=body, headers=auth(tokens[scope]))
        assert r.status_code == 403 and "admin" in r.text
    r = await c.put(url, json=body, headers=auth(tokens["admin"]))
    assert r.status_code == 200, r.text
    assert r.json()["psk_identity"] == "id-r" and "psk_key" not in r.json()
    r = await c.get(url, headers=auth(tokens["admin"]))
    assert r.status_code == 200 and "ab" * 16 not in r.text
    assert r.json()["credentials"][0]["psk_identity"] == "id-r"
    # generate: the key comes back once, in the PUT's response, and opens with the secret
    r = await c.put(url, json={"generate": True, "purpose": "bootstrap"}, headers=auth(tokens["admin"]))
    assert r.status_code == 200
    key = bytes.fromhex(r.json()["psk_key"])
    assert CredentialStore(engine, KeyBox(SECRET)).get("dev-r", "bootstrap").key == key
    r = await c.get(url, headers=auth(tokens["admin"]))
    assert r.json()["credentials"][0]["purpose"] == "bootstrap" and key.hex() not in r.text
    # bad input
    for bad in ({"psk_key": "zz"}, {}, {"psk_key": "00" * 16, "generate": True},
                {"psk_identity": "has space", "psk_key": "00" * 16}):
        r = await c.put(url, json=bad, headers=auth(tokens["admin"]))
        assert r.status_code in (400, 422), (bad, r.text)
    r = await c.delete(url, headers=auth(tokens["admin"]))
    assert r.status_code == 200 and r.json()["deleted"] == 2
    r = await c.get(url, headers=auth(tokens["admin"]))
    assert r.status_code == 404


async def test_rest_bootstrap_configuration(api: Any) -> None:
    c, tokens, engine = api
    h = auth(tokens["admin"])
    r = await c.put("/api/v1/bootstrap/template", json={"security_mode": "psk", "lifetime": 120}, headers=h)
    assert r.status_code == 200, r.text
    r = await c.put("/api/v1/bootstrap/template",
                    json={"psk_identity": "x", "psk_key_hex": "00" * 16}, headers=h)
    assert r.status_code == 400 and "every device would share it" in r.text
    r = await c.put("/api/v1/bootstrap/endpoints/dev-q",
                    json={"psk_identity": "id-q", "psk_key_hex": "22" * 16, "binding": "UQ"}, headers=h)
    assert r.status_code == 200, r.text
    # The key went to the sealed credential store, not into the JSON configuration.
    assert CredentialStore(engine, KeyBox(SECRET)).get("dev-q", "dm").key == bytes([0x22] * 16)
    r = await c.get("/api/v1/bootstrap", headers=h)
    assert r.json()["template"]["lifetime"] == 120 and r.json()["endpoints"]["dev-q"]["binding"] == "UQ"
    assert "22" * 16 not in r.text
    for bad in ({"security_mode": "rpk"}, {"binding": "S"}, {"short_server_id": 0}, {"color": 1},
                {"security_mode": "nosec", "server_uri": "coaps://h:5684"}):
        r = await c.put("/api/v1/bootstrap/endpoints/dev-q", json=bad, headers=h)
        assert r.status_code == 400, (bad, r.text)
    r = await c.get("/api/v1/bootstrap/template", headers=auth(tokens["read"]))
    assert r.status_code == 403
    assert (await c.delete("/api/v1/bootstrap/endpoints/dev-q", headers=h)).status_code == 200
    assert (await c.get("/api/v1/bootstrap/endpoints/dev-q", headers=h)).status_code == 404


def test_cli_bootstrap_set_show_list_remove(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bootstrap", "set", "--template", "--lifetime", "90", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["lifetime"] == 90
    assert main(["bootstrap", "set", "dev-z", "--security-mode", "nosec",
                 "--server-uri", "coap://10.0.0.1:5683", "--db", db]) == 0
    capsys.readouterr()
    assert main(["bootstrap", "set", "dev-z", "--security-mode", "nosec",
                 "--server-uri", "coaps://10.0.0.1:5684", "--db", db]) == 2
    assert "coap://HOST:PORT" in capsys.readouterr().err
    assert main(["bootstrap", "list", "--db", db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["template"]["lifetime"] == 90 and listed["dev-z"]["security_mode"] == "nosec"
    assert main(["bootstrap", "remove", "dev-z", "--db", db]) == 0
    assert main(["bootstrap", "show", "dev-z", "--db", db]) == 2
