"""Keyset pages of registrations: every device exactly once, in endpoint order, whatever changes
between pages (RegistrationManager.page; the REST list and export build on it)."""

from __future__ import annotations

import random

from lwm2m_server.events import EventBus
from lwm2m_server.protocol.registration import RegistrationManager
from lwm2m_server.store.repository import MemoryStore

PAYLOAD = b"</1/0>,</3/0>"


async def _manager(names: list[str]) -> RegistrationManager:
    regs = RegistrationManager(MemoryStore(), EventBus())
    for i, name in enumerate(names):
        await regs.register([f"ep={name}", "lt=60"], PAYLOAD, ("127.0.0.1", 10_000 + i))
    return regs


def _walk(regs: RegistrationManager, limit: int, online: bool | None = None) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = regs.page(after, limit, online)
        assert len(page) <= limit
        if not page:
            return seen
        seen += [r.endpoint for r in page]
        after = page[-1].endpoint


async def test_pages_give_every_endpoint_once_in_order() -> None:
    names = [f"dev-{i:04d}" for i in range(250)]
    random.Random(7).shuffle(names)
    regs = await _manager(names)
    for limit in (1, 7, 100, 1000):
        assert _walk(regs, limit) == sorted(names)


async def test_a_device_that_registers_again_or_leaves_keeps_the_order_right() -> None:
    regs = await _manager(["b", "a", "c"])
    await regs.register(["ep=a", "lt=60"], PAYLOAD, ("127.0.0.1", 20_000))  # again, new port
    assert _walk(regs, 2) == ["a", "b", "c"]
    await regs.deregister(regs.get("b").registration_id)  # type: ignore[union-attr]
    assert _walk(regs, 2) == ["a", "c"]
    await regs.register(["ep=aa", "lt=60"], PAYLOAD, ("127.0.0.1", 20_001))
    assert [r.endpoint for r in regs.page("a", 10)] == ["aa", "c"]


async def test_a_page_after_an_endpoint_that_left_starts_at_the_next_one() -> None:
    regs = await _manager(["a", "b", "c", "d"])
    first = regs.page(None, 2)
    await regs.deregister(first[-1].registration_id)  # "b" leaves between two pages
    assert [r.endpoint for r in regs.page(first[-1].endpoint, 2)] == ["c", "d"]


async def test_online_filter_pages_only_matching_devices() -> None:
    clock = [1000.0]
    regs = RegistrationManager(MemoryStore(), EventBus(), clock=lambda: clock[0])
    for i in range(10):
        await regs.register([f"ep=d{i}", f"lt={60 if i % 2 else 1}"], PAYLOAD, ("127.0.0.1", 30_000 + i))
    clock[0] += 5
    await regs.expire_due()
    assert _walk(regs, 3, online=True) == [f"d{i}" for i in range(1, 10, 2)]
    assert _walk(regs, 3, online=False) == [f"d{i}" for i in range(0, 10, 2)]
