"""Rollouts an operator can trust, end to end (real server over UDP and HTTP, simulated
devices, SQLite and PostgreSQL): the firmware race, observations that end with their targets,
CLI actions with the same events as REST, final states, retry, and artifact refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.cli import main
from lwm2m_server.rollout.webhooks import verify_signature
from tests.support.postgres import temporary_database

from .conftest import FAST, Env, eventually, firmware_image, start_env, stop_env
from .flip_device import FlipDevice
from .test_rest_e2e import Receiver


async def _race(env: Env, method: str) -> None:
    """Three devices that finish right after a version read, updated by ``method``
    (pull-coap, pull-http: the device supports HTTP only, or push)."""
    eps = [f"flip-{method}-{i}" for i in range(3)]
    devs = [await env.device(ep, device_class=FlipDevice, firmware_version="1.0.0",
                             update_seconds=0) for ep in eps]
    if method == "pull-http":
        for d in devs:
            d.objects[5].data[0][8] = {0: 2}  # Protocol Support: HTTP 1.1 only
    delivery = "push" if method == "push" else "pull"
    # An operator's own observation of the state: the rollout must leave it alone.
    r = await env.http.post(f"/api/v1/devices/{eps[0]}/observe/5/0/3")
    assert r.status_code == 200, r.text
    art = env.add_artifact(firmware_image("3.0.0", size=4000), "firmware", "3.0.0")
    dep = await env.deploy(artifact_id=art, endpoints=eps, delivery=delivery, retries=0,
                           failure_threshold=1, timeout=30)
    view = await env.wait_done(dep, timeout=60)
    assert view["state"] == "completed", view
    assert [t["state"] for t in view["targets"]] == ["succeeded"] * 3, view["targets"]
    assert all(t["method"] == method for t in view["targets"]), view["targets"]
    for d in devs:
        assert d.firmware_version == "3.0.0"
        assert d.version_reads_while_updating >= 1  # the race really happened
    # The rollout's observations ended with their targets; the operator's is still there.
    devices = env.server.devices

    def left() -> dict[str, list[tuple[str, str]]]:
        return {ep: [(str(o.paths[0]), o.origin) for o in devices.stored_observations(ep)]
                for ep in eps}
    try:
        await eventually(lambda: left() == {eps[0]: [("/5/0/3", "api")], eps[1]: [], eps[2]: []})
    except AssertionError:
        raise AssertionError(f"observations left: {left()}") from None


@pytest.mark.parametrize("method", ["pull-coap", "pull-http", "push"])
async def test_firmware_race_device_ends_succeeded_on_sqlite(env: Env, method: str) -> None:
    await _race(env, method)


@pytest.mark.postgres
@pytest.mark.parametrize("method", ["pull-coap", "pull-http", "push"])
async def test_firmware_race_device_ends_succeeded_on_postgresql(
        tmp_path: Path, signing_key: Any, example_model_wasm: bytes, method: str) -> None:
    with temporary_database("ota_race_") as url:
        env = await start_env(tmp_path, url, signing_key, example_model_wasm, **FAST)
        try:
            await _race(env, method)
        finally:
            await stop_env(env)


async def test_sota_rollout_leaves_no_observation_behind(
        env: Env, retrained_model_wasm: bytes) -> None:
    await env.device("sota-obs")
    art = env.add_artifact(env.sota(retrained_model_wasm, "1.1.0"), "sota", "1.1.0")
    dep = await env.deploy(artifact_id=art, endpoints=["sota-obs"])
    view = await env.wait_done(dep)
    assert view["targets"][0]["state"] == "succeeded", view
    await eventually(lambda: env.server.devices.stored_observations("sota-obs") == [])
    assert env.server.devices.observations("sota-obs") == []


def _hook_events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    out = []
    for headers, body in receiver.posts:
        assert verify_signature(secret, body, headers.get("x-lwm2m-signature"))
        out.append(json.loads(body))
    return out


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_cli_pause_resume_cancel_retry_reach_webhooks_like_rest(env: Env, capsys) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(fail_first=0)
    url = await receiver.start()
    db = str(env.server.engine.url.render_as_string(hide_password=False))
    try:
        r = await env.http.post("/api/v1/webhooks", json={"url": url})
        secret = r.json()["secret"]
        art = env.add_artifact(firmware_image("2.0.0"), "firmware", "2.0.0")
        # Nobody answers as these endpoints: their targets wait in backoff, pending.
        rest_dep = await env.deploy(artifact_id=art, endpoints=["ghost-a"], retries=20, timeout=30)
        cli_dep = await env.deploy(artifact_id=art, endpoints=["ghost-b"], retries=20, timeout=30)
        assert (await env.http.post(f"/api/v1/deployments/{rest_dep}/pause")).status_code == 200
        assert await _cli("deploy", "pause", str(cli_dep), "--db", db) == 0
        assert (await env.http.post(f"/api/v1/deployments/{rest_dep}/resume")).status_code == 200
        assert await _cli("deploy", "resume", str(cli_dep), "--db", db) == 0
        assert (await env.http.post(f"/api/v1/deployments/{rest_dep}/cancel")).status_code == 200
        assert await _cli("deploy", "cancel", str(cli_dep), "--db", db) == 0

        def seen(dep: int) -> list[tuple[str, str, str]]:
            return [(e["kind"], e["data"]["state"], ",".join(sorted(e["data"])))
                    for e in _hook_events(receiver, secret)
                    if e["data"].get("deployment_id") == dep
                    and (e["kind"] == "deployment" or e["data"]["state"] == "cancelled")]
        want = [("deployment", "paused"), ("deployment", "running"), ("deployment", "cancelled"),
                ("deployment_target", "cancelled")]
        await eventually(lambda: [s[:2] for s in seen(cli_dep)][-4:] == want
                         and [s[:2] for s in seen(rest_dep)][-4:] == want, timeout=15)
        # The same events with the same fields, whichever way the operator acted.
        assert seen(cli_dep)[-4:] == seen(rest_dep)[-4:]
    finally:
        await receiver.stop()
    capsys.readouterr()


async def test_failed_targets_end_completed_with_failures_and_retry_through_rest_and_cli(
        env: Env, capsys) -> None:  # type: ignore[no-untyped-def]
    from lwm2m_server.sim.transfer import Faults

    receiver = Receiver(fail_first=0)
    url = await receiver.start()
    db = str(env.server.engine.url.render_as_string(hide_password=False))
    try:
        r = await env.http.post("/api/v1/webhooks", json={"url": url, "kinds": ["deployment"]})
        secret = r.json()["secret"]
        await env.device("cwf-ok")
        await env.device("cwf-bad", faults=Faults(corrupt_download=True))
        art = env.add_artifact(firmware_image("2.2.0"), "firmware", "2.2.0")
        dep = await env.deploy(artifact_id=art, endpoints=["cwf-ok", "cwf-bad"],
                               failure_threshold=1)
        view = await env.wait_done(dep)
        assert view["state"] == "completed_with_failures", view
        listed = (await env.http.get("/api/v1/deployments?state=completed_with_failures")).json()
        assert [d["id"] for d in listed] == [dep]
        assert (await env.http.get("/api/v1/deployments?state=completed")).json() == []
        await eventually(lambda: "completed_with_failures" in
                         [e["data"]["state"] for e in _hook_events(receiver, secret)])
        # Retry through REST: the failed target runs again (the device's fault was one-shot).
        r = await env.http.post(f"/api/v1/deployments/{dep}/retry")
        assert r.status_code == 200 and r.json()["state"] == "running", r.text
        assert r.json()["counts"]["failed"] == 0
        t = {x["endpoint"]: x for x in (await env.view(dep))["targets"]}
        assert t["cwf-ok"]["state"] == "succeeded" and t["cwf-bad"]["attempt"] == 0
        view = await env.wait_done(dep, ("completed",))
        assert [x["state"] for x in view["targets"]] == ["succeeded", "succeeded"]
        assert env.devices["cwf-bad"].firmware_version == "2.2.0"
        r = await env.http.post(f"/api/v1/deployments/{dep}/retry")
        assert r.status_code == 409 and "is completed" in r.json()["detail"]
        # The CLI verb goes through the same service function.
        d2 = await env.deploy(artifact_id=art, endpoints=["cwf-gone"], retries=0,
                              failure_threshold=1)
        assert (await env.wait_done(d2))["state"] == "completed_with_failures"
        capsys.readouterr()
        assert await _cli("deploy", "retry", str(d2), "--db", db, "--json") == 0
        assert json.loads(capsys.readouterr().out)["state"] == "running"
        await eventually(lambda: any(e["data"].get("deployment_id") == d2
                                     and e["data"]["state"] == "running"
                                     for e in _hook_events(receiver, secret)))
        assert (await env.wait_done(d2))["targets"][0]["attempt"] == 0
    finally:
        await receiver.stop()


async def test_artifact_uploads_never_ignore_a_field_and_refuse_sota_as_firmware(
        env: Env, retrained_model_wasm: bytes) -> None:
    image = firmware_image("4.0.0", size=3000)

    async def upload(data: bytes, kind: str, version: str, name: str = "fw") -> Any:
        return await env.http.post("/api/v1/artifacts", files={"file": ("f.bin", data)},
                                   data={"kind": kind, "name": name, "version": version})
    first = await upload(image, "firmware", "4.0.0")
    assert first.status_code == 201
    again = await upload(image, "firmware", "4.0.0")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = await upload(image, "firmware", "4.0.1")
    assert other.status_code == 409, other.text
    body = other.json()
    assert body["artifact"]["id"] == first.json()["id"] and body["artifact"]["version"] == "4.0.0"
    assert "version '4.0.1'" in body["detail"]
    renamed = await upload(image, "firmware", "4.0.0", name="other")
    assert renamed.status_code == 409 and "name 'other'" in renamed.json()["detail"]
    pkg = env.sota(retrained_model_wasm, "1.2.0")
    tampered = pkg[:-1] + bytes([pkg[-1] ^ 1])
    for data in (pkg, tampered):
        r = await upload(data, "firmware", "1.2.0")
        assert r.status_code == 422 and "SOTA package" in r.json()["detail"], r.text
    assert [a["version"] for a in (await env.http.get("/api/v1/artifacts")).json()] == ["4.0.0"]


async def test_deploy_create_wait_exits_0_only_when_every_target_succeeded(env: Env, capsys) -> None:  # type: ignore[no-untyped-def]
    db = str(env.server.engine.url.render_as_string(hide_password=False))
    await env.device("wait-ok", firmware_version="1.0.0")
    art = env.add_artifact(firmware_image("2.3.0"), "firmware", "2.3.0")
    capsys.readouterr()
    code = await _cli("deploy", "create", "--artifact", str(art), "--endpoints", "wait-ok",
                      "--wait", "--poll", "0.1", "--json", "--db", db)
    view = json.loads(capsys.readouterr().out)
    assert code == 0 and view["state"] == "completed", view
    code = await _cli("deploy", "create", "--artifact", str(art), "--endpoints",
                      "wait-ok,wait-nobody", "--retries", "0", "--failure-threshold", "1",
                      "--wait", "--poll", "0.1", "--db", db)
    out = capsys.readouterr().out
    assert code == 3 and "completed_with_failures" in out and "wait-nobody" in out, out


async def test_rest_create_takes_verify_and_allow_downgrade(env: Env, retrained_model_wasm: bytes) -> None:
    fw = env.add_artifact(firmware_image("2.4.0"), "firmware", "2.4.0")
    sota = env.add_artifact(env.sota(retrained_model_wasm, "1.3.0"), "sota", "1.3.0")
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": fw, "endpoints": ["x"],
                                                         "verify": "hash"})
    assert r.status_code == 400 and "verify" in r.text
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": sota,
                                                         "endpoints": ["x"], "verify": "result"})
    assert r.status_code == 422 and "firmware only" in r.json()["detail"]
    dep = await env.deploy(artifact_id=fw, endpoints=["x"], verify="result", allow_downgrade=True)
    view = await env.view(dep)
    assert view["verify"] == "result" and view["allow_downgrade"] is True
