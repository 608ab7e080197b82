"""SOTA model updates through Object 9 end to end: install, activate, model object reports the
new version and SHA-256; failures keep the old model and carry the device's Update Result."""

from __future__ import annotations

import hashlib

from ota.keys import generate_private_key
from ota.sota import build_package

from .conftest import SLOT, Env


def active(dev) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    m = dev.objects[33100].data[0]
    slot = m[0]
    return m[2][slot], m[3][slot]


async def test_sota_install_and_activate_switches_the_running_model(
        env: Env, retrained_model_wasm: bytes) -> None:
    dev = await env.device("m-1")
    dev.set_inference_period(0.02)
    art = env.add_artifact(env.sota(retrained_model_wasm, "1.1.0"), "sota", "1.1.0")
    dep = await env.deploy(artifact_id=art, endpoints=["m-1"])
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "succeeded" and t["applied"] == 1, t
    assert active(dev) == ("1.1.0", hashlib.sha256(retrained_model_wasm).hexdigest())
    times = dev.inference_times
    assert len(times) > 10 and max(b - a for a, b in zip(times, times[1:])) < 1.0


async def test_sota_push_with_block1_when_the_deployment_asks_for_push(
        env: Env, retrained_model_wasm: bytes) -> None:
    dev = await env.device("m-push")
    art = env.add_artifact(env.sota(retrained_model_wasm, "1.2.0"), "sota", "1.2.0")
    dep = await env.deploy(artifact_id=art, endpoints=["m-push"], delivery="push")
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "push", t
    assert active(dev)[0] == "1.2.0"


async def test_device_that_does_not_trust_the_signer_refuses_with_result_53(
        env: Env, retrained_model_wasm: bytes, example_model_wasm: bytes) -> None:
    from ota.keys import public_key_of

    dev = await env.device("m-key", trusted_key=public_key_of(generate_private_key("ed25519")))
    art = env.add_artifact(env.sota(retrained_model_wasm, "1.3.0"), "sota", "1.3.0")
    dep = await env.deploy(artifact_id=art, endpoints=["m-key"], failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and t["result"] == 53 and "integrity" in t["reason"], t
    assert active(dev) == ("1.0.0", hashlib.sha256(example_model_wasm).hexdigest())


async def test_package_larger_than_the_device_slot_fails_with_not_enough_storage(
        env: Env, retrained_model_wasm: bytes) -> None:
    dev = await env.device("m-small", slot_bytes=1024)
    art = env.add_artifact(env.sota(retrained_model_wasm, "1.4.0"), "sota", "1.4.0")
    dep = await env.deploy(artifact_id=art, endpoints=["m-small"], failure_threshold=1)
    (t,) = (await env.wait_done(dep))["targets"]
    assert t["state"] == "failed" and t["result"] == 50 and "storage" in t["reason"], t
    assert active(dev)[0] == "1.0.0"


async def test_upload_signed_with_the_wrong_key_is_refused_and_nothing_is_kept(
        env: Env, retrained_model_wasm: bytes, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ota.keys import public_key_pem

    pem = tmp_path / "sota.pub.pem"
    pem.write_bytes(public_key_pem(env.key))
    monkeypatch.setenv("LWM2M_SOTA_PUBLIC_KEY", str(pem))
    other = generate_private_key("ed25519")
    bad = build_package(retrained_model_wasm, name="classifier", version="1.5.0",
                        private_key=other, slot_size=SLOT)
    files = {"file": ("m.sota", bad, "application/octet-stream")}
    data = {"kind": "sota", "name": "classifier", "version": "1.5.0"}
    r = await env.http.post("/api/v1/artifacts", files=files, data=data)
    assert r.status_code == 422 and "wrong key" in r.json()["detail"], r.text
    assert not env.runner.rollout.artifacts.exists(hashlib.sha256(bad).hexdigest())
    good = env.sota(retrained_model_wasm, "1.5.0")
    r = await env.http.post("/api/v1/artifacts", data=data,
                            files={"file": ("m.sota", good, "application/octet-stream")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "sota" and body["sha256"] == hashlib.sha256(good).hexdigest()
    assert body["size"] == len(good)
    listed = (await env.http.get("/api/v1/artifacts")).json()
    assert [a["id"] for a in listed] == [body["id"]]
