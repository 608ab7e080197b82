"""Object 5 firmware updates end to end: real server over UDP/HTTP, simulated devices."""

from __future__ import annotations

import hashlib

from .conftest import Env, eventually, firmware_image


async def test_pull_over_coap_updates_device_and_it_comes_back_with_the_new_version(env: Env) -> None:
    dev = await env.device("fw-coap", firmware_version="1.1.9")
    art = env.add_artifact(firmware_image("1.1.10"), "firmware", "1.1.10")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-coap"])
    view = await env.wait_done(dep)
    (t,) = view["targets"]
    assert t["state"] == "succeeded" and t["result"] == 1 and t["method"] == "pull-coap", t
    assert dev.firmware_version == "1.1.10"
    assert t["applied"] == 1


async def test_http_only_device_pulls_over_http(env: Env) -> None:
    dev = await env.device("fw-http")
    dev.objects[5].data[0][8] = {0: 2}  # Protocol Support: HTTP 1.1 only
    image = firmware_image("2.0.0")
    art = env.add_artifact(image, "firmware", "2.0.0")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-http"])
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "pull-http" and t["result"] == 1, t
    assert dev.firmware_version == "2.0.0"
    # The HTTP /fw route served every byte (the tracker keys HTTP downloads by host).
    sha = hashlib.sha256(image).hexdigest()
    assert env.runner.rollout.tracker.fraction(sha, ("127.0.0.1", dev.port)) == 1.0


async def test_push_only_device_gets_the_package_written_with_block1(env: Env) -> None:
    dev = await env.device("fw-push")
    dev.objects[5].data[0][9] = 1  # Delivery Method: push only
    art = env.add_artifact(firmware_image("2.0.1"), "firmware", "2.0.1")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-push"])
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "push", t
    assert dev.firmware_version == "2.0.1"


async def test_corrupted_download_fails_with_integrity_result_and_is_not_retried(env: Env) -> None:
    from lwm2m_server.sim.transfer import Faults

    dev = await env.device("fw-bad", faults=Faults(corrupt_download=True))
    art = env.add_artifact(firmware_image("2.0.2"), "firmware", "2.0.2")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-bad"], retries=2, failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and t["result"] == 5 and t["attempt"] == 0, t
    assert "integrity check failure" in t["reason"]
    assert dev.firmware_version == "1.0.0"


async def test_out_of_storage_fails_with_not_enough_flash(env: Env) -> None:
    await env.device("fw-small", flash_bytes=4096)
    art = env.add_artifact(firmware_image("2.0.3"), "firmware", "2.0.3")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-small"], failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and t["result"] == 2 and "not enough flash" in t["reason"], t


async def test_unknown_device_fails_as_offline_after_retries(env: Env) -> None:
    art = env.add_artifact(firmware_image("2.0.4"), "firmware", "2.0.4")
    dep = await env.deploy(artifact_id=art, endpoints=["nobody-here"], retries=1,
                           failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and t["attempt"] == 1 and "offline" in t["reason"], t


async def test_device_that_never_finishes_updating_hits_the_timeout(env: Env) -> None:
    await env.device("fw-slow", update_seconds=30)
    art = env.add_artifact(firmware_image("2.0.5"), "firmware", "2.0.5")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-slow"], retries=0, timeout=2,
                           failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and "timeout" in t["reason"] and "updating" in t["reason"], t


async def test_device_that_dies_mid_download_is_retried_after_it_comes_back(env: Env) -> None:
    from lwm2m_server.sim.transfer import Faults

    dev = await env.device("fw-drop", faults=Faults(die_mid_download=True))
    art = env.add_artifact(firmware_image("2.0.6", size=8000), "firmware", "2.0.6")
    dep = await env.deploy(artifact_id=art, endpoints=["fw-drop"], retries=3, timeout=20)
    await eventually(lambda: not dev.alive)
    # Power comes back: same flash (state folder), registers again.
    dev2 = await env.device("fw-drop")
    (t,) = (await env.wait_done(dep, timeout=40))["targets"]
    assert t["state"] == "succeeded" and t["attempt"] >= 1, t["reason"]
    assert dev2.firmware_version == "2.0.6"


async def test_failure_threshold_pauses_the_deployment_and_resume_continues(env: Env) -> None:
    from lwm2m_server.sim.transfer import Faults

    for i in range(4):
        await env.device(f"th-{i}", faults=Faults(corrupt_download=(i == 0)))
    art = env.add_artifact(firmware_image("2.1.0"), "firmware", "2.1.0")
    dep = await env.deploy(artifact_id=art, endpoints=[f"th-{i}" for i in range(4)],
                           max_concurrent=1, failure_threshold=0.25, stages=[25, 100])
    view = await env.wait_done(dep, ("paused",))
    assert "failure threshold" in view["reason"]
    assert [t["state"] for t in view["targets"]] == ["failed", "pending", "pending", "pending"]
    r = await env.http.post(f"/api/v1/deployments/{dep}/resume")
    assert r.status_code == 200 and r.json()["state"] == "running"
    view = await env.wait_done(dep)
    assert [t["state"] for t in view["targets"]] == ["failed"] + ["succeeded"] * 3
