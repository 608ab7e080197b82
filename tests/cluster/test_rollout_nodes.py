"""A rollout across two server nodes on one PostgreSQL (two Runners in this test process, each
with its own CoAP socket and HTTP port): targets registered with either node are updated, the
deployment is driven through either node's REST API, and each webhook event arrives once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

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
