"""The event bus (bounded subscriber queues, sinks) and the metrics the core updates."""

from __future__ import annotations

from lwm2m_server.events import EventBus, new_event
from lwm2m_server.metrics import METRICS, REGISTRATIONS, REQUEST_SECONDS, REQUESTS
from lwm2m_server.protocol.errors import DeviceError
from lwm2m_server.protocol.requests import ReadRequest


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
