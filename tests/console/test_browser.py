"""The console in real headless Chromium against the real server: sign-in, the devices list, a
device page whose value cell changes live on a notification, a deployment's progress page and
its buttons, and refusals (no login, no CSRF token)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from lwm2m_server.rollout import service as rollout
from lwm2m_server.store.artifacts import add_artifact
from tests.console.conftest import Console

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT_MS = 10_000


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page in a fresh browser context (no cookies)."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        await context.close()


async def sign_in(page: Any, console: Console, scope: str = "ops") -> None:
    await page.goto(console.base + "/")
    await page.fill("#token", console.tokens[scope])
    await page.click("form button[type=submit]")
    await page.wait_for_url("**/console/devices")


async def test_page_without_login_redirects_to_the_login_page(console: Console, page: Any) -> None:
    from playwright.async_api import expect

    await page.goto(console.base + "/console/deployments")
    assert page.url == console.base + "/console/login?next=%2Fconsole%2Fdeployments"
    await expect(page.locator("h1")).to_have_text("Sign in")
    await page.fill("#token", "lwm2m_wrong")
    await page.click("form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("that token is unknown or revoked")
    await page.fill("#token", console.tokens["read"])
    await page.click("form button[type=submit]")
    await page.wait_for_url("**/console/deployments")  # back where the operator wanted to go


async def test_signed_in_operator_sees_the_device_and_its_value_change_live(
        console: Console, page: Any, device: Any) -> None:
    from playwright.async_api import expect

    await sign_in(page, console)
    row = page.locator(f'tr[data-endpoint="{device.endpoint}"]')
    await expect(row).to_contain_text("online")
    await row.locator("a.endpoint").click()
    await page.wait_for_url(f"**/console/devices/{device.endpoint}")
    await expect(page.locator("h1")).to_contain_text(device.endpoint)

    await page.locator('#objects tr:has(code:text-is("/3/0")) button:has-text("Read")').click()
    await expect(page.locator("#flash")).to_have_text("Read /3/0: 3 values")
    battery = page.locator('#values td[data-path="/3/0/9"]')
    await expect(battery).to_have_text("80")
    await page.locator('tr[data-row="/3/0/9"] button:has-text("Observe")').click()
    await expect(page.locator("#flash")).to_contain_text("Observing /3/0/9")
    await expect(page.locator("#live")).to_be_visible()  # the event stream is open

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    device.set("/3/0/9", 42)  # the device notifies its observer
    await expect(battery).to_have_text("42")
    await expect(page.locator("#events li").first).to_contain_text("notification")
    assert navigations == []  # updated in place, no reload

    await page.goto(console.base + "/console/devices")
    await expect(page.locator(f'tr[data-endpoint="{device.endpoint}"]')).to_contain_text("fw-1.4.2")


async def test_post_without_the_csrf_token_is_refused(console: Console, page: Any, device: Any) -> None:
    await sign_in(page, console)
    answer = await page.request.post(f"{console.base}/console/devices/{device.endpoint}/read",
                                     form={"path": "/3/0"})
    assert answer.status == 403
    assert "CSRF token is missing or wrong" in await answer.text()
    assert not device.received


async def test_deployment_progress_page_pauses_and_follows_a_cancel_live(console: Console, page: Any) -> None:
    from playwright.async_api import expect

    engine = console.server.engine
    art = add_artifact(engine, kind="firmware", name="app", version="7.7.7",
                       sha256=hashlib.sha256(b"browser-deployment").hexdigest(), size=65536)
    dep = rollout.create_deployment(engine, rollout.DeploymentSpec(
        artifact_id=int(art.id), endpoints=["absent-1", "absent-2"], retries=20,  # type: ignore[arg-type]
        failure_threshold=1.0), events=console.server.events)
    await sign_in(page, console)
    await page.click('nav a:has-text("Deployments")')
    await page.click(f'a:text-is("#{dep.id}")')
    await page.wait_for_url(f"**/console/deployments/{dep.id}")
    await expect(page.locator("#dep-state")).to_have_text("running")
    await expect(page.locator("#targets tbody tr")).to_have_count(2)
    await expect(page.locator("#dep-progress")).to_have_attribute("aria-valuenow", "0")

    await page.click('button:has-text("Pause")')
    await expect(page.locator("#flash")).to_have_text(f"deployment {dep.id} is paused")
    await expect(page.locator("#dep-state")).to_have_text("paused")
    await expect(page.locator('button:has-text("Resume")')).to_be_enabled()
    await expect(page.locator("#live")).to_be_visible()

    # Someone else cancels it (the CLI, the REST API): the open page follows without a reload.
    rollout.cancel_deployment(engine, int(dep.id), events=console.server.events)  # type: ignore[arg-type]
    await expect(page.locator("#dep-state")).to_have_text("cancelled")
    for label in ("Pause", "Resume", "Cancel"):  # a cancelled deployment takes no button
        await expect(page.locator(f'button:has-text("{label}")')).to_be_disabled()
    states = page.locator('#targets [data-field="state"]')
    await expect(states).to_have_text(["cancelled", "cancelled"])
    await expect(page.locator("#dep-progress")).to_have_attribute("aria-valuenow", "100")
    await expect(page.locator('[data-count="cancelled"]')).to_have_text("2")
    # Not "100%" over an empty bar: the bar is the cancelled share, the label and banner say so.
    await expect(page.locator("#dep-progress + .progress-label")).to_have_text(
        "0 ok · 2 cancelled · 2/2 finished")
    assert await page.locator("#dep-progress .bar-cancel").evaluate("e => e.style.width") == "100%"
    await expect(page.locator('#dep-final [data-field="title"]')).to_have_text("Cancelled")
    await expect(page.locator("#retry-box")).to_be_hidden()


async def test_devices_list_follows_registrations_live(console: Console, page: Any, device: Any) -> None:
    from playwright.async_api import expect

    from tests.support.lwm2m_client import LwM2MTestClient

    await sign_in(page, console, "read")
    await expect(page.locator("#live")).to_be_visible()
    status = page.locator(f'tr[data-endpoint="{device.endpoint}"] [data-field="status"]')
    await expect(status).to_have_text("online")
    await device.deregister()
    await expect(status).to_have_text("offline")
    await expect(page.locator("#new-devices")).to_be_hidden()
    newcomer = LwM2MTestClient("dev-newcomer", {"/3/0/9": 1})
    await newcomer.start()
    try:
        await newcomer.register(console.coap_port)
        await expect(page.locator("#new-devices")).to_be_visible()
        await page.click("#new-devices a")
        await expect(page.locator('tr[data-endpoint="dev-newcomer"]')).to_be_visible()
    finally:
        await newcomer.stop()
