"""The event bus (bounded subscriber queues, sinks) and the metrics the core updates."""

from __future__ import annotations

import asyncio
import threading

from lwm2m_server.events import EventBus, new_event
from lwm2m_server.metrics import METRICS, REGISTRATIONS, REQUEST_SECONDS, REQUESTS
from lwm2m_server.protocol.errors import DeviceError
from lwm2m_server.protocol.requests import ReadRequest
from lwm2m_server.tasks import call_in


async def test_slow_subscriber_loses_the_oldest_events_and_never_blocks_the_publisher():
    bus = EventBus(queue_size=3)
    sub = bus.subscribe()
    for i in range(5):
        bus.publish(new_event("notification", "d", n=i))
    got = [sub.queue.get_nowait().data["n"] for _ in range(3)]
    assert got == [2, 3, 4] and sub.dropped == 2
    sub.close()
    assert bus.subscriber_count == 0


async def test_sinks_see_every_event_and_subscribers_only_those_after_subscribing():
    bus = EventBus()
    seen = []
    bus.add_sink(seen.append)
    bus.publish(new_event("a"))
    sub = bus.subscribe()
    bus.publish(new_event("b"))
    assert [e.kind for e in seen] == ["a", "b"]
    assert (await sub.__anext__()).kind == "b"
    await sub.aclose()


async def test_an_event_published_from_another_thread_wakes_the_loop_at_once():
    """A REST route runs in the thread pool: its events must reach subscribers waiting on the
    loop without waiting for something else to wake it (asyncio's queues are not thread-safe)."""
    bus = EventBus()
    sub = bus.subscribe()
    sink_threads = []
    bus.add_sink(lambda e: sink_threads.append(threading.get_ident()))
    thread = threading.Thread(target=bus.publish, args=(new_event("deployment", n=1),))
    waiting = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)  # the subscriber waits on its queue; the loop has nothing else to do
    thread.start()
    event = await asyncio.wait_for(waiting, timeout=5)
    thread.join()
    assert event.data == {"n": 1}
    assert sink_threads == [threading.get_ident()]  # sinks run on the loop's thread too
    await sub.aclose()


async def test_call_in_runs_at_once_on_the_loop_and_hands_over_from_a_thread():
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    ran: list[int] = []
    call_in(loop, ran.append, threading.get_ident())  # on the loop: now, not later
    assert ran == [threading.get_ident()]
    thread = threading.Thread(target=call_in, args=(loop, woken.set))  # the rollout engine's wake
    thread.start()
    await asyncio.wait_for(woken.wait(), timeout=5)
    thread.join()
    call_in(None, ran.append, 2)  # no loop (a command-line tool): at once
    assert ran[-1] == 2


async def test_watchers_see_their_kind_from_this_process_and_from_others():
    bus = EventBus()
    seen: list[tuple[str, str | None]] = []
    bus.watch("artifact_deleted", lambda e: seen.append((e.kind, e.data.get("sha256"))))
    bus.publish(new_event("registered", "d"))
    bus.publish(new_event("artifact_deleted", sha256="aa"))
    bus.publish_remote(new_event("artifact_deleted", sha256="bb"))
    bus.publish_remote(new_event("updated", "d"))
    assert seen == [("artifact_deleted", "aa"), ("artifact_deleted", "bb")]
    bus.unwatch("artifact_deleted", seen.append)  # not watching: no error
    bus.unwatch("artifact_deleted", bus._watchers["artifact_deleted"][0])
    bus.publish(new_event("artifact_deleted", sha256="cc"))
    assert len(seen) == 2


async def test_operations_and_registrations_are_counted_in_prometheus_text(server, clients):
    reg_before = REGISTRATIONS.value("register")
    ok_before = REQUESTS.value("read", "ok")
    err_before = REQUESTS.value("read", "device_error")
    n_before = REQUEST_SECONDS.count("read")
    c = await clients("metrics-dev")
    await c.register(server.coap_port)
    await server.devices.send("metrics-dev", ReadRequest("/3/0/0"))
    try:
        await server.devices.send("metrics-dev", ReadRequest("/9/0"))
    except DeviceError:
        pass
    assert REGISTRATIONS.value("register") == reg_before + 1
    assert REQUESTS.value("read", "ok") == ok_before + 1
    assert REQUESTS.value("read", "device_error") == err_before + 1
    assert REQUEST_SECONDS.count("read") == n_before + 2
    text = METRICS.render()
    assert 'lwm2m_requests_total{operation="read",outcome="ok"}' in text
    assert "lwm2m_registered_devices " in text
    assert '# TYPE lwm2m_request_seconds histogram' in text
