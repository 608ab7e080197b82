"""Counters and latency histograms the server core updates; the HTTP side renders them.

No external library: ``METRICS.render()`` returns Prometheus text exposition format (0.0.4).
Names: ``lwm2m_registrations_total{kind}`` (register/update/deregister/expire),
``lwm2m_registered_devices`` (gauge), ``lwm2m_requests_total{operation,outcome}``,
``lwm2m_request_seconds{operation}`` (histogram), ``lwm2m_notifications_total``,
``lwm2m_send_total``, ``lwm2m_queued_requests_total{state}``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable

__all__ = ["Counter", "Gauge", "Histogram", "MetricsRegistry", "METRICS",
           "REGISTRATIONS", "REGISTERED_DEVICES", "REQUESTS", "REQUEST_SECONDS",
           "NOTIFICATIONS", "SEND", "QUEUED_REQUESTS", "COAP_REFUSED", "PURGED"]

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
for _m in (REGISTRATIONS, REGISTERED_DEVICES, REQUESTS, REQUEST_SECONDS, NOTIFICATIONS, SEND,
           QUEUED_REQUESTS, COAP_REFUSED, PURGED):
    METRICS.register(_m)
