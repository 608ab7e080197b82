"""A device that dies mid-download and comes back resumes the download: real server, real UDP.

The server's CoAP /fw resource logs the Block2 numbers asked for; the DownloadTracker counts
the bytes it sent. Blocks before the cut point must travel once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from lwm2m_server.sim.device import SimDevice
from lwm2m_server.sim.transfer import Faults
from ota.mcuboot import verify_image

from .conftest import Env, eventually, firmware_image

BLOCK = 1024


def log_blocks(env: Env) -> list[int]:
    """Block numbers asked of the server's CoAP /fw, in order (answered from the datagram,
    coap/rawmsg.py, or through aiocoap)."""
    fw = env.runner.rollout.fw
    asked: list[int] = []
    render, answer_get = fw.render, fw.answer_get

    async def logged(request: Any) -> Any:
        asked.append(request.opt.block2.block_number if request.opt.block2 else 0)
        return await render(request)

    def logged_raw(request: Any, host: str, port: int) -> Any:
        got = answer_get(request, host, port)
        if got is not None:
            asked.append(request.block2 >> 4 if request.block2 is not None else 0)
        return got

    fw.render = logged  # type: ignore[method-assign]
    fw.answer_get = logged_raw  # type: ignore[method-assign]
    return asked


@dataclass
class Resumed:
    asked: list[int]       # Block2 numbers the server was asked for, in order
    cut: int               # how many blocks the device got before it died
    again: SimDevice       # the device after power came back
    target: dict[str, Any]


async def die_and_come_back(env: Env, endpoint: str, package: bytes, kind: str, version: str,
                            object_id: int) -> Resumed:
    """Deploy ``package`` to a device that dies half-way through the download, check what it
    kept in flash, bring it back (same state folder) and wait for the deployment."""
    asked = log_blocks(env)
    dev = await env.device(endpoint, faults=Faults(die_mid_download=True, die_after=0.5))
    art = env.add_artifact(package, kind, version)
    dep = await env.deploy(artifact_id=art, endpoints=[endpoint], retries=3, timeout=20)
    await eventually(lambda: not dev.alive)
    cut = len(asked)
    assert 0 < cut < -(-len(package) // BLOCK) and asked == list(range(cut)), asked
    assert dev.storage.partial(object_id).held() == cut * BLOCK  # kept across the power loss
    # Power comes back: same flash, registers again; the rollout writes the Package URI again
    # (in the same attempt or the next one, depending on timing).
    again = await env.device(endpoint)
    (t,) = (await env.wait_done(dep, timeout=40))["targets"]
    assert t["state"] == "succeeded" and t["method"] == "pull-coap", t
    # Resumed at the cut: no block travelled twice.
    assert asked == list(range(-(-len(package) // BLOCK))), asked
    assert env.runner.rollout.tracker.bytes_sent == len(package)
    assert again.storage.partial(object_id).held() == 0
    return Resumed(asked, cut, again, t)


async def test_device_that_dies_mid_download_resumes_at_the_cut_and_the_rollout_succeeds(
        env: Env) -> None:
    image = firmware_image("3.0.0", size=20_000)
    r = await die_and_come_back(env, "rs-e2e", image, "firmware", "3.0.0", 5)
    assert r.cut > 1 and r.target["applied"] == 1
    assert r.again.firmware_version == "3.0.0"
    # The image the device applied is the artifact's: its MCUboot SHA-256 TLV as checked.
    assert r.again.storage.state()["firmware_sha256"] == (verify_image(image).sha256 or b"").hex()
    sha = hashlib.sha256(image).hexdigest()
    assert env.runner.rollout.tracker.fraction(sha, ("127.0.0.1", r.again.port)) == 1.0


async def test_sota_package_download_resumes_after_the_device_died_and_the_model_switches(
        env: Env, retrained_model_wasm: bytes) -> None:
    r = await die_and_come_back(env, "rs-sota", env.sota(retrained_model_wasm, "1.2.0"), "sota",
                                "1.2.0", 9)
    m: Any = r.again.objects[33100].data[0]
    assert (m[2][m[0]], m[3][m[0]]) == ("1.2.0", hashlib.sha256(retrained_model_wasm).hexdigest())
