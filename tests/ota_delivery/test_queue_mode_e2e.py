"""A queue-mode (UQ) device gets its update when it wakes: requests to it wait in the server's
queue and go out after its next Update."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .conftest import FAST, eventually, firmware_image, start_env, stop_env


async def test_sleeping_queue_mode_device_is_updated_across_its_wake_ups(
        tmp_path: Path, signing_key: Any, example_model_wasm: bytes) -> None:
    # The server assumes a UQ device listens for 1 s after each Update (the device: 1.5 s).
    env = await start_env(tmp_path, f"sqlite:///{tmp_path / 'uq.db'}", signing_key,
                          example_model_wasm, server_options={"awake_window": 1.0}, **FAST)
    kinds: list[str] = []

    async def watch() -> None:
        async for ev in env.server.events.subscribe():
            if ev.endpoint == "uq-1":
                kinds.append(ev.kind)
    watcher = asyncio.create_task(watch())
    try:
        dev = await env.device("uq-1", binding="UQ", update_interval=2.0, awake_seconds=1.5)
        await eventually(lambda: not dev.awake)  # deploy while it sleeps
        await asyncio.sleep(0.3)
        art = env.add_artifact(firmware_image("4.0.0", size=6000), "firmware", "4.0.0")
        dep = await env.deploy(artifact_id=art, endpoints=["uq-1"], timeout=60)
        (t,) = (await env.wait_done(dep, timeout=60))["targets"]
        assert t["state"] == "succeeded" and t["result"] == 1, t
        assert dev.firmware_version == "4.0.0" and t["applied"] == 1
        assert "request_queued" in kinds and "queued_request_done" in kinds, kinds
    finally:
        watcher.cancel()
        await stop_env(env)
