"""Device management over DTLS-PSK end to end: real handshakes on loopback, the simulator as the
device, REST as the operator: Register, Read, Write, Observe, Object 5 pull, Object 9 SOTA."""

from __future__ import annotations

import hashlib

from lwm2m_server.store.artifacts import ingest_artifact
from ota.keys import public_key_of
from ota.sota import build_package
from tests.ota_delivery.conftest import SLOT, firmware_image

from .conftest import SecureEnv, eventually


async def test_device_registers_over_dtls_and_is_managed_through_rest(senv: SecureEnv) -> None:
    senv.provision("sec-1", "sec-1-id")
    dev = await senv.device("sec-1", psk_identity="sec-1-id", psk_key=bytes(range(16)))
    reg = senv.server.registrations.get("sec-1")
    assert reg.security == "psk"
    (ev,) = senv.kinds("registered", "sec-1")
    assert ev.data["security"] == "psk"
    r = await senv.api.get("/api/v1/devices/sec-1")
    assert r.status_code == 200 and r.json()["security"] == "psk", r.text

    # Read: the answer came back through the device's DTLS session.
    r = await senv.api.get("/api/v1/devices/sec-1/data/3/0")
    assert r.status_code == 200, r.text
    assert r.json()["values"]["/3/0/3"] == dev.firmware_version
    # Write: the lifetime changes on the device.
    r = await senv.api.put("/api/v1/devices/sec-1/data/1/0/1", json={"values": {"/1/0/1": 120}})
    assert r.status_code in (200, 204), r.text
    assert dev.objects[1].data[0][1] == 120
    # Observe: a notification over DTLS reaches the server's latest values.
    r = await senv.api.post("/api/v1/devices/sec-1/observe/3/0/9")
    assert r.status_code in (200, 201), r.text
    dev.objects[3].set_value(0, 9, 42)
    await eventually(lambda: any(e.kind == "notification" and e.endpoint == "sec-1"
                                 and "42" in str(e.data) for e in senv.events))


async def test_firmware_pull_over_coaps_and_sota_over_dtls(senv: SecureEnv,
                                                          retrained_model_wasm: bytes) -> None:
    senv.provision("sec-fw", "sec-fw-id")
    dev = await senv.device("sec-fw", psk_identity="sec-fw-id", psk_key=bytes(range(16)),
                            firmware_version="1.0.0")
    image = firmware_image("1.0.1")
    art = ingest_artifact(senv.server.engine, senv.runner.rollout.artifacts, image,
                          kind="firmware", name="fw", version="1.0.1").artifact.id
    r = await senv.api.post("/api/v1/deployments", json={"artifact_id": art, "endpoints": ["sec-fw"]})
    assert r.status_code == 201, r.text
    dep = r.json()["id"]
    view = await _wait_done(senv, dep)
    (t,) = view["targets"]
    assert t["state"] == "succeeded" and t["method"] == "pull-coap", t
    assert dev.firmware_version == "1.0.1"
    # The Package URI written to a DTLS device named the coaps /fw resource, and every byte of
    # the image went out through the device's DTLS session (the tracker keys it by address).
    sha = hashlib.sha256(image).hexdigest()
    assert senv.runner.rollout.engine.package_url(sha, "pull-coap", "sec-fw") == \
        f"{senv.coaps_uri}/fw/{sha}"
    assert senv.runner.rollout.tracker.fraction(sha, ("127.0.0.1", dev.port)) == 1.0
    assert senv.server.registrations.get("sec-fw").address == ("127.0.0.1", dev.port)

    pkg = build_package(retrained_model_wasm, name="classifier", version="1.1.0",
                        private_key=senv.key, slot_size=SLOT)
    art2 = ingest_artifact(senv.server.engine, senv.runner.rollout.artifacts, pkg, kind="sota",
                           name="m", version="1.1.0",
                           sota_public_key=public_key_of(senv.key)).artifact.id
    r = await senv.api.post("/api/v1/deployments", json={"artifact_id": art2, "endpoints": ["sec-fw"]})
    assert r.status_code == 201, r.text
    (t,) = (await _wait_done(senv, r.json()["id"]))["targets"]
    assert t["state"] == "succeeded", t
    m = dev.objects[33100].data[0]
    assert m[2][m[0]] == "1.1.0" and m[3][m[0]] == hashlib.sha256(retrained_model_wasm).hexdigest()


async def _wait_done(senv: SecureEnv, dep: int) -> dict:  # type: ignore[type-arg]
    async def view() -> dict:  # type: ignore[type-arg]
        r = await senv.api.get(f"/api/v1/deployments/{dep}")
        return r.json()  # type: ignore[no-any-return]

    import asyncio
    import time

    deadline = time.monotonic() + 40
    while True:
        v = await view()
        if v["state"] in ("completed", "failed", "cancelled"):
            return v
        assert time.monotonic() < deadline, v
        await asyncio.sleep(0.1)
