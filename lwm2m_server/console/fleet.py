"""What the console pages show, built from the server's own views: device rows with firmware
and model versions, the model-object panel, latest values with resource names, deployment
progress.

Pure functions over the JSON the REST routes return (``device_json``, ``deployment_view``) and
the latest-values store (``DeviceManager.latest``): no queries of their own besides the tag
lookup, so the console and the API always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ..model import ObjLnk, ObjectRegistry, Path, Value
from ..protocol.jsonable import plain
from ..rollout.tables import DeviceTag

__all__ = [
    "MODEL_OBJECT", "FIRMWARE_VERSION", "ModelPanel", "ValueRow", "DeviceRow",
    "model_panel", "firmware_version", "value_rows", "device_rows", "tags_by_endpoint",
    "deployment_progress", "ago", "display", "FINAL_STATES", "final_summary", "version_counts",
]

MODEL_OBJECT = 33100
FIRMWARE_VERSION = Path.parse("/3/0/3")
_SLOTS = ("A", "B")
_TERMINAL = ("succeeded", "failed", "cancelled")


def _m(resource: int, instance: int | None = None) -> Path:
    ids = (MODEL_OBJECT, 0, resource) + ((instance,) if instance is not None else ())
    return Path.parse("/" + "/".join(str(i) for i in ids))


def display(value: Any) -> str:
    """A value as the console shows it (the REST API's JSON form; long text cut)."""
    if isinstance(value, bytearray):
        value = bytes(value)
    shown = plain(value) if isinstance(value, (bytes, ObjLnk)) else value
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if isinstance(shown, float):
        # A float32 from a device reads 1.0390000343322754; seven digits are what it holds.
        return format(shown, ".7g")
    text = str(shown)
    return text if len(text) <= 200 else text[:197] + "..."


def ago(when: datetime | str | None, now: datetime | None = None) -> str:
    """``when`` as "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago", or "in 40 s" for a
    time to come ("never" for None)."""
    if when is None:
        return "never"
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:  # SQLite hands back naive datetimes; every stored time is UTC
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    seconds = int((now - when).total_seconds())
    if 0 <= seconds < 2:
        return "just now"  # as the page's script says it
    amount = f"{abs(seconds)} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            amount = f"{abs(seconds) // size} {unit}"
            break
    return f"{amount} ago" if seconds >= 0 else f"in {amount}"


@dataclass(frozen=True, slots=True)
class ModelPanel:
    """Object 33100 instance 0 as far as the latest values tell."""

    active_slot: str | None
    slots: tuple[dict[str, str | None], ...]
    inference_count: Any
    last_latency_us: Any
    last_output: Any
    last_score: Any
    runtime: Any
    last_error: Any

    @property
    def active_name(self) -> str | None:
        return self._active("name")

    @property
    def active_version(self) -> str | None:
        return self._active("version")

    def _active(self, key: str) -> str | None:
        for slot in self.slots:
            if slot["slot"] == self.active_slot:
                return slot[key]
        return None


def model_panel(latest: Mapping[Path, tuple[Value, datetime]]) -> ModelPanel | None:
    """The model panel from a device's latest values; None when nothing of object 33100 is known."""
    def get(p: Path) -> Any:
        item = latest.get(p)
        return item[0] if item is not None else None

    if not any(p.object_id == MODEL_OBJECT for p in latest):
        return None
    active = get(_m(0))
    slots = tuple({"slot": label,
                   "name": _text(get(_m(1, i))), "version": _text(get(_m(2, i))),
                   "sha256": _text(get(_m(3, i)))} for i, label in enumerate(_SLOTS))
    return ModelPanel(active_slot=_SLOTS[active] if isinstance(active, int) and 0 <= active < 2 else None,
                      slots=slots, inference_count=get(_m(4)), last_latency_us=get(_m(5)),
                      last_output=get(_m(6)), last_score=get(_m(7)), runtime=get(_m(10)),
                      last_error=get(_m(11)))


def _text(v: Any) -> str | None:
    return None if v is None or v == "" else display(v)


def firmware_version(latest: Mapping[Path, tuple[Value, datetime]]) -> str | None:
    item = latest.get(FIRMWARE_VERSION)
    return _text(item[0]) if item is not None else None


@dataclass(frozen=True, slots=True)
class ValueRow:
    path: str
    name: str
    value: str
    time: str
    units: str = ""


def value_rows(latest: Mapping[Path, tuple[Value, datetime]], registry: ObjectRegistry) -> list[ValueRow]:
    """One row per known value, in path order, named from the object definitions."""
    rows = []
    for p, (v, when) in sorted(latest.items()):
        rdef = registry.resource_for(p)
        name = rdef.name if rdef is not None else ""
        if rdef is not None and p.is_resource_instance:
            name = f"{name} [{p.ids[-1]}]"
        rows.append(ValueRow(path=str(p), name=name, value=display(v),
                             time=when.isoformat(), units=getattr(rdef, "units", "") or ""))
    return rows


@dataclass
class DeviceRow:
    """One line of the devices table."""

    device: dict[str, Any]
    firmware: str | None = None
    model: ModelPanel | None = None
    tags: list[str] = field(default_factory=list)

    def matches(self, text: str | None, tag: str | None) -> bool:
        if tag and tag not in self.tags:
            return False
        if not text:
            return True
        needle = text.lower()
        hay = [self.device["endpoint"], self.firmware or "", *self.tags]
        if self.model is not None:
            hay += [self.model.active_name or "", self.model.active_version or ""]
        return any(needle in h.lower() for h in hay)


def tags_by_endpoint(engine: Engine | None) -> dict[str, list[str]]:
    """Every device's tags (one query for the whole table)."""
    if engine is None:
        return {}
    out: dict[str, list[str]] = {}
    with Session(engine) as session:
        for endpoint, tag in session.exec(select(DeviceTag.endpoint, DeviceTag.tag)
                                          .order_by(DeviceTag.endpoint, DeviceTag.tag)).all():
            out.setdefault(endpoint, []).append(tag)
    return out


def device_rows(devices: Iterable[dict[str, Any]], latest_of: Any, tags: Mapping[str, list[str]],
                text: str | None = None, tag: str | None = None) -> list[DeviceRow]:
    """The devices table: ``devices`` as the REST list returns them, ``latest_of(endpoint)``
    the latest-values store, filtered by ``text`` (endpoint, firmware, model, tag) and ``tag``."""
    rows = []
    for d in devices:
        latest = latest_of(d["endpoint"])
        row = DeviceRow(device=d, firmware=firmware_version(latest), model=model_panel(latest),
                        tags=list(tags.get(d["endpoint"], [])))
        if row.matches(text, tag):
            rows.append(row)
    return rows


def deployment_progress(view: Mapping[str, Any]) -> dict[str, Any]:
    """Targets per outcome and the share finished, from a deployment's ``counts``.

    ``percent`` is the share of targets in a final state; the bar shows succeeded, failed and
    cancelled apart, so a cancelled deployment never looks like a full green bar (nor like an
    empty one that says 100%).
    """
    counts = view.get("counts") or {}
    total = sum(int(v) for v in counts.values())
    done = sum(int(counts.get(s, 0)) for s in _TERMINAL)

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0
    ok, failed, cancelled = (int(counts.get(s, 0)) for s in _TERMINAL)
    return {"total": total, "done": done, "succeeded": ok, "failed": failed,
            "cancelled": cancelled, "percent": round(100 * done / total) if total else 0,
            "w_ok": share(ok), "w_fail": share(failed), "w_cancel": share(cancelled)}


FINAL_STATES = ("completed", "completed_with_failures", "cancelled")


def final_summary(state: str, progress: Mapping[str, Any]) -> dict[str, str] | None:
    """How a finished deployment ended, in words (``level``: ok, warn or off); None while it
    runs or is paused."""
    if state not in FINAL_STATES:
        return None
    ok, failed, cancelled, total = (progress[k] for k in ("succeeded", "failed", "cancelled", "total"))
    if state == "cancelled":
        return {"level": "off", "title": "Cancelled",
                "text": f"{ok} of {total} succeeded before the cancel, {cancelled} cancelled, "
                        f"{failed} failed."}
    if failed:
        return {"level": "warn", "title": "Finished with failures",
                "text": f"{failed} of {total} targets failed, {ok} succeeded. Retry the failed "
                        "targets, or look at their reasons below."}
    return {"level": "ok", "title": "Completed", "text": f"All {ok} targets succeeded."}


def version_counts(rows: Iterable[DeviceRow]) -> dict[str, list[tuple[str, int]]]:
    """Firmware and active model versions across ``rows``, most common first."""
    firmware: dict[str, int] = {}
    models: dict[str, int] = {}
    for r in rows:
        fw = r.firmware or "unknown"
        firmware[fw] = firmware.get(fw, 0) + 1
        if r.model is not None and r.model.active_name:
            label = f"{r.model.active_name} {r.model.active_version or ''}".strip()
        else:
            label = "none known"
        models[label] = models.get(label, 0) + 1

    def ordered(d: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"firmware": ordered(firmware), "model": ordered(models)}
