"""Counters and latency histograms the server core updates; the HTTP side renders them.

No external library: ``METRICS.render()`` returns Prometheus text exposition format (0.0.4).
Names: ``lwm2m_registrations_total{kind}`` (register/update/deregister/expire),
``lwm2m_registered_devices`` (gauge), ``lwm2m_requests_total{operation,outcome}``,
``lwm2m_request_seconds{operation}`` (histogram), ``lwm2m_notifications_total``,
``lwm2m_send_total``, ``lwm2m_queued_requests_total{state}``.

Rollouts: ``lwm2m_rollout_targets{state}`` (gauge: targets of running and paused deployments,
read from the database at each scrape), ``lwm2m_rollout_target_transitions_total{state}``,
``lwm2m_rollout_target_seconds{outcome}`` (histogram: first move to a final state),
``lwm2m_rollout_transfer_bytes_total{method}`` (artifact bytes sent to devices: coap, http,
push), ``lwm2m_deployments_total{state}`` (deployments reaching a state).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable

__all__ = ["Counter", "Gauge", "Histogram", "MetricsRegistry", "METRICS",
           "REGISTRATIONS", "REGISTERED_DEVICES", "REQUESTS", "REQUEST_SECONDS",
           "NOTIFICATIONS", "SEND", "QUEUED_REQUESTS", "COAP_REFUSED", "PURGED", "LabeledGauge",
           "ROLLOUT_TARGETS", "ROLLOUT_TRANSITIONS", "ROLLOUT_TARGET_SECONDS", "ROLLOUT_BYTES",
           "DEPLOYMENTS", "observe_rollout_event"]

Labels = tuple[tuple[str, str], ...]


def _labels(names: tuple[str, ...], values: Iterable[str]) -> Labels:
    vals = tuple(str(v) for v in values)
    if len(vals) != len(names):
        raise ValueError(f"expected labels {names}, got {vals}")
    return tuple(zip(names, vals))


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')) for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


class _Metric:
    type_name = ""

    def __init__(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = labelnames
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.type_name}"]

    def lines(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    type_name = "counter"

    def __init__(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, *labelvalues: str, amount: float = 1.0) -> None:
        key = _labels(self.labelnames, labelvalues)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *labelvalues: str) -> float:
        return self._values.get(_labels(self.labelnames, labelvalues), 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_fmt_labels(k)} {v:g}" for k, v in items]


class Gauge(_Metric):
    """A value read at render time from a callback, or set directly."""

    type_name = "gauge"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._value = 0.0
        self._fn: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self._value = value

    def set_function(self, fn: Callable[[], float] | None) -> None:
        self._fn = fn

    def value(self) -> float:
        return float(self._fn()) if self._fn else self._value

    def lines(self) -> list[str]:
        return [f"{self.name} {self.value():g}"]


class LabeledGauge(_Metric):
    """Values per label read at render time from a callback ({label value: number})."""

    type_name = "gauge"

    def __init__(self, name: str, help: str, labelname: str, always: tuple[str, ...] = ()) -> None:
        super().__init__(name, help, (labelname,))
        self.always = always  # label values shown even at 0
        self._fn: Callable[[], dict[str, float]] | None = None

    def set_function(self, fn: Callable[[], dict[str, float]] | None) -> None:
        self._fn = fn

    def clear_function(self, fn: Callable[[], dict[str, float]] | None) -> None:
        """Forget ``fn`` if it is still the one in use (a stopped server's database)."""
        if fn is not None and self._fn is fn:
            self._fn = None

    def values(self) -> dict[str, float]:
        got = dict.fromkeys(self.always, 0.0)
        if self._fn is not None:
            try:
                got.update(self._fn())
            except Exception as e:  # noqa: BLE001 - a scrape must not fail for a database hiccup
                logging.getLogger(__name__).debug("%s: %s", self.name, e)
        return got

    def lines(self) -> list[str]:
        return [f"{self.name}{_fmt_labels(((self.labelnames[0], k),))} {v:g}"
                for k, v in sorted(self.values().items())]


DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram(_Metric):
    """Observed durations in cumulative buckets, with sum and count, per label set."""

    type_name = "histogram"

    def __init__(self, name: str, help: str, labelnames: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._data: dict[Labels, list[float]] = {}  # bucket counts..., +Inf count, sum

    def observe(self, value: float, *labelvalues: str) -> None:
        key = _labels(self.labelnames, labelvalues)
        with self._lock:
            d = self._data.get(key)
            if d is None:
                d = self._data[key] = [0.0] * (len(self.buckets) + 2)
            d[bisect.bisect_left(self.buckets, value)] += 1
            d[-1] += value

    def count(self, *labelvalues: str) -> int:
        d = self._data.get(_labels(self.labelnames, labelvalues))
        return int(sum(d[:-1])) if d else 0

    def lines(self) -> list[str]:
        out: list[str] = []
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._data.items())
        for key, d in items:
            acc = 0.0
            for bound, n in zip(self.buckets, d):
                acc += n
                out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', f'{bound:g}'),))} {acc:g}")
            acc += d[len(self.buckets)]
            out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', '+Inf'),))} {acc:g}")
            out.append(f"{self.name}_sum{_fmt_labels(key)} {d[-1]:g}")
            out.append(f"{self.name}_count{_fmt_labels(key)} {acc:g}")
        return out


class MetricsRegistry:
    """The metrics one process exposes, rendered together."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def register(self, metric: _Metric) -> _Metric:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        """Prometheus text exposition format (Content-Type ``text/plain; version=0.0.4``)."""
        lines: list[str] = []
        for m in self._metrics:
            lines += m.header()
            lines += m.lines()
        return "\n".join(lines) + "\n"


METRICS = MetricsRegistry()
REGISTRATIONS = Counter("lwm2m_registrations_total",
                        "Registration interface operations handled, by kind", ("kind",))
REGISTERED_DEVICES = Gauge("lwm2m_registered_devices", "Devices currently registered")
REQUESTS = Counter("lwm2m_requests_total",
                   "Device-management requests to devices, by operation and outcome",
                   ("operation", "outcome"))
REQUEST_SECONDS = Histogram("lwm2m_request_seconds",
                            "Round-trip time of device-management requests", ("operation",))
NOTIFICATIONS = Counter("lwm2m_notifications_total", "Observe notifications received")
SEND = Counter("lwm2m_send_total", "Send (/dp) operations received, by outcome", ("outcome",))
QUEUED_REQUESTS = Counter("lwm2m_queued_requests_total",
                          "Requests queued for sleeping devices, by final state", ("state",))
COAP_REFUSED = Counter("lwm2m_coap_datagrams_refused_total",
                       "CoAP datagrams refused before dispatch, by reason (too_large, "
                       "bad_option_value, bad_option, unparsable, internal_error)", ("reason",))
PURGED = Counter("lwm2m_purged_rows_total", "Rows removed by retention housekeeping, by kind",
                 ("kind",))
_TARGET_STATES = ("pending", "transferring", "transferred", "updating", "succeeded", "failed",
                  "cancelled")  # rollout.state.TargetState, without importing the rollout layer
_FINAL_TARGET_STATES = ("succeeded", "failed", "cancelled")
ROLLOUT_TARGETS = LabeledGauge("lwm2m_rollout_targets",
                               "Targets of running and paused deployments, by state", "state",
                               always=_TARGET_STATES)
ROLLOUT_TRANSITIONS = Counter("lwm2m_rollout_target_transitions_total",
                              "Rollout target state changes, by new state", ("state",))
ROLLOUT_TARGET_SECONDS = Histogram("lwm2m_rollout_target_seconds",
                                   "Time from a target's first move to its final state",
                                   ("outcome",),
                                   buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                                            1800.0, 3600.0))
ROLLOUT_BYTES = Counter("lwm2m_rollout_transfer_bytes_total",
                        "Artifact bytes sent to devices, by method (coap, http, push)", ("method",))
DEPLOYMENTS = Counter("lwm2m_deployments_total", "Deployments reaching a state, by state",
                      ("state",))
for _m in (REGISTRATIONS, REGISTERED_DEVICES, REQUESTS, REQUEST_SECONDS, NOTIFICATIONS, SEND,
           QUEUED_REQUESTS, COAP_REFUSED, PURGED, ROLLOUT_TARGETS, ROLLOUT_TRANSITIONS,
           ROLLOUT_TARGET_SECONDS, ROLLOUT_BYTES, DEPLOYMENTS):
    METRICS.register(_m)

# (deployment id, endpoint) -> monotonic time of the target's first move out of pending
_target_started: dict[tuple[object, object], float] = {}


def observe_rollout_event(event: object) -> None:
    """Event-bus sink: count target transitions and deployment states, time each target."""
    import time

    kind = getattr(event, "kind", "")
    data: dict[str, object] = getattr(event, "data", {})
    if kind == "deployment":
        DEPLOYMENTS.inc(str(data.get("state")))
        return
    if kind != "deployment_target":
        return
    state = str(data.get("state"))
    if data.get("previous") == state:
        return  # progress within a state
    ROLLOUT_TRANSITIONS.inc(state)
    key = (data.get("deployment_id"), getattr(event, "endpoint", None))
    if state in _FINAL_TARGET_STATES:
        started = _target_started.pop(key, None)
        if started is not None:
            ROLLOUT_TARGET_SECONDS.observe(time.monotonic() - started, state)
    elif state != "pending":
        _target_started.setdefault(key, time.monotonic())
