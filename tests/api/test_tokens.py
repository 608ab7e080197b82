"""API tokens: hashed storage, scopes, revocation, the auth dependency and /api/v1/tokens."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lwm2m_server.store import tokens as token_store
from lwm2m_server.store.tokens import (
    ApiToken,
    TokenError,
    cached_token,
    create_token,
    list_tokens,
    parse_scopes,
    revoke_token,
    verify_token,
)

from .conftest import bearer


def test_token_is_stored_only_as_its_sha256(engine: Engine) -> None:
    row, plaintext = create_token(engine, "ci", "read,write")
    with Session(engine) as s:
        stored = s.exec(select(ApiToken)).one()
    assert stored.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in (stored.token_hash, stored.display_prefix, stored.name, stored.scopes)
    assert len(plaintext) >= 40 and plaintext.startswith(stored.display_prefix)


def test_two_tokens_never_collide(engine: Engine) -> None:
    a = create_token(engine, "a", "read")[1]
    b = create_token(engine, "a", "read")[1]
    assert a != b


def test_verify_accepts_the_token_and_records_last_use(engine: Engine) -> None:
    _, plaintext = create_token(engine, "ci", ["read"])
    tok = verify_token(engine, plaintext)
    assert tok is not None and tok.name == "ci" and tok.last_used_at is not None


@pytest.mark.parametrize("bad", ["", "x", "lwm2m_" + "A" * 43, "a" * 500])
def test_verify_refuses_unknown_tokens(engine: Engine, bad: str) -> None:
    create_token(engine, "ci", ["read"])
    assert verify_token(engine, bad) is None


def test_revoked_token_no_longer_verifies(engine: Engine) -> None:
    row, plaintext = create_token(engine, "ci", ["read"])
    revoke_token(engine, row.id)  # type: ignore[arg-type]
    assert verify_token(engine, plaintext) is None
    assert [t.revoked for t in list_tokens(engine)] == [True]
    assert list_tokens(engine, include_revoked=False) == []


def test_revoke_by_name_refuses_ambiguous_and_unknown_names(engine: Engine) -> None:
    create_token(engine, "dup", ["read"])
    create_token(engine, "dup", ["read"])
    with pytest.raises(TokenError, match="revoke by id"):
        revoke_token(engine, "dup")
    with pytest.raises(TokenError, match="no token"):
        revoke_token(engine, "nope")


@pytest.mark.parametrize("scopes, message", [("", "at least one"), ("read,root", "unknown scope")])
def test_bad_scopes_are_refused(engine: Engine, scopes: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        create_token(engine, "x", scopes)
    assert list_tokens(engine) == []


def test_scopes_are_canonical_and_deduplicated() -> None:
    assert parse_scopes(" admin,READ,read ") == ["read", "admin"]


async def test_request_without_token_gets_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/tokens")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"


async def test_request_with_bad_or_revoked_token_gets_401(client: httpx.AsyncClient, engine: Engine,
                                                          tokens: dict[str, str]) -> None:
    assert (await client.get("/api/v1/tokens", headers=bearer("nope"))).status_code == 401
    assert (await client.get("/api/v1/tokens", headers={"Authorization": "Basic abc"})).status_code == 401
    revoke_token(engine, "t-admin")
    r = await client.get("/api/v1/tokens", headers=bearer(tokens["admin"]))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_token_routes_need_the_admin_scope(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    for scope in ("read", "write", "deploy"):
        r = await client.get("/api/v1/tokens", headers=bearer(tokens[scope]))
        assert r.status_code == 403, scope
        assert r.json()["scope"] == "admin"
    r = await client.get("/api/v1/tokens", headers=bearer(tokens["admin"]))
    assert r.status_code == 200
    assert {t["name"] for t in r.json()} == {"t-read", "t-write", "t-deploy", "t-admin"}
    assert all("token" not in t and "token_hash" not in t for t in r.json())


async def test_admin_creates_and_revokes_tokens_over_rest(client: httpx.AsyncClient,
                                                          tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    r = await client.post("/api/v1/tokens", json={"name": "ops", "scopes": ["read"]}, headers=admin)
    assert r.status_code == 201
    new = r.json()
    assert new["scopes"] == ["read"] and new["token"].startswith("lwm2m_")
    assert (await client.get("/metrics", headers=bearer(new["token"]))).status_code == 200
    r = await client.delete(f"/api/v1/tokens/{new['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert (await client.get("/api/v1/tokens", headers=bearer(new["token"]))).status_code == 401
    assert (await client.delete("/api/v1/tokens/9999", headers=admin)).status_code == 404


async def test_creating_a_token_with_an_unknown_scope_is_a_400(client: httpx.AsyncClient,
                                                               tokens: dict[str, str]) -> None:
    r = await client.post("/api/v1/tokens", json={"name": "x", "scopes": ["root"]},
                          headers=bearer(tokens["admin"]))
    assert r.status_code == 400 and "unknown scope" in r.json()["detail"]
    r = await client.post("/api/v1/tokens", json={"scopes": ["read"]}, headers=bearer(tokens["admin"]))
    assert r.status_code == 400 and "name" in r.json()["detail"]


async def test_a_token_used_moments_ago_is_refused_at_once_after_its_revocation(
        client: httpx.AsyncClient, engine: Engine, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    assert (await client.get("/api/v1/tokens", headers=admin)).status_code == 200  # now cached
    assert cached_token(engine, tokens["admin"]) is not None
    revoke_token(engine, "t-admin")
    assert cached_token(engine, tokens["admin"]) is None
    r = await client.get("/api/v1/tokens", headers=admin)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_a_revocation_by_another_process_takes_effect_within_the_cache_lifetime(
        client: httpx.AsyncClient, engine: Engine, tokens: dict[str, str], monkeypatch) -> None:
    monkeypatch.setattr(token_store, "VERIFIED_TTL", 0.3)
    admin = bearer(tokens["admin"])
    assert (await client.get("/api/v1/tokens", headers=admin)).status_code == 200
    # Another process (the `token revoke` command) writes the revocation to the shared database.
    with Session(engine) as s:
        row = s.exec(select(ApiToken).where(ApiToken.name == "t-admin")).one()
        row.revoked_at = datetime.now(timezone.utc)
        s.add(row)
        s.commit()
    assert (await client.get("/api/v1/tokens", headers=admin)).status_code == 200  # still trusted
    await asyncio.sleep(0.4)
    assert (await client.get("/api/v1/tokens", headers=admin)).status_code == 401
