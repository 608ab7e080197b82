"""Console routes over plain HTTP (httpx) against the real server: sign-in, CSRF, scopes,
pages built from the REST views, buttons that act on a real device, escaping, headers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

import httpx
import pytest

from lwm2m_server.rollout import service as rollout
from lwm2m_server.store.artifacts import add_artifact
from lwm2m_server.store.tokens import create_token, revoke_token
from tests.console.conftest import ADMIN_TOKEN, Console, csrf_token, login_nonce

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def press(http: httpx.AsyncClient, page: str, action: str, **fields: str) -> tuple[int, str]:
    """Open ``page``, post its form to ``action`` with the page's CSRF token; the status of the
    POST and the page it leads to (flash message included)."""
    html = (await http.get(page)).text
    answer = await http.post(action, data={"csrf_token": csrf_token(html), **fields})
    if answer.status_code != 303:
        return answer.status_code, answer.text
    return 303, (await http.get(answer.headers["location"])).text


def flash(html: str) -> str:
    found = re.search(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', html, re.S)
    assert found, "no flash message on the page"
    return f"{found.group(1)}: {found.group(2).strip()}"


async def test_root_and_console_root_redirect_to_the_devices_page(console: Console) -> None:
    async with console.client() as http:
        for path in ("/", "/console", "/console/"):
            answer = await http.get(path)
            assert answer.status_code == 307
            assert answer.headers["location"] == "/console/devices"


@pytest.mark.parametrize("path", ["/console/devices", "/console/devices/any", "/console/deployments",
                                  "/console/deployments/1", "/console/artifacts",
                                  "/console/events?endpoint=x"])
async def test_pages_without_login_redirect_to_the_login_page(console: Console, path: str) -> None:
    async with console.client() as http:
        answer = await http.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login?next=")
        assert httpx.URL(answer.headers["location"]).params["next"] == path


async def test_post_without_login_is_401_and_does_nothing(console: Console, device: Any) -> None:
    async with console.client() as http:
        answer = await http.post(f"/console/devices/{device.endpoint}/read", data={"path": "/3/0"})
    assert answer.status_code == 401
    assert "sign in" in answer.text.lower()
    assert not device.received


async def test_login_with_unknown_token_shows_the_error_and_opens_no_session(console: Console) -> None:
    async with console.client() as http:
        nonce = login_nonce((await http.get("/console/login")).text)
        answer = await http.post("/console/login", data={"token": "lwm2m_not-a-token",
                                                          "login_nonce": nonce})
        assert answer.status_code == 401
        assert "unknown or revoked" in answer.text
        assert "lwm2m_console" not in http.cookies
        assert (await http.get("/console/devices")).status_code == 303


async def test_login_with_a_token_without_read_scope_is_refused(console: Console) -> None:
    async with console.client() as http:
        nonce = login_nonce((await http.get("/console/login")).text)
        answer = await http.post("/console/login", data={"token": console.tokens["write_only"],
                                                          "login_nonce": nonce})
        assert answer.status_code == 403
        assert "lacks the &#39;read&#39; scope" in answer.text
        assert "lwm2m_console" not in http.cookies


async def test_bootstrap_admin_token_from_the_settings_signs_in(console: Console) -> None:
    async with console.client() as http:
        nonce = login_nonce((await http.get("/console/login")).text)
        answer = await http.post("/console/login", data={"token": ADMIN_TOKEN, "login_nonce": nonce})
        assert answer.status_code == 303
        html = (await http.get(answer.headers["location"])).text
    assert "signed in as LWM2M_ADMIN_TOKEN" in html


async def test_login_without_the_form_nonce_is_refused(console: Console) -> None:
    async with console.client() as http:
        await http.get("/console/login")
        answer = await http.post("/console/login", data={"token": console.tokens["ops"]})
        assert answer.status_code == 403
        assert "login form is stale" in answer.text
        assert "lwm2m_console" not in http.cookies


async def test_session_cookie_is_httponly_samesite_strict_and_next_stays_inside_the_console(
        console: Console) -> None:
    for wanted, landed in (("/console/artifacts", "/console/artifacts"),
                           ("//evil.example/x", "/console/devices"),
                           ("https://evil.example/", "/console/devices")):
        async with console.client() as http:
            page = await http.get("/console/login", params={"next": wanted})
            answer = await http.post("/console/login", data={
                "token": console.tokens["read"], "login_nonce": login_nonce(page.text),
                "next": wanted})
            assert answer.status_code == 303
            assert answer.headers["location"] == landed
            cookie = next(c for c in answer.headers.get_list("set-cookie")
                          if c.startswith("lwm2m_console="))
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie


async def test_pages_send_a_strict_content_security_policy(console: Console) -> None:
    async with console.signed_in("read") as http:
        for path in ("/console/devices", "/console/deployments", "/console/artifacts"):
            answer = await http.get(path)
            assert answer.status_code == 200
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            assert "unsafe-inline" not in answer.headers["content-security-policy"]
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["cache-control"] == "no-store"
        static = await http.get("/console/static/console.js")
        assert static.status_code == 200 and "EventSource" in static.text


async def test_read_button_fills_the_list_with_firmware_and_active_model(console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        status, html = await press(http, page, f"{page}/read", path="/3/0")
        assert status == 303
        assert flash(html) == "ok: Read /3/0: 3 values"
        status, html = await press(http, page, f"{page}/read", path="/33100/0")
        assert flash(html).startswith("ok: Read /33100/0:")
        listing = (await http.get("/console/devices")).text
    row = re.search(rf'<tr data-endpoint="{device.endpoint}">(.*?)</tr>', listing, re.S)
    assert row, listing
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1)))
    assert "online" in cells and "fw-1.4.2" in cells
    assert "kws-tiny 2.0.1 slot B" in cells  # active slot 1 = B
    assert [r["method"] for r in device.received].count("GET") == 2


async def test_device_list_filters_by_text_and_by_tag(console: Console, device: Any) -> None:
    rollout.set_tags(console.server.engine, device.endpoint, ["lab-filter"])
    async with console.signed_in("read") as http:
        by_tag = (await http.get("/console/devices", params={"tag": "lab-filter"})).text
        by_text = (await http.get("/console/devices", params={"q": device.endpoint.upper()})).text
        nothing = (await http.get("/console/devices", params={"q": "no-such-device"})).text
    assert re.findall(r'<tr data-endpoint="([^"]+)"', by_tag) == [device.endpoint]
    assert re.findall(r'<tr data-endpoint="([^"]+)"', by_text) == [device.endpoint]
    assert "No device matches this filter." in nothing


async def test_device_list_of_a_large_fleet_shows_the_first_rows_and_says_so(
        console: Console, device: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwm2m_server.console import device_pages

    from tests.support.lwm2m_client import LwM2MTestClient

    monkeypatch.setattr(device_pages, "MAX_DEVICE_ROWS", 1)
    second = LwM2MTestClient(device.endpoint + "-2", {"/3/0/9": 1})
    await second.start()
    try:
        await second.register(console.coap_port)
        total = len(console.server.registrations.list())
        async with console.signed_in("read") as http:
            html = (await http.get("/console/devices")).text
    finally:
        await second.stop()
    assert total >= 2
    assert len(re.findall(r'<tr data-endpoint=', html)) == 1
    assert f"Showing the first 1 of {total} matching devices" in html


async def test_device_page_shows_registration_objects_values_model_and_events(
        console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        await press(http, page, f"{page}/read", path="/33100/0")
        html = (await http.get(page)).text
    assert device.endpoint in html and "Registration id" in html
    assert "TinyML Model" in html and "<code>/3/0</code>" in html
    assert 'data-path="/33100/0/4">1200<' in html          # inference count in the model panel
    assert 'class="slot slot-active" data-slot="B"' in html
    assert "830</span> µs" in html
    assert "registered" in html                              # recent events


async def test_device_page_shows_the_security_mode_and_whether_credentials_are_provisioned(
        console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        html = (await http.get(page)).text
        assert re.search(r'id="security"><span class="badge badge-off">plain CoAP</span>', html), html
        assert "no credentials" in html
        console.server.credentials.put(device.endpoint, f"{device.endpoint}-id", bytes(range(16)))
        html = (await http.get(page)).text
        assert "credentials provisioned" in html
        console.server.credentials.delete(device.endpoint)


async def test_post_without_csrf_token_is_refused_and_nothing_is_sent(console: Console, device: Any) -> None:
    async with console.signed_in("ops") as http:
        answer = await http.post(f"/console/devices/{device.endpoint}/read", data={"path": "/3/0"})
        assert answer.status_code == 403
        assert "CSRF token is missing or wrong" in answer.text
        wrong = await http.post(f"/console/devices/{device.endpoint}/observe",
                                data={"path": "/3/0/9", "csrf_token": "0" * 64})
        assert wrong.status_code == 403
    await asyncio.sleep(0.1)
    assert not device.received


async def test_csrf_token_of_another_session_is_refused(console: Console, device: Any) -> None:
    async with console.signed_in("read") as other:
        foreign = csrf_token((await other.get("/console/devices")).text)
    async with console.signed_in("ops") as http:
        answer = await http.post(f"/console/devices/{device.endpoint}/read",
                                 data={"path": "/3/0", "csrf_token": foreign})
    assert answer.status_code == 403
    assert not device.received


async def test_post_from_another_origin_is_refused(console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        token = csrf_token((await http.get(page)).text)
        answer = await http.post(f"{page}/read", data={"path": "/3/0", "csrf_token": token},
                                 headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert not device.received


async def test_read_only_token_sees_disabled_buttons_and_cannot_press_them(
        console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("read") as http:
        html = (await http.get(page)).text
        assert 'disabled title="needs the write scope"' in html
        status, body = await press(http, page, f"{page}/read", path="/3/0")
    assert status == 403
    assert "lacks the &#39;write&#39; scope" in body
    assert not device.received


async def test_bad_path_and_offline_device_come_back_as_error_messages(console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        status, html = await press(http, page, f"{page}/read", path="/3/zero")
        assert status == 303 and flash(html).startswith("error: 400: ")
        status, html = await press(http, page, f"{page}/observe", path="")
        assert flash(html).startswith("error: 400: ")
        status, body = await press(http, page, f"{page}/reboot", path="/3/0/4")
        assert status == 404 and "unknown device operation" in body
        await device.deregister()
        status, html = await press(http, page, f"{page}/read", path="/3/0")
    assert flash(html).startswith("error: 404: no device registered")


async def test_read_of_a_sleeping_queue_mode_device_says_the_request_waits(console: Console) -> None:
    from tests.support.lwm2m_client import LwM2MTestClient

    sleepy = LwM2MTestClient("dev-sleepy", {"/3/0/9": 50}, queue=True)
    await sleepy.start()
    await sleepy.register(console.coap_port)
    page = f"/console/devices/{sleepy.endpoint}"
    try:
        await sleepy.sleep()
        await asyncio.sleep(1.2)  # past the awake window
        async with console.signed_in("ops") as http:
            assert "queue mode" in (await http.get(page)).text
            status, html = await press(http, page, f"{page}/read", path="/3/0/9")
            message = flash(html)
            assert message.startswith("info: the device sleeps (queue mode): request ")
            request_id = message.split("request ")[1].split()[0]
            await sleepy.wake()  # the queued Read goes out after its Update
            async with asyncio.timeout(5):
                while console.server.devices.get_request(request_id).state != "done":
                    await asyncio.sleep(0.05)
            assert 'data-path="/3/0/9">50<' in (await http.get(page)).text
    finally:
        await sleepy.stop()


async def test_unknown_console_page_is_a_404_page_and_static_files_still_load(console: Console) -> None:
    async with console.signed_in("read") as http:
        answer = await http.get("/console/nothing/here")
        assert answer.status_code == 404
        assert "there is no console page /console/nothing/here" in answer.text
        assert (await http.get("/console/static/console.css")).status_code == 200
        assert (await http.get("/console/static/missing.css")).status_code == 404


async def test_login_page_sends_a_signed_in_operator_on(console: Console) -> None:
    async with console.signed_in("read") as http:
        answer = await http.get("/console/login", params={"next": "/console/artifacts"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/artifacts"


async def test_unknown_device_is_a_404_page(console: Console) -> None:
    async with console.signed_in("read") as http:
        answer = await http.get("/console/devices/nobody-here")
    assert answer.status_code == 404
    assert "text/html" in answer.headers["content-type"]
    assert "nobody-here" in answer.text


async def test_device_values_are_html_escaped(console: Console, device: Any) -> None:
    device.set("/3/0/0", "<script>alert('x')</script>")
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        await press(http, page, f"{page}/read", path="/3/0")
        html = (await http.get(page)).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


async def test_event_stream_carries_the_device_notifications_until_the_observation_is_cancelled(console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        status, html = await press(http, page, f"{page}/observe", path="/3/0/9")
        assert flash(html).startswith("ok: Observing /3/0/9")
        async with http.stream("GET", "/console/events", params={"endpoint": device.endpoint}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == ": connected"
            device.set("/3/0/9", 55)
            async with asyncio.timeout(5):
                async for line in lines:
                    if line.startswith("data:") and '"notification"' in line:
                        event = json.loads(line[5:])
                        break
    assert event["endpoint"] == device.endpoint
    assert event["data"]["values"] == {"/3/0/9": 55}
    async with console.signed_in("ops") as http:
        assert 'aria-label="stop observing /3/0/9"' in (await http.get(page)).text
        status, html = await press(http, page, f"{page}/cancel-observe", path="/3/0/9")
        assert flash(html) == "ok: Stopped observing /3/0/9"
        assert 'id="observed"' not in html
    assert console.server.devices.observations(device.endpoint) == []


def _deployment(console: Console, endpoints: list[str], version: str) -> int:
    engine = console.server.engine
    art = add_artifact(engine, kind="firmware", name="app", version=version,
                       sha256=hashlib.sha256(version.encode()).hexdigest(), size=4096)
    dep = rollout.create_deployment(engine, rollout.DeploymentSpec(
        # Nobody answers for these endpoints: their targets wait for retries, the deployment runs.
        artifact_id=int(art.id), endpoints=endpoints, retries=20, failure_threshold=1.0),  # type: ignore[arg-type]
        events=console.server.events)
    assert dep.id is not None
    return dep.id


async def test_deleting_an_artifact_a_deployment_needs_says_which_and_keeps_it(
        console: Console) -> None:
    dep = _deployment(console, ["ghost-del"], "9.0.7")
    art = rollout.get_deployment(console.server.engine, dep).artifact_id
    async with console.signed_in("read") as http:
        html = (await http.get("/console/artifacts")).text
        assert f"/artifacts/{art}/delete" not in html  # no Delete button without deploy
    async with console.signed_in("ops") as http:
        status, html = await press(http, "/console/artifacts", f"/console/artifacts/{art}/delete")
        assert status == 303
        assert flash(html) == (f"error: 409: artifact {art} is used by deployment(s) {dep} "
                               "(running, paused, or with devices still updating): cancel them "
                               "or wait until they end")
        assert f'tr data-artifact="{art}"' in html
        rollout.cancel_deployment(console.server.engine, dep)
        status, html = await press(http, "/console/artifacts", f"/console/artifacts/{art}/delete")
        assert flash(html) == f"ok: deleted firmware artifact #{art} app 9.0.7"
        assert f'tr data-artifact="{art}"' not in html


async def test_deployment_pages_show_targets_and_the_buttons_pause_resume_and_cancel(
        console: Console) -> None:
    dep = _deployment(console, ["ghost-a", "ghost-b"], "9.0.1")
    page = f"/console/deployments/{dep}"
    async with console.signed_in("ops") as http:
        listing = (await http.get("/console/deployments")).text
        assert f'href="/console/deployments/{dep}">#{dep}<' in listing
        html = (await http.get(page)).text
        assert 'data-target="ghost-a"' in html and 'data-target="ghost-b"' in html
        assert 'role="progressbar"' in html
        status, html = await press(http, page, f"{page}/pause")
        assert flash(html) == f"ok: deployment {dep} is paused"
        assert rollout.deployment_view(console.server.engine, dep)["state"] == "paused"
        status, html = await press(http, page, f"{page}/resume")
        assert flash(html) == f"ok: deployment {dep} is running"
        status, html = await press(http, page, f"{page}/cancel")
        assert flash(html) == f"ok: deployment {dep} is cancelled"
        status, html = await press(http, page, f"{page}/resume")
        assert flash(html).startswith(f"error: 409: deployment {dep} is cancelled")
        status, body = await press(http, page, f"{page}/explode")
        assert status == 404 and "unknown deployment action" in body
        assert (await http.get("/console/deployments/99999")).status_code == 404


async def test_deployment_buttons_need_the_deploy_scope(console: Console) -> None:
    dep = _deployment(console, ["ghost-c"], "9.0.2")
    page = f"/console/deployments/{dep}"
    async with console.signed_in("write") as http:
        html = (await http.get(page)).text
        assert 'disabled title="needs the deploy scope"' in html
        status, body = await press(http, page, f"{page}/cancel")
    assert status == 403 and "lacks the &#39;deploy&#39; scope" in body
    assert rollout.deployment_view(console.server.engine, dep)["state"] == "running"


async def test_artifacts_page_lists_kind_name_version_hash_and_size(console: Console) -> None:
    sha = hashlib.sha256(b"model-bytes").hexdigest()
    add_artifact(console.server.engine, kind="model", name="kws-model", version="3.1.4", sha256=sha,
                 size=3 * 1024 * 1024)
    async with console.signed_in("read") as http:
        html = (await http.get("/console/artifacts", params={"kind": "model"})).text
    assert "kws-model" in html and "3.1.4" in html
    assert f'title="{sha}"' in html and "3.0 MiB" in html


async def test_revoked_token_logs_the_console_out(console: Console) -> None:
    row, token = create_token(console.server.engine, "short-lived", ["read"])
    async with console.client() as http:
        nonce = login_nonce((await http.get("/console/login")).text)
        await http.post("/console/login", data={"token": token, "login_nonce": nonce})
        assert (await http.get("/console/devices")).status_code == 200
        revoke_token(console.server.engine, int(row.id))  # type: ignore[arg-type]
        answer = await http.get("/console/devices")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(console: Console) -> None:
    async with console.signed_in("read") as http:
        assert (await http.post("/console/logout")).status_code == 403
        status, html = await press(http, "/console/devices", "/console/logout")
        assert status == 303 and 'name="token"' in html
        assert (await http.get("/console/devices")).status_code == 303


async def test_values_json_gives_every_value_its_time_and_source(console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        status, _ = await press(http, page, f"{page}/read", path="/3/0")
        assert status == 303
        answer = await http.get(f"{page}/values.json")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    battery = answer.json()["values"]["/3/0/9"]
    assert (battery["value"], battery["source"], battery["name"]) == ("80", "read", "Battery Level")
    assert battery["time"].endswith("+00:00")


async def test_write_and_execute_refuse_what_the_object_model_does_not_allow(
        console: Console, device: Any) -> None:
    page = f"/console/devices/{device.endpoint}"
    async with console.signed_in("ops") as http:
        _, html = await press(http, page, f"{page}/write", path="/3/0/9", value="50")
        assert flash(html).startswith("error: 400:") and "/3/0/9" in flash(html)
        _, html = await press(http, page, f"{page}/write", path="/1/0/1", value="soon")
        assert flash(html) == "error: 400: /1/0/1: &#39;soon&#39; is not a valid integer value"
        _, html = await press(http, page, f"{page}/execute", path="/3/0/9")
        assert "is not executable" in flash(html)
        _, html = await press(http, page, f"{page}/run-inference", vector="1, , x")
        assert flash(html) == ("error: 400: the input vector holds something that is not a "
                               "number: &#39;1, , x&#39;")
    assert not device.received


async def test_new_deployment_form_counts_targets_and_says_what_is_wrong(console: Console,
                                                                          device: Any) -> None:
    engine = console.server.engine
    art = add_artifact(engine, kind="firmware", name="app", version="9.9.9",
                       sha256=hashlib.sha256(b"form-deployment").hexdigest(), size=1000)
    rollout.set_tags(engine, device.endpoint, ["form-tag"])
    async with console.signed_in("ops") as http:
        count = (await http.get("/console/deployments/targets", params={"tag": "form-tag"})).json()
        assert count == {"count": 1, "registered": 1, "online": 1, "unknown": []}
        listed = (await http.get("/console/deployments/targets",
                                 params={"endpoints": f"{device.endpoint}\nghost"})).json()
        assert listed == {"count": 2, "registered": 1, "online": 1, "unknown": ["ghost"]}
        html = (await http.get("/console/deployments/new", params={"artifact": art.id})).text
        assert f'<option value="{art.id}" selected>' in html
        fields = {"csrf_token": csrf_token(html), "artifact_id": str(art.id), "target_mode": "tag",
                  "tag": "form-tag", "stages": "50, 20", "max_concurrent": "2",
                  "failure_threshold": "20", "timeout": "60", "retries": "1", "delivery": "auto"}
        before = len(rollout.list_deployments(engine))
        answer = await http.post("/console/deployments/new", data=fields)
        assert answer.status_code == 422
        assert "stages must increase" in answer.text
        assert 'value="50, 20"' in answer.text  # the operator's entries stay
        answer = await http.post("/console/deployments/new", data={**fields, "timeout": "soon"})
        assert answer.status_code == 400 and "timeout: &#39;soon&#39; is not a number" in answer.text
        assert len(rollout.list_deployments(engine)) == before
        answer = await http.post("/console/deployments/new", data={**fields, "stages": "100"})
        assert answer.status_code == 303
        dep_id = int(answer.headers["location"].rsplit("/", 1)[1])
        page = (await http.get(answer.headers["location"])).text
        assert f"deployment {dep_id} created: running" in page
        assert rollout.deployment_view(engine, dep_id)["tag"] == "form-tag"
        # A cancelled deployment takes no retry (the engine may have tried the target already).
        rollout.cancel_deployment(engine, dep_id)
        _, html = await press(http, f"/console/deployments/{dep_id}",
                              f"/console/deployments/{dep_id}/retry")
        assert flash(html).startswith(f"error: 409: deployment {dep_id} is cancelled")


async def test_artifact_upload_is_inspected_then_kept_only_on_confirm(console: Console) -> None:
    from ota.mcuboot import sign_image

    engine = console.server.engine
    image = sign_image(bytes(range(256)) * 8, None, version="4.5.6")
    async with console.signed_in("ops") as http:
        html = (await http.get("/console/artifacts")).text
        token = csrf_token(html)
        files = {"file": ("fw.bin", image, "application/octet-stream")}
        fields = {"csrf_token": token, "kind": "firmware", "name": "inspect-me", "version": "4.5.6"}
        verdict = (await http.post("/console/artifacts/inspect", data=fields, files=files)).json()
        assert verdict["ok"] and verdict["sha256"] == hashlib.sha256(image).hexdigest()
        assert ["Format", "mcuboot"] in verdict["checks"]
        assert not [a for a in rollout_artifacts(engine) if a.name == "inspect-me"]
        missing = (await http.post("/console/artifacts/inspect",
                                   data={**fields, "name": ""}, files=files)).json()
        assert missing == {"ok": False, "status": 400,
                           "error": "multipart fields file, kind, name and version are required "
                                    "(missing: name)"}
        answer = await http.post("/console/artifacts/confirm",
                                 data={"csrf_token": token, "token": verdict["token"]})
        assert answer.status_code == 303
        page = (await http.get(answer.headers["location"])).text
        assert "stored firmware artifact #" in page and "inspect-me 4.5.6" in page
        assert [a.version for a in rollout_artifacts(engine) if a.name == "inspect-me"] == ["4.5.6"]
        again = await http.post("/console/artifacts/confirm",
                                data={"csrf_token": token, "token": verdict["token"]})
        assert again.status_code == 404 and "no longer waiting" in again.text


def rollout_artifacts(engine: Any) -> list[Any]:
    from lwm2m_server.store.artifacts import list_artifacts

    return list_artifacts(engine)
