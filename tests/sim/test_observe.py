"""Observe with pmin, pmax, gt, lt and st (LwM2M 1.1 §5.1.2), and cancelling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.model import Path

from .peer import Peer, eventually


async def _observe(peer: Peer, ep: str, path: str, **kw: Any) -> tuple[Any, list[tuple[float, bytes]], asyncio.Task[None]]:
    req = peer.observe(ep, path, **kw)
    first = await asyncio.wait_for(req.response, 5)
    assert first.code == Code.CONTENT
    got: list[tuple[float, bytes]] = []

    async def collect() -> None:
        async for n in req.observation:
            got.append((time.monotonic(), n.payload))

    return req, got, asyncio.get_running_loop().create_task(collect())


async def _put(peer: Peer, ep: str, path: str, value: int) -> None:
    assert (await peer.request(ep, Code.PUT, path, str(value).encode(), ct=0)).code == Code.CHANGED


async def test_notifies_on_change_of_inference_count(peer: Peer, make_device):
    await make_device("o-1")
    req, got, task = await _observe(peer, "o-1", "/33100/0/4")
    await peer.request("o-1", Code.POST, "/33100/0/8")
    await eventually(lambda: [p for _, p in got] == [b"1"])
    req.observation.cancel()
    task.cancel()


async def test_pmin_delays_and_merges_notifications(peer: Peer, make_device):
    dev = await make_device("o-2")
    await peer.request("o-2", Code.PUT, "/33100/0/4", query=("pmin=1",))
    req, got, task = await _observe(peer, "o-2", "/33100/0/4")
    t0 = time.monotonic()
    for _ in range(3):
        await peer.request("o-2", Code.POST, "/33100/0/8")
    await asyncio.sleep(0.5)
    assert got == []
    await eventually(lambda: len(got) == 1, timeout=3)
    assert got[0][1] == b"3"
    assert got[0][0] - t0 >= 0.9
    task.cancel()
    assert dev.observations


async def test_pmax_notifies_without_change(peer: Peer, make_device):
    await make_device("o-3")
    await peer.request("o-3", Code.PUT, "/3/0/9", query=("pmax=1",))
    req, got, task = await _observe(peer, "o-3", "/3/0/9")
    t0 = time.monotonic()
    await eventually(lambda: len(got) >= 2, timeout=4)
    assert [p for _, p in got[:2]] == [b"100", b"100"]
    assert got[0][0] - t0 >= 0.9
    task.cancel()


@pytest.mark.parametrize("attrs,writes,notified", [
    (("gt=10", "lt=5"), (3, 7, 8, 12, 11), [b"7", b"12"]),  # only crossings of gt or lt
    (("st=5",), (2, 6, 8, 10, 11), [b"6", b"11"]),         # steps from the last notified value
])
async def test_numeric_attributes_filter_notifications(peer: Peer, make_device, attrs, writes, notified):
    await make_device("o-num")
    await peer.request("o-num", Code.PUT, "/33100/0/9", query=attrs)
    req, got, task = await _observe(peer, "o-num", "/33100/0/9")
    for v in writes:
        await _put(peer, "o-num", "/33100/0/9", v)
        await asyncio.sleep(0.05)
    await eventually(lambda: len(got) >= len(notified))
    await asyncio.sleep(0.3)  # and nothing more arrives
    assert [p for _, p in got] == notified
    task.cancel()


async def test_observe_instance_notifies_in_senml_cbor(peer: Peer, make_device):
    dev = await make_device("o-6")
    req, got, task = await _observe(peer, "o-6", "/33100/0", accept=112)
    await peer.request("o-6", Code.POST, "/33100/0/8")
    await eventually(lambda: len(got) >= 1)
    from lwm2m_server.codecs import codec_for
    values = codec_for(112).decode_values(got[0][1], dev.registry)
    assert values[Path.parse("/33100/0/4")] == 1
    assert len(dev.observations[Path.parse("/33100/0")]) == 1
    req.observation.cancel()
    task.cancel()


async def test_observe_of_missing_path_answers_not_found(peer: Peer, make_device):
    dev = await make_device("o-7")
    req = peer.observe("o-7", "/3/0/99")
    resp = await asyncio.wait_for(req.response, 5)
    assert resp.code == Code.NOT_FOUND
    assert not dev.observations


async def test_get_with_observe_1_ends_the_observation_of_that_path(peer: Peer, make_device):
    dev = await make_device("o-8")
    req, got, task = await _observe(peer, "o-8", "/33100/0/4")
    assert dev.observations
    resp = await peer.request("o-8", Code.GET, "/33100/0/4", observe=1)
    assert resp.code == Code.CONTENT
    await eventually(lambda: not dev.observations)
    await peer.request("o-8", Code.POST, "/33100/0/8")
    await asyncio.sleep(0.2)
    assert all(p != b"1" for _, p in got)  # no notification after the cancel
    task.cancel()
