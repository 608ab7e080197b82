"""What cluster processes tell each other, as JSON: stored state (registrations, latest values,
queued requests, observations), events, and forwarded requests' answers.

Every message is a dict with ``t`` (its type) and ``n`` (the sending node). State messages carry
the same columns the store writes, so a process applies them to its in-memory view exactly as
if it had loaded them from the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..events import Event
from ..model import Path, Value
from ..protocol.errors import (
    DeviceError,
    DeviceNotFound,
    DeviceOffline,
    DeviceTimeout,
    InvalidRequest,
    LwM2MError,
    Queued,
    RequestNotFound,
)
from ..protocol.jsonable import tagged_values, untagged_values
from ..protocol.observations import StoredObservation, parse_paths_key, paths_key
from ..protocol.queue import QueuedRequest
from ..protocol.registration import Registration
from ..protocol.requests import (
    CreateResponse,
    DeviceRequest,
    DeviceResponse,
    DiscoverResponse,
    EmptyResponse,
    ReadResponse,
    request_from_json,
    request_to_json,
)
from ..store.repository import (
    observation_from_row,
    observation_row,
    queued_from_row,
    queued_row,
    registration_from_row,
    registration_row,
)

__all__ = ["dumps", "loads", "registration_msg", "seen_msg", "unregistration_msg", "values_msg", "queued_msg",
           "observation_msg", "unobservation_msg", "event_msg", "apply_to", "encode_answer",
           "decode_answer", "encode_request", "decode_request"]

_DATES = ("registered_at", "last_seen", "created_at", "updated_at", "expires_at")


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray)):  # event data is JSON-able, but be safe
        return o.hex()
    raise TypeError(f"{type(o).__name__} is not JSON-able")


def dumps(msg: Mapping[str, Any]) -> str:
    """ASCII JSON (its length is its size in bytes: NOTIFY payloads are limited in bytes)."""
    return json.dumps(msg, separators=(",", ":"), default=_default)


def loads(text: str) -> Any:
    return json.loads(text)


def _dated(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: datetime.fromisoformat(v) if k in _DATES and isinstance(v, str) else v
            for k, v in row.items()}


# --- stored state ---------------------------------------------------------------------------
def registration_msg(reg: Registration) -> dict[str, Any]:
    return {"t": "reg", "r": registration_row(reg)}


def seen_msg(reg: Registration) -> dict[str, Any]:
    """An Update that changed nothing but ``last_seen`` (most of them): a short message."""
    return {"t": "seen", "ep": reg.endpoint, "rid": reg.registration_id, "w": reg.last_seen}


def unregistration_msg(endpoint: str, registration_id: str) -> dict[str, Any]:
    return {"t": "unreg", "ep": endpoint, "rid": registration_id}


def values_msg(endpoint: str, values: Mapping[Path, Value], when: datetime) -> dict[str, Any]:
    return {"t": "val", "ep": endpoint, "v": tagged_values(values), "w": when}


def queued_msg(q: QueuedRequest, request: DeviceRequest | None) -> dict[str, Any]:
    return {"t": "q", "q": queued_row(q, request)}


def observation_msg(obs: StoredObservation) -> dict[str, Any]:
    return {"t": "obs", "o": observation_row(obs)}


def unobservation_msg(endpoint: str, paths: tuple[Path, ...]) -> dict[str, Any]:
    return {"t": "unobs", "ep": endpoint, "p": paths_key(paths)}


def event_msg(event: Event) -> dict[str, Any]:
    return {"t": "ev", "id": event.id, "k": event.kind, "ep": event.endpoint, "d": event.data,
            "w": event.time}


def apply_to(server: Any, msg: Mapping[str, Any]) -> bool:
    """Apply a state or event message to ``server``'s in-memory view; False if ``msg`` is of
    another type (forwarding, node news)."""
    t = msg.get("t")
    if t == "reg":
        server.registrations.apply_remote(registration_from_row(_dated(msg["r"])))
    elif t == "seen":
        server.registrations.seen_remote(msg["ep"], msg["rid"], datetime.fromisoformat(msg["w"]))
    elif t == "unreg":
        server.registrations.remove_remote(msg["ep"], msg["rid"])
    elif t == "val":
        server.devices.latest_values.apply_remote(msg["ep"], untagged_values(msg["v"]),
                                                  datetime.fromisoformat(msg["w"]))
    elif t == "q":
        row = _dated(msg["q"])
        request = request_from_json(json.loads(row["request"])) if row.get("request") else None
        server.devices.queue.apply_remote(queued_from_row(row), request)
    elif t == "obs":
        server.devices.observing.apply_remote(observation_from_row(_dated(msg["o"])))
    elif t == "unobs":
        server.devices.observing.remove_remote(msg["ep"], parse_paths_key(msg["p"]))
    elif t == "ev":
        server.events.publish_remote(Event(kind=msg["k"], endpoint=msg["ep"], data=msg["d"],
                                           id=msg["id"], time=datetime.fromisoformat(msg["w"])))
    else:
        return False
    return True


# --- forwarded requests -----------------------------------------------------------------------
def encode_request(request: DeviceRequest) -> str:
    return json.dumps(request_to_json(request))


def decode_request(text: str) -> DeviceRequest:
    return request_from_json(json.loads(text))


_ERRORS: dict[str, type[LwM2MError]] = {c.__name__: c for c in (
    DeviceNotFound, DeviceOffline, DeviceTimeout, DeviceError, InvalidRequest, Queued,
    RequestNotFound, LwM2MError)}


def encode_answer(result: DeviceResponse | LwM2MError) -> str:
    """A response, or the protocol error the owner raised, as JSON text."""
    if isinstance(result, LwM2MError):
        name = type(result).__name__ if type(result).__name__ in _ERRORS else "LwM2MError"
        return json.dumps({"error": name, "message": result.message,
                           "coap_code": getattr(result, "coap_code", None),
                           "request_id": getattr(result, "request_id", None)})
    if isinstance(result, ReadResponse):
        return json.dumps({"read": tagged_values(result.values)})
    if isinstance(result, DiscoverResponse):
        return json.dumps({"discover": [{"path": str(link["path"]), "attributes": link["attributes"]}
                                        for link in result.links]})
    if isinstance(result, CreateResponse):
        return json.dumps({"create": str(result.path)})
    return json.dumps({"empty": result.code})


def decode_answer(text: str) -> DeviceResponse:
    """The response :func:`encode_answer` wrote; raises the error it wrote."""
    data = json.loads(text)
    if "error" in data:
        cls = _ERRORS.get(data["error"], LwM2MError)
        message = data.get("message") or "forwarded request failed"
        if cls is Queued:
            raise Queued(data["request_id"], message)
        if cls in (DeviceError, InvalidRequest) and data.get("coap_code"):
            raise cls(message, data["coap_code"])
        raise cls(message)
    if "read" in data:
        return ReadResponse(untagged_values(data["read"]))
    if "discover" in data:
        return DiscoverResponse([{"path": Path.parse(link["path"]), "attributes": link["attributes"]}
                                 for link in data["discover"]])
    if "create" in data:
        return CreateResponse(Path.parse(data["create"]))
    return EmptyResponse(data.get("empty", "2.04"))
