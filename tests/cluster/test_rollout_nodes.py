"""A rollout across two server nodes on one PostgreSQL (two Runners in this test process, each
with its own CoAP socket and HTTP port): targets registered with either node are updated, the
deployment is driven through either node's REST API, and each webhook event arrives once. An
artifact deleted through one node is gone from every node's folder and /fw."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from lwm2m_server.rollout.webhooks import verify_signature
from ota.keys import generate_private_key
from tests.ota_delivery.conftest import FAST, firmware_image, start_env, stop_env
from tests.ota_delivery.test_rest_e2e import Receiver
from tests.support.postgres import temporary_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres


async def test_rollout_across_nodes_with_webhooks_once(tmp_path: Path,
                                                       example_model_wasm: bytes) -> None:
    signing_key = generate_private_key("ed25519")
    with temporary_database("lwm2m_roll_nodes_") as url:
        a = await start_env(tmp_path, url, signing_key, example_model_wasm, **FAST)
        b = await start_env(tmp_path, url, signing_key, example_model_wasm, **FAST)
        receiver = Receiver(fail_first=0)
        hook_url = await receiver.start()
        try:
            assert a.runner.rollout.engine._lead()  # the first node runs the reconciler
            r = await b.http.post("/api/v1/webhooks", json={"url": hook_url,
                                                            "kinds": ["deployment_target"]})
            assert r.status_code == 201
            secret = r.json()["secret"]
            for env in (a, b):
                env.runner.rollout.webhooks.refresh = 0.0  # see the new hook at once
            await a.device("na-1", firmware_version="1.0.0")
            await b.device("nb-1", firmware_version="1.0.0")
            await b.device("nb-2", firmware_version="1.0.0")
            await eventually(lambda: all(a.server.registrations.get(e) for e in ("nb-1", "nb-2")))
            assert a.server.registrations.get("nb-1").owner == b.server.cluster.node_id
            fw = a.add_artifact(firmware_image("1.0.1"), "firmware", "1.0.1")
            dep = await b.deploy(artifact_id=fw, endpoints=["na-1", "nb-1", "nb-2"])
            done = await a.wait_done(dep, timeout=60)
            assert {t["endpoint"]: t["state"] for t in done["targets"]} == {
                "na-1": "succeeded", "nb-1": "succeeded", "nb-2": "succeeded"}, done
            assert b.devices["nb-1"].firmware_version == "1.0.1"
            # The requests for B's devices went out from B, asked for by A's reconciler.
            assert b.server.cluster.forwarder.served > 0
            assert (await b.view(dep))["state"] == "completed"

            def succeeded() -> list[str]:
                out = []
                for headers, body in receiver.posts:
                    assert verify_signature(secret, body, headers.get("x-lwm2m-signature"))
                    ev = json.loads(body)
                    if ev["data"]["state"] == "succeeded":
                        out.append(ev["endpoint"])
                return out

            await eventually(lambda: len(succeeded()) >= 3, timeout=10)
            await asyncio.sleep(1.0)  # a second delivery (one per node) would come by now
            assert sorted(succeeded()) == ["na-1", "nb-1", "nb-2"]
            ids = [h["x-lwm2m-delivery"] for h, _ in receiver.posts]
            assert len(ids) == len(set(ids)), "an event was delivered twice"
        finally:
            await receiver.stop()
            await stop_env(b)
            await stop_env(a)


async def test_an_artifact_deleted_through_one_node_is_gone_from_every_node(
        tmp_path: Path, example_model_wasm: bytes) -> None:
    signing_key = generate_private_key("ed25519")
    with temporary_database("lwm2m_art_del_") as url:
        # Each node with its own artifact folder, as on two hosts.
        a = await start_env(tmp_path / "a", url, signing_key, example_model_wasm, **FAST)
        b = await start_env(tmp_path / "b", url, signing_key, example_model_wasm, **FAST)
        try:
            data = firmware_image("4.0.0")
            sha = hashlib.sha256(data).hexdigest()
            r = await a.http.post("/api/v1/artifacts", files={"file": ("fw.bin", data)},
                                  data={"kind": "firmware", "name": "app", "version": "4.0.0"})
            assert r.status_code == 201, r.text
            art = r.json()["id"]
            async with httpx.AsyncClient(base_url=b.http.base_url) as device:
                assert (await device.get(f"/fw/{sha}")).content == data  # B fetched its copy
                copies = [env.runner.rollout.artifacts.path(sha) for env in (a, b)]
                assert all(p.is_file() for p in copies) and copies[0] != copies[1]
                r = await b.http.delete(f"/api/v1/artifacts/{art}")
                assert r.status_code == 200, r.text
                # A learns it from the replicated event and removes its own copy.
                await eventually(lambda: not copies[0].exists(), timeout=10)
                await a.runner.rollout.drain_removals()
                assert not copies[1].exists()
                assert (await a.http.get(f"/api/v1/artifacts/{art}")).status_code == 404
                for env in (a, b):  # neither node serves it, nor fetches it from the database
                    got = await device.get(f"{env.http.base_url}/fw/{sha}")
                    assert got.status_code == 404, (env.http.base_url, got.text)
            with b.server.engine.connect() as conn:
                left = conn.execute(text("SELECT count(*) FROM artifact_blob WHERE sha256 = :s"),
                                    {"s": sha}).scalar()
            assert left == 0
        finally:
            await stop_env(b)
            await stop_env(a)
