"""Object 5 firmware updates end to end: real server over UDP/HTTP, simulated devices."""

from __future__ import annotations

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
