"""A model and firmware rollout done by an operator in real headless Chromium, with no
terminal: upload artifacts and read the server's verdict before accepting, create a staged
deployment to simulated devices (Wasm models in wasmtime) by tag, watch it finish, retry the
failed target, write a resource, run an inference, watch a chart grow, read the fleet overview,
and open the API docs with no other server reachable. Screenshots of every page go to the
folder printed at the start (tmp/artifacts/console under the repository, not committed)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from lwm2m_server.api.fw import install_rollout
from lwm2m_server.config import Settings
from lwm2m_server.rollout import service as rollout
from lwm2m_server.runner import Runner
from lwm2m_server.sim.device import DeviceConfig, SimDevice
from lwm2m_server.store.artifacts import list_artifacts
from lwm2m_server.store.tokens import create_token
from ota.keys import generate_private_key, public_key_of, public_key_pem
from ota.mcuboot import sign_image
from ota.sota import build_package
from tests.console.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT_MS = 20_000
SHOTS = Path(__file__).resolve().parents[2] / "tmp" / "artifacts" / "console"
ENDPOINTS = ("op-1", "op-2", "op-3")
A11Y_CHECKS = (Path(__file__).parent / "a11y.js").read_text()
SMALL_FLASH = 4096  # op-3 cannot take the image: its target fails until it gets more flash


@dataclass
class Fleet:
    runner: Runner
    token: str
    devices: dict[str, SimDevice]
    folder: Path
    signing_key: Any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.runner.http_port}"


def firmware_image(version: str, size: int = 12_000) -> bytes:
    """An MCUboot image with its SHA-256 TLV, as imgtool writes it."""
    return sign_image(bytes((i * 13 + 5) % 251 for i in range(size)), None, version=version)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory, example_model_wasm: bytes) -> AsyncIterator[Fleet]:
    """The server (CoAP, HTTP, rollout engine polling fast, a SOTA public key) and three
    simulated devices tagged ``field``, each running the example model and trusting the key."""
    folder = tmp_path_factory.mktemp("operator")
    key = generate_private_key("ed25519")
    (folder / "sota.pem").write_bytes(public_key_pem(key))
    env = pytest.MonkeyPatch()
    env.setenv("LWM2M_SOTA_PUBLIC_KEY", str(folder / "sota.pem"))
    settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,  # type: ignore[call-arg]
                        db_url=f"sqlite:///{folder / 'server.db'}", request_timeout=3.0,
                        log_level="warning", artifacts_dir=folder / "artifacts",
                        admin_token=SecretStr(ADMIN_TOKEN))
    runner = Runner(settings)
    await runner.start()
    await runner.rollout.stop()
    runner.rollout = await install_rollout(runner.app, runner.server, settings, runner.http_port,
                                           poll=0.5, tick=0.05, backoff_base=0.2)
    _, token = create_token(runner.server.engine, "operator", ["read", "write", "deploy"])
    devices: dict[str, SimDevice] = {}
    try:
        for ep in ENDPOINTS:
            dev = SimDevice(DeviceConfig(
                endpoint=ep, server=f"coap://127.0.0.1:{runner.coap_port}", lifetime=60,
                state_dir=str(folder / ep), initial_model=example_model_wasm,
                trusted_key=public_key_of(key),
                flash_bytes=SMALL_FLASH if ep == "op-3" else 1 << 20))
            await dev.start()
            devices[ep] = dev
            rollout.set_tags(runner.server.engine, ep, ["field"])
        for _ in range(200):
            if all(runner.server.registrations.get(ep) for ep in ENDPOINTS):
                break
            await asyncio.sleep(0.05)
        SHOTS.mkdir(parents=True, exist_ok=True)
        print(f"\nconsole screenshots: {SHOTS}")
        yield Fleet(runner, token, devices, folder, key)
    finally:
        for dev in devices.values():
            await dev.stop(deregister=False)
        await runner.stop()
        env.undo()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        reduced_motion="reduce")
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        await context.close()


async def sign_in(page: Any, fleet: Fleet) -> None:
    await page.goto(fleet.base + "/console/login")
    await page.get_by_label("API token").fill(fleet.token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/devices")


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def upload(page: Any, fleet: Fleet, name: str, data: bytes, kind: str, version: str) -> None:
    path = fleet.folder / name
    path.write_bytes(data)
    form = page.locator("#upload-form")
    await form.get_by_label("File").set_input_files(str(path))
    await form.get_by_label("Kind").select_option(kind)
    await form.get_by_label("Name").fill(name.split(".")[0])
    await form.get_by_label("Version").fill(version)
    await form.get_by_role("button", name="Upload and inspect").click()


async def test_operator_uploads_artifacts_and_reads_the_verdict_before_anything_is_kept(
        fleet: Fleet, page: Any, example_model_wasm: bytes) -> None:
    from playwright.async_api import expect

    engine = fleet.runner.server.engine
    await sign_in(page, fleet)
    await page.get_by_role("navigation").get_by_role("link", name="Artifacts").click()

    # A Wasm model: the verdict lists its exports; discarding it keeps nothing.
    await upload(page, fleet, "classifier.wasm", example_model_wasm, "model", "1.1.0")
    await expect(page.locator("#verdict-title")).to_have_text("Checks passed: model classifier 1.1.0")
    await expect(page.locator("#verdict-checks")).to_contain_text("Wasm exports")
    await expect(page.locator("#verdict-checks")).to_contain_text("infer (func)")
    await expect(page.locator("#upload-percent")).to_contain_text("100%")
    await shot(page, "artifacts-verdict-model")
    await page.get_by_role("button", name="Discard").click()
    await expect(page.locator("#flash")).to_have_text("upload discarded")
    assert list_artifacts(engine) == []

    # A firmware image whose body was altered after signing: refused, with the reason.
    broken = bytearray(firmware_image("2.0.0"))
    broken[600] ^= 0xFF
    await upload(page, fleet, "broken.bin", bytes(broken), "firmware", "2.0.0")
    await expect(page.locator("#verdict-title")).to_contain_text("Refused: firmware check failed")
    await expect(page.locator("#confirm-upload")).to_be_hidden()
    await shot(page, "artifacts-refused")
    assert list_artifacts(engine) == []

    # The real image: hash verified; accepted, it is stored and listed.
    await upload(page, fleet, "app.bin", firmware_image("2.0.0"), "firmware", "2.0.0")
    await expect(page.locator("#verdict-title")).to_have_text("Checks passed: firmware app 2.0.0")
    await expect(page.locator("#verdict-checks")).to_contain_text("verified")
    await page.get_by_role("button", name="Accept and store").click()
    await expect(page.locator("#flash")).to_contain_text("stored firmware artifact")
    stored = list_artifacts(engine)
    assert [(a.kind, a.name, a.version) for a in stored] == [("firmware", "app", "2.0.0")]
    await expect(page.locator(f'tr[data-artifact="{stored[0].id}"]')).to_contain_text("app")

    # A model stored by mistake: its row's Delete button asks first, then removes it.
    await upload(page, fleet, "classifier.wasm", example_model_wasm, "model", "1.1.0")
    await page.get_by_role("button", name="Accept and store").click()
    await expect(page.locator("#flash")).to_contain_text("stored model artifact")
    model = list_artifacts(engine, "model")[0]
    asked: list[str] = []

    async def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()
    page.once("dialog", accept)
    await page.get_by_role("button", name=f"Delete artifact {model.id}").click()
    await expect(page.locator("#flash")).to_have_text(
        f"deleted model artifact #{model.id} classifier 1.1.0")
    assert asked and asked[0].startswith(f"Delete model artifact #{model.id} classifier 1.1.0?")
    await expect(page.locator(f'tr[data-artifact="{model.id}"]')).to_have_count(0)
    assert [(a.kind, a.name) for a in list_artifacts(engine)] == [("firmware", "app")]
    await shot(page, "artifacts")


async def test_operator_runs_a_staged_deployment_to_the_end_and_retries_the_failed_target(
        fleet: Fleet, page: Any) -> None:
    from playwright.async_api import expect

    await sign_in(page, fleet)
    await page.get_by_role("navigation").get_by_role("link", name="Deployments").click()
    await page.get_by_role("link", name="New deployment").click()
    art = list_artifacts(fleet.runner.server.engine)[0]
    await page.get_by_label("Artifact").select_option(label=f"#{art.id} firmware · app 2.0.0")
    await page.get_by_label("Tag", exact=True).select_option("field")
    await expect(page.locator("#target-count")).to_have_text(
        "3 devices targeted: 3 registered, 3 online")
    await page.get_by_label("a list of endpoints").check()
    await page.get_by_role("textbox", name=re.compile("^Endpoints")).fill("op-1, nobody")
    await expect(page.locator("#target-count")).to_have_text(
        "2 devices targeted: 1 registered, 1 online; not registered: nobody")
    await page.get_by_label("devices with a tag").check()
    await expect(page.locator("#target-count")).to_have_text(
        "3 devices targeted: 3 registered, 3 online")
    await page.get_by_label("Stages").fill("34, 100")
    await page.get_by_label("Max concurrent transfers").fill("2")
    await page.get_by_label("Failure threshold").fill("100")
    await page.get_by_label("Timeout per attempt").fill("30")
    await page.get_by_label("Retries").fill("0")
    await page.get_by_label("Verification").select_option("result")
    await shot(page, "deployment-new")
    await page.get_by_role("button", name="Start deployment").click()
    await page.wait_for_url(re.compile(r".*/console/deployments/\d+$"))
    dep_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.locator("#flash")).to_contain_text(f"deployment {dep_id} created")
    await expect(page.locator("#targets tbody tr")).to_have_count(3)
    await expect(page.locator("#dep-verify")).to_have_text("result")

    # It runs through both stages by itself; op-3 has too little flash and fails.
    await expect(page.locator("#dep-final")).to_be_visible(timeout=60_000)
    await expect(page.locator('#dep-final [data-field="title"]')).to_have_text("Finished with failures")
    await expect(page.locator("#dep-state")).to_have_text("completed with failures")
    await expect(page.locator('#dep-stage [data-field="stage"]')).to_have_text("2")
    await expect(page.locator('tr[data-target="op-3"] [data-field="state"]')).to_have_text("failed")
    await expect(page.locator('tr[data-target="op-1"] [data-field="state"]')).to_have_text("succeeded")
    await expect(page.locator("#dep-progress")).to_have_attribute("aria-valuenow", "100")
    await shot(page, "deployment-failures")

    # The operator frees flash on op-3 and retries the failed target from the page.
    fleet.devices["op-3"].config.flash_bytes = 1 << 20
    await page.get_by_role("button", name="Retry failed targets").click()
    await expect(page.locator("#flash")).to_contain_text("failed targets retry")
    await expect(page.locator('#dep-final [data-field="title"]')).to_have_text("Completed",
                                                                                 timeout=60_000)
    await expect(page.locator('[data-count="succeeded"]')).to_have_text("3")
    await expect(page.locator("#retry-box")).to_be_hidden()
    await shot(page, "deployment-completed")
    view = rollout.deployment_view(fleet.runner.server.engine, dep_id)
    assert view["counts"]["succeeded"] == 3

    await page.get_by_role("navigation").get_by_role("link", name="Deployments").click()
    await expect(page.locator("#deployments")).to_contain_text(f"#{dep_id}")
    await shot(page, "deployments")


async def test_operator_rolls_a_new_model_out_as_a_signed_sota_package(
        fleet: Fleet, page: Any, retrained_model_wasm: bytes) -> None:
    from playwright.async_api import expect

    package = build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                            private_key=fleet.signing_key, slot_size=65536)
    await sign_in(page, fleet)
    await page.get_by_role("navigation").get_by_role("link", name="Artifacts").click()
    await upload(page, fleet, "classifier.sota", package, "sota", "2.0.0")
    checks = page.locator("#verdict-checks")
    await expect(page.locator("#verdict-title")).to_have_text("Checks passed: sota classifier 2.0.0")
    await expect(checks.locator("dt:text-is('Signature') + dd")).to_have_text("verified")
    await expect(checks.locator("dt:text-is('Manifest version') + dd")).to_have_text("2.0.0")
    await expect(checks.locator("dt:text-is('Manifest required Wasm exports') + dd")).to_contain_text(
        "infer")
    await shot(page, "artifacts-verdict-sota")
    await page.get_by_role("button", name="Accept and store").click()
    await expect(page.locator("#flash")).to_contain_text("stored sota artifact")
    art = next(a for a in list_artifacts(fleet.runner.server.engine) if a.kind == "sota")
    await page.locator(f'tr[data-artifact="{art.id}"]').get_by_role("link", name="Deploy").click()
    await expect(page.get_by_label("Artifact")).to_have_value(str(art.id))
    await page.get_by_label("a list of endpoints").check()
    await page.get_by_role("textbox", name=re.compile("^Endpoints")).fill("op-1\nop-2")
    await expect(page.locator("#target-count")).to_have_text(
        "2 devices targeted: 2 registered, 2 online")
    await page.get_by_label("Stages").fill("100")
    await expect(page.get_by_label("Verification")).to_have_value("version")
    await page.get_by_role("button", name="Start deployment").click()
    await expect(page.locator("#form-error")).to_have_count(0)
    await page.wait_for_url(re.compile(r".*/console/deployments/\d+$"))
    await expect(page.locator('#dep-final [data-field="title"]')).to_have_text("Completed",
                                                                                 timeout=60_000)
    await expect(page.locator("#dep-verify")).to_have_text("version")
    await shot(page, "deployment-sota")

    await page.goto(fleet.base + "/console/devices/op-2")
    slot = page.locator('#model-panel .slot-active')
    await expect(slot).to_contain_text("classifier 2.0.0")


async def test_operator_writes_a_resource_runs_an_inference_and_watches_a_chart_grow(
        fleet: Fleet, page: Any) -> None:
    from playwright.async_api import expect

    await sign_in(page, fleet)
    await page.goto(fleet.base + "/console/devices/op-1")
    model = page.locator("#model-panel")

    # Run inference: Execute /33100/0/8 with the vector, then Read the outputs.
    await page.get_by_label("Input vector").fill("1.0, 0.5, 0.2, 0.1")
    await page.get_by_role("button", name="Run inference").click()
    flash = page.locator("#flash")
    await expect(flash).to_contain_text("Inference: output ")
    found = re.search(r"output (-?\d+), score [\d.]+, (\d+) µs, inference #(\d+)",
                      await flash.inner_text())
    assert found, await flash.inner_text()
    output, latency, count = found.groups()
    host = fleet.devices["op-1"].model
    assert (int(output), int(latency), int(count)) == (host.last_output, host.last_latency_us,
                                                       host.count)
    await expect(model.locator('[data-path="/33100/0/6"]')).to_have_text(output)
    await expect(model.locator('[data-path="/33100/0/5"]')).to_have_text(latency)
    await expect(model.locator('[data-when="/33100/0/6"] .src')).to_have_text("read")

    # A bad vector is refused with the reason; the device is not asked.
    await page.get_by_label("Input vector").fill("1.0, lots")
    await page.get_by_role("button", name="Run inference").click()
    await expect(flash).to_contain_text("400: the input vector holds something that is not a number")
    assert host.count == int(count)

    # Observe the model object, then Write the inference period (a typed integer input):
    # the device infers every second and its notifications grow the chart.
    await page.get_by_role("button", name="Observe model object").click()
    await expect(flash).to_contain_text("Observing /33100/0")
    await page.get_by_label("New value of Inference Period (integer)").fill("1")
    await page.locator('tr[data-resource="/33100/0/9"]').get_by_role("button", name="Write").click()
    await expect(flash).to_have_text("Wrote /33100/0/9 = 1")
    chart = page.locator('figure[data-chart="/33100/0/4"]')
    await expect(chart).to_be_visible()
    before = int(await chart.get_attribute("data-points") or 0)
    await expect(chart).not_to_have_attribute("data-points", str(before), timeout=10_000)
    await expect(model.locator('[data-when="/33100/0/4"] .src')).to_have_text("notification")
    assert int(await chart.get_attribute("data-points") or 0) > before
    await expect(chart.locator("polyline")).to_have_count(1)
    await shot(page, "device")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / "device-top.png"))
    for part in ("#model-panel", "#charts-card", "#res-33100-0"):
        await page.locator(part).screenshot(path=str(SHOTS / f"device-{part[1:]}.png"))

    # A value that is not an integer is refused by the browser's typed input and by the server.
    answer = await page.request.post(
        f"{fleet.base}/console/devices/op-1/write",
        form={"csrf_token": await page.locator('input[name="csrf_token"]').first.input_value(),
              "path": "/33100/0/9", "value": "soon"})
    assert answer.status == 200  # back on the device page, which says why
    assert "/33100/0/9: &#39;soon&#39; is not a valid integer value" in await answer.text()
    await page.get_by_label("New value of Inference Period (integer)").fill("0")
    await page.locator('tr[data-resource="/33100/0/9"]').get_by_role("button", name="Write").click()
    await expect(flash).to_have_text("Wrote /33100/0/9 = 0")


async def test_overview_counts_the_fleet_and_charts_its_versions(fleet: Fleet, page: Any,
                                                                 browser: Any) -> None:
    from playwright.async_api import expect

    await sign_in(page, fleet)
    await page.get_by_role("navigation").get_by_role("link", name="Overview").click()
    await expect(page.locator("#count-total")).to_have_text("3")
    await expect(page.locator("#count-online")).to_have_text("3")
    await expect(page.locator('#firmware-chart tr[data-version="2.0.0"] .bar-n')).to_have_text("3")
    await expect(page.locator('#model-chart tr[data-version="classifier 2.0.0"] .bar-n')).to_have_text("2")
    await expect(page.locator('#model-chart tr[data-version="classifier 1.0.0"] .bar-n')).to_have_text("1")
    await shot(page, "overview")
    await page.get_by_label("Tag").select_option("field")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#count-total")).to_have_text("3")

    # A tablet: nothing wider than the screen, every page still usable.
    tablet = await browser.new_context(viewport={"width": 800, "height": 1100},
                                       reduced_motion="reduce")
    try:
        tab = await tablet.new_page()
        tab.set_default_timeout(WAIT_MS)
        await sign_in(tab, fleet)
        for name, path in (("overview", "/console/overview"), ("devices", "/console/devices"),
                           ("device", "/console/devices/op-1"),
                           ("deployments", "/console/deployments"),
                           ("deployment", "/console/deployments/1"),
                           ("deployment-new", "/console/deployments/new"),
                           ("artifacts", "/console/artifacts")):
            await tab.goto(fleet.base + path)
            overflow = await tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} is {overflow} px wider than a tablet"
            assert await tab.evaluate(A11Y_CHECKS) == [], path
            await shot(tab, f"tablet-{name}")
    finally:
        await tablet.close()


async def test_the_keyboard_reaches_the_content_and_every_button(fleet: Fleet, page: Any) -> None:
    from playwright.async_api import expect

    await page.goto(fleet.base + "/console/login")
    assert await page.evaluate(A11Y_CHECKS) == []
    await sign_in(page, fleet)
    await page.goto(fleet.base + "/console/devices/op-1")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("#main")).to_be_focused()
    # From the content, Tab walks to the inference input and Enter on its button runs it.
    vector = page.get_by_label("Input vector")
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await vector.evaluate("e => e === document.activeElement"):
            break
    await expect(vector).to_be_focused()
    await page.keyboard.type("0.3, 0.3, 0.3, 0.3")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Run inference")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#flash")).to_contain_text("Inference: output ")
    assert await page.evaluate(A11Y_CHECKS) == []


async def test_docs_load_from_this_server_alone_and_render(fleet: Fleet, page: Any) -> None:
    from playwright.async_api import expect

    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    # Nothing but this server answers: any other host is refused outright.
    await page.route(re.compile(r"^(?!" + re.escape(fleet.base) + r").*"),
                     lambda route: route.abort())
    await page.goto(fleet.base + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("lwm2m-server")
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    await shot(page, "docs")
    elsewhere = [u for u in requested if not u.startswith(fleet.base + "/")]
    assert requested and not elsewhere, elsewhere


async def test_console_scripts_keep_the_session_and_csrf_checks(fleet: Fleet, page: Any) -> None:
    # Without a session: JSON views send the browser to the login page, uploads get 401.
    answer = await page.request.get(f"{fleet.base}/console/devices/op-1/values.json",
                                    max_redirects=0)
    assert answer.status == 303 and "/console/login" in answer.headers["location"]
    answer = await page.request.post(f"{fleet.base}/console/artifacts/inspect",
                                     multipart={"kind": "firmware", "name": "x", "version": "1",
                                                "file": {"name": "x.bin", "mimeType": "application/octet-stream",
                                                         "buffer": firmware_image("3.0.0")}})
    assert answer.status == 401
    # Signed in, but without the form's CSRF token: refused, nothing kept or started.
    await sign_in(page, fleet)
    answer = await page.request.post(f"{fleet.base}/console/artifacts/inspect",
                                     multipart={"kind": "firmware", "name": "x", "version": "1",
                                                "file": {"name": "x.bin", "mimeType": "application/octet-stream",
                                                         "buffer": firmware_image("3.0.0")}})
    assert answer.status == 403
    assert "CSRF token is missing or wrong" in await answer.text()
    before = len(rollout.list_deployments(fleet.runner.server.engine))
    answer = await page.request.post(f"{fleet.base}/console/deployments/new",
                                     form={"artifact_id": "1", "tag": "field", "target_mode": "tag"})
    assert answer.status == 403
    answer = await page.request.post(f"{fleet.base}/console/deployments/1/retry", form={})
    assert answer.status == 403
    assert len(rollout.list_deployments(fleet.runner.server.engine)) == before
