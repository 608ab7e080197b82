"""Request bodies: the token is checked before a byte of the body is read, and bodies are capped."""

from __future__ import annotations

import httpx
import pytest

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from tests.api.conftest import bearer

CHUNK = 64 * 1024


class Body:
    """A streamed request body of ``total`` bytes that counts how much of it was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read = 0

    async def __aiter__(self):
        while self.read < self.total:
            n = min(CHUNK, self.total - self.read)
            self.read += n
            yield b" " * n


@pytest.fixture
async def small(engine) -> httpx.AsyncClient:
    """The app with a 4 KiB JSON body limit."""
    app = create_app(Settings(environment="development", max_json_body=4096), server=None,
                     engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


async def test_unauthenticated_100_mib_post_is_refused_before_the_body_is_read(client) -> None:
    body = Body(100 * 1024 * 1024)
    r = await client.post("/api/v1/tokens", content=body,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert body.read <= CHUNK  # at most what the transport pulled before the answer


async def test_a_bad_token_is_refused_before_the_body_is_read(client) -> None:
    body = Body(10 * 1024 * 1024)
    r = await client.post("/api/v1/tokens", content=body,
                          headers={**bearer("not-a-token"), "Content-Type": "application/json"})
    assert r.status_code == 401 and body.read <= CHUNK


async def test_declared_content_length_over_the_limit_is_413_without_reading(small, tokens) -> None:
    body = Body(1024 * 1024)
    r = await small.post("/api/v1/tokens", content=body,
                         headers={**bearer(tokens["admin"]), "Content-Type": "application/json",
                                  "Content-Length": str(body.total)})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "4096" in r.json()["detail"]
    assert body.read <= CHUNK


async def test_streamed_body_is_cut_off_once_it_passes_the_limit(small, tokens) -> None:
    body = Body(8 * 1024 * 1024)  # no Content-Length: chunked
    r = await small.post("/api/v1/tokens", content=body,
                         headers={**bearer(tokens["admin"]), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert body.read <= 2 * CHUNK


async def test_a_body_under_the_limit_still_works(small, tokens) -> None:
    r = await small.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]},
                         headers=bearer(tokens["admin"]))
    assert r.status_code == 201, r.text


def test_max_json_body_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LWM2M_MAX_JSON_BODY", "20000")
    assert Settings().max_json_body == 20000
    assert Settings.model_fields["max_json_body"].default == 1024 * 1024
