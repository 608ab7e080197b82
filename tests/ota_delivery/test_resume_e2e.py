"""A device that dies mid-download and comes back resumes the download: real server, real UDP.

The server's CoAP /fw resource logs the Block2 numbers asked for; the DownloadTracker counts
the bytes it sent. Blocks before the cut point must travel once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lwm2m_server.sim.transfer import Faults
from ota.mcuboot import verify_image

from .conftest import Env, eventually, firmware_image

BLOCK = 1024


def log_blocks(env: Env) -> list[int]:
    """Block numbers asked of the server's CoAP /fw, in order."""
    fw = env.runner.rollout.fw
    asked: list[int] = []
    render = fw.render

    async def logged(request: Any) -> Any:
        asked.append(request.opt.block2.block_number if request.opt.block2 else 0)
        return await render(request)

    fw.render = logged  # type: ignore[method-assign]
    return asked


async def test_device_that_dies_mid_download_resumes_at_the_cut_and_the_rollout_succeeds(
        env: Env) -> None:
    asked = log_blocks(env)
    image = firmware_image("3.0.0", size=20_000)
    sha = hashlib.sha256(image).hexdigest()
    n_blocks = -(-len(image) // BLOCK)
    dev = await env.device("rs-e2e", faults=Faults(die_mid_download=True, die_after=0.5))
    art = env.add_artifact(image, "firmware", "3.0.0")
    dep = await env.deploy(artifact_id=art, endpoints=["rs-e2e"], retries=3, timeout=20)
    await eventually(lambda: not dev.alive)
    cut = len(asked)
    assert 1 < cut < n_blocks and asked == list(range(cut)), asked
    assert dev.storage.partial(5).held() == cut * BLOCK  # kept in flash across the power loss
    # Power comes back: same flash (state folder), registers again; the rollout writes the
    # Package URI again (in the same attempt or the next one, depending on timing).
    again = await env.device("rs-e2e")
    (t,) = (await env.wait_done(dep, timeout=40))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "pull-coap" and t["applied"] == 1, t
    assert asked == list(range(n_blocks)), asked  # resumed at the cut: no block twice
    assert env.runner.rollout.tracker.bytes_sent == len(image)
    assert again.firmware_version == "3.0.0"
    # The image the device applied is the artifact's: its MCUboot SHA-256 TLV as checked.
    assert again.storage.state()["firmware_sha256"] == verify_image(image).sha256.hex()
    assert again.storage.partial(5).held() == 0
    assert env.runner.rollout.tracker.fraction(sha, ("127.0.0.1", again.port)) == 1.0


async def test_sota_package_download_resumes_after_the_device_died_and_the_model_switches(
        env: Env, retrained_model_wasm: bytes) -> None:
    asked = log_blocks(env)
    pkg = env.sota(retrained_model_wasm, "1.2.0")
    n_blocks = -(-len(pkg) // BLOCK)
    assert n_blocks >= 2
    dev = await env.device("rs-sota", faults=Faults(die_mid_download=True, die_after=0.5))
    art = env.add_artifact(pkg, "sota", "1.2.0")
    dep = await env.deploy(artifact_id=art, endpoints=["rs-sota"], retries=3, timeout=20)
    await eventually(lambda: not dev.alive)
    cut = len(asked)
    assert 0 < cut < n_blocks and asked == list(range(cut)), asked
    assert dev.storage.partial(9).held() == cut * BLOCK
    again = await env.device("rs-sota")
    (t,) = (await env.wait_done(dep, timeout=40))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "pull-coap", t
    assert asked == list(range(n_blocks)), asked
    assert env.runner.rollout.tracker.bytes_sent == len(pkg)
    m = again.objects[33100].data[0]
    assert (m[2][m[0]], m[3][m[0]]) == ("1.2.0", hashlib.sha256(retrained_model_wasm).hexdigest())
    assert again.storage.partial(9).held() == 0
