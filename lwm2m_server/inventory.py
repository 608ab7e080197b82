"""The model inventory: per model name, its versions, which devices run them and how fast.

Versions come from the artifact store (``model`` artifacts and ``sota`` packages); devices
from their registrations and the latest values of the TinyML Model object (33100, instance
0: active slot, slot names/versions/SHA-256, inference count, last latency and output) as
the server last read or observed them. The REST route (``api/models.py``) and the console
page (``console/models.py``) both show ``model_inventory``'s answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .model import Path

__all__ = ["MODEL_OBJECT", "device_model", "model_inventory", "refresh_paths"]

MODEL_OBJECT = 33100
_SLOTS = ("A", "B")


def _value(latest: Mapping[Path, tuple[Any, datetime]], *ids: int) -> Any:
    item = latest.get(Path.of(MODEL_OBJECT, 0, *ids))
    if item is None:
        return None
    v = item[0]
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v


def device_model(endpoint: str, online: bool,
                 latest: Mapping[Path, tuple[Any, datetime]]) -> dict[str, Any] | None:
    """What one device reports about its models; None when nothing of 33100 is known."""
    if not any(p.object_id == MODEL_OBJECT for p in latest):
        return None
    active = _value(latest, 0)
    slots = []
    for i, label in enumerate(_SLOTS):
        name, version, sha = _value(latest, 1, i), _value(latest, 2, i), _value(latest, 3, i)
        if name or version:
            slots.append({"slot": label, "name": name or None, "version": version or None,
                          "sha256": sha or None,
                          "active": isinstance(active, int) and active == i})
    times = [t for p, (_, t) in latest.items() if p.object_id == MODEL_OBJECT]
    seen = max(times) if times else None
    if seen is not None and seen.tzinfo is None:
        seen = seen.replace(tzinfo=timezone.utc)
    return {"endpoint": endpoint, "online": online,
            "active_slot": _SLOTS[active] if isinstance(active, int) and 0 <= active < 2 else None,
            "slots": slots, "inference_count": _value(latest, 4),
            "last_latency_us": _value(latest, 5), "last_output": _value(latest, 6),
            "reported_at": seen.isoformat() if seen else None}


def model_inventory(artifacts: Iterable[Any], devices: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model name: versions (artifacts, devices running or holding each) and totals.

    ``artifacts``: Artifact rows of kind model or sota; ``devices``: ``device_model`` answers.
    """
    models: dict[str, dict[str, Any]] = {}

    def version_entry(name: str, version: str) -> dict[str, Any]:
        m = models.setdefault(name, {"name": name, "versions": {}})
        return m["versions"].setdefault(version, {  # type: ignore[no-any-return]
            "version": version, "artifacts": [], "active_on": [], "installed_on": []})

    for a in artifacts:
        if a.kind not in ("model", "sota"):
            continue
        wasm_sha = a.sha256 if a.kind == "model" else (a.meta.get("manifest") or {}).get("sha256")
        version_entry(a.name, a.version)["artifacts"].append(
            {"id": a.id, "kind": a.kind, "sha256": a.sha256, "wasm_sha256": wasm_sha,
             "size": a.size})
    device_list = [d for d in devices if d is not None]
    for d in device_list:
        for s in d["slots"]:
            if not s["name"] or not s["version"]:
                continue
            entry = version_entry(s["name"], s["version"])
            row = {"endpoint": d["endpoint"], "slot": s["slot"]}
            entry["active_on" if s["active"] else "installed_on"].append(row)
    out = []
    for name in sorted(models):
        m = models[name]
        versions = sorted(m["versions"].values(), key=lambda v: _version_key(v["version"]))
        running = [d for d in device_list
                   if any(s["active"] and s["name"] == name for s in d["slots"])]
        counts = [d["inference_count"] for d in running if isinstance(d["inference_count"], int)]
        latencies = [d["last_latency_us"] for d in running
                     if isinstance(d["last_latency_us"], int) and d["last_latency_us"] > 0]
        out.append({
            "name": name, "versions": versions,
            "devices": [{k: d[k] for k in ("endpoint", "online", "active_slot", "inference_count",
                                           "last_latency_us", "last_output", "reported_at")}
                        | {"version": next(s["version"] for s in d["slots"] if s["active"]),
                           "slots": d["slots"]}
                        for d in running],
            "inference_count": sum(counts),
            "mean_latency_us": round(sum(latencies) / len(latencies)) if latencies else None,
        })
    return out


def _version_key(text: str) -> tuple[Any, ...]:
    parts = text.split(".")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def refresh_paths() -> tuple[Path, ...]:
    """What to read from a device to refresh its inventory entry."""
    return (Path.of(MODEL_OBJECT, 0),)
