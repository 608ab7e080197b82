"""The same rollouts on PostgreSQL (127.0.0.1:5432, a throwaway database per test)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import temporary_database

from .conftest import FAST, firmware_image, start_env, stop_env
from .test_restart_e2e import run_kill9_scenario

pytestmark = pytest.mark.postgres


async def test_firmware_and_sota_rollout_on_postgresql(
        tmp_path: Path, signing_key: Any, example_model_wasm: bytes,
        retrained_model_wasm: bytes) -> None:
    with temporary_database("ota_e2e_") as url:
        env = await start_env(tmp_path, url, signing_key, example_model_wasm, **FAST)
        try:
            dev = await env.device("pg-1", firmware_version="1.1.9")
            fw = env.add_artifact(firmware_image("1.1.10"), "firmware", "1.1.10")
            sota = env.add_artifact(env.sota(retrained_model_wasm, "1.1.0"), "sota", "1.1.0")
            d1 = await env.deploy(artifact_id=fw, endpoints=["pg-1"])
            (t,) = (await env.wait_done(d1))["targets"]
            assert t["state"] == "succeeded" and dev.firmware_version == "1.1.10", t
            await env.device("pg-2")
            r = await env.http.put("/api/v1/devices/pg-2/tags", json={"tags": ["lab"]})
            assert r.status_code == 200
            d2 = await env.deploy(artifact_id=sota, tag="lab")
            (t,) = (await env.wait_done(d2))["targets"]
            assert t["endpoint"] == "pg-2" and t["state"] == "succeeded", t
            m = env.devices["pg-2"].objects[33100].data[0]
            assert m[3][m[0]] == hashlib.sha256(retrained_model_wasm).hexdigest()
        finally:
            await stop_env(env)


@pytest.mark.slow
async def test_kill9_mid_deployment_then_restart_on_postgresql(
        tmp_path: Path, example_model_wasm: bytes) -> None:
    with temporary_database("ota_kill9_") as url:
        await run_kill9_scenario(tmp_path, url, example_model_wasm)


async def test_only_one_process_reconciles_a_shared_postgresql_database() -> None:
    from lwm2m_server.rollout.engine import RolloutEngine
    from lwm2m_server.store.db import init_db, make_engine

    with temporary_database("ota_lead_") as url:
        db = make_engine(url)
        init_db(db)
        port: Any = None
        a = RolloutEngine(db, port, read_artifact=bytes.fromhex)
        b = RolloutEngine(db, port, read_artifact=bytes.fromhex)
        try:
            assert a._lead() and not b._lead()
            await a.stop()  # the leader goes away: the standby takes over
            assert b._lead()
        finally:
            await a.stop()
            await b.stop()
            db.dispose()
