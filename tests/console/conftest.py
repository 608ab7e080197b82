"""Real pieces for the console tests: the Runner (LwM2M server on UDP + uvicorn, both on
127.0.0.1 port 0, temporary SQLite), tokens per scope, a signed-in HTTP client, and headless
Chromium driven by Playwright (Debian's /usr/bin/chromium; never a downloaded browser)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner
from lwm2m_server.store.tokens import create_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN_TOKEN = "console-bootstrap-" + secrets.token_urlsafe(24)
SCOPES = {"read": ["read"], "write": ["read", "write"], "deploy": ["read", "deploy"],
          "ops": ["read", "write", "deploy"], "write_only": ["write"]}


@dataclass
class Console:
    runner: Runner
    tokens: dict[str, str]

    @property
    def server(self) -> Any:
        return self.runner.server

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.runner.http_port}"

    @property
    def coap_port(self) -> int:
        assert self.runner.coap_port is not None
        return self.runner.coap_port

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=20)

    @contextlib.asynccontextmanager
    async def signed_in(self, scope: str = "ops") -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client holding a console session for the token of ``scope``."""
        async with self.client() as http:
            page = await http.get("/console/login")
            answer = await http.post("/console/login", data={"token": self.tokens[scope],
                                                             "login_nonce": login_nonce(page.text)})
            assert answer.status_code == 303, answer.text
            yield http


def login_nonce(html: str) -> str:
    found = re.search(r'name="login_nonce" value="([^"]+)"', html)
    assert found, "no login nonce in the page"
    return found.group(1)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    """Server + HTTP app on loopback ports, one per test module (tests use their own endpoints)."""
    folder: Path = tmp_path_factory.mktemp("console")
    settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,  # type: ignore[call-arg]
                        db_url=f"sqlite:///{folder / 'console.db'}", request_timeout=2.0,
                        log_level="warning", artifacts_dir=folder / "artifacts",
                        admin_token=SecretStr(ADMIN_TOKEN),
                        secret_key=SecretStr("console-test-secret-0123456789abcdef"),
                        read_on_register=False)  # tests count what a device receives
    # Queue-mode devices count as asleep 1 s after they last spoke.
    runner = Runner(settings, expiry_interval=0.2, awake_window=1.0)
    await runner.start()
    tokens = {name: create_token(runner.server.engine, f"console-{name}", scopes)[1]
              for name, scopes in SCOPES.items()}
    try:
        yield Console(runner, tokens)
    finally:
        await runner.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium for the module (each test opens its own context: fresh cookies)."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test.sh installs it)")
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


DEVICE_VALUES: dict[str, Any] = {
    "/3/0/0": "ACME", "/3/0/3": "fw-1.4.2", "/3/0/9": 80,
    "/33100/0/0": 1, "/33100/0/1/0": "kws", "/33100/0/1/1": "kws-tiny",
    "/33100/0/2/0": "1.0.0", "/33100/0/2/1": "2.0.1", "/33100/0/4": 1200, "/33100/0/5": 830,
    "/33100/0/6": 2, "/33100/0/7": 0.93, "/33100/0/10": "wamr-interp",
}


@pytest_asyncio.fixture(loop_scope="module")
async def device(console: Console, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A registered test device (Device object and the model object), named after the test."""
    from tests.support.lwm2m_client import LwM2MTestClient

    name = "dev-" + request.node.name.removeprefix("test_")[:40].replace("_", "-")
    client = LwM2MTestClient(name, dict(DEVICE_VALUES))
    await client.start()
    answer = await client.register(console.coap_port)
    assert str(answer.code) == "2.01 Created", answer
    try:
        yield client
    finally:
        await client.stop()
