"""Where the console says a value came from, and the numeric series behind its charts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lwm2m_server.console.history import MAX_POINTS, ValueHistory
from lwm2m_server.events import new_event
from lwm2m_server.model import Path

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
P = Path.parse("/33100/0/5")


def test_a_notification_value_is_told_as_a_notification() -> None:
    h = ValueHistory()
    event = new_event("notification", "dev", paths=["/33100/0"], values={"/33100/0/5": 314})
    h.sink(event)
    # The server stored the value a moment before it published the event.
    seen = h.merge("dev", {P: (314, event.time - timedelta(milliseconds=3))})
    assert seen["/33100/0/5"].source == "notification"
    assert seen["/33100/0/5"].value == 314


def test_a_send_record_keeps_the_device_timestamp() -> None:
    h = ValueHistory()
    h.sink(new_event("send", "dev", values={"/3/0/9": 77},
                     records=[{"time": T0.timestamp(), "values": {"/3/0/9": 77}}]))
    seen = h.merge("dev", {Path.parse("/3/0/9"): (77, T0)})
    assert (seen["/3/0/9"].source, seen["/3/0/9"].time) == ("send", T0)


def test_a_value_no_event_explains_came_from_a_request_and_joins_the_series() -> None:
    h = ValueHistory()
    h.record("dev", {"/33100/0/5": 0}, "read", T0)
    # Later someone read it through REST (no event): a newer time than the console's read.
    later = T0 + timedelta(seconds=30)
    seen = h.merge("dev", {P: (314, later)})
    assert seen["/33100/0/5"].source == "request"
    assert h.series("dev")["/33100/0/5"] == [[T0.timestamp(), 0.0], [later.timestamp(), 314.0]]
    # Looking again adds nothing: the same value at the same time.
    h.merge("dev", {P: (314, later)})
    assert len(h.series("dev")["/33100/0/5"]) == 2


def test_series_keep_numbers_only_in_time_order_and_bounded() -> None:
    h = ValueHistory()
    h.record("dev", {"/3/0/0": "ACME", "/3/0/9": True, "/3/0/10": float("nan")}, "read", T0)
    assert h.series("dev") == {}
    for i in range(MAX_POINTS + 10):
        h.record("dev", {"/3/0/9": i}, "notification", T0 + timedelta(seconds=i))
    h.record("dev", {"/3/0/9": -1}, "send", T0)  # an old Send record does not go back in time
    points = h.series("dev")["/3/0/9"]
    assert len(points) == MAX_POINTS
    assert points[-1][1] == MAX_POINTS + 9
    assert all(a[0] < b[0] for a, b in zip(points, points[1:]))
