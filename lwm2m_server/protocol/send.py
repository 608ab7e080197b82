"""The Send operation (LwM2M 1.1 §6.4.6, POST /dp): values a device reports on its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from ..codecs import CodecError, codec_for
from ..events import EventBus, new_event
from ..metrics import SEND
from ..model import NodeError, ObjectRegistry, Path, PathError, Value, ValueTypeError
from .errors import DeviceNotFound, InvalidRequest
from .formats import MULTI_FORMATS
from .jsonable import plain_values
from .latest import LatestValues
from .registration import RegistrationManager

__all__ = ["SendReceiver"]


class SendReceiver:
    """Decodes a Send, keeps its values as the latest and publishes a ``send`` event."""

    def __init__(self, registrations: RegistrationManager, registry: ObjectRegistry,
                 latest: LatestValues, events: EventBus, on_answer: Callable[[str], None]) -> None:
        self._registrations = registrations
        self._registry = registry
        self._latest = latest
        self._events = events
        self._on_answer = on_answer

    async def handle(self, address: tuple[str, int], payload: bytes, content_format: int | None) -> str:
        """Take one Send from ``address``; returns the endpoint.

        Raises DeviceNotFound (no registration from that address), InvalidRequest (payload or
        content format not usable); nothing is stored then.
        """
        reg = self._registrations.by_address(address)
        if reg is None:
            SEND.inc("unknown_device")
            raise DeviceNotFound(f"no registration from {address[0]}:{address[1]}")
        if content_format is None or int(content_format) not in MULTI_FORMATS:
            SEND.inc("bad_format")
            raise InvalidRequest("Send needs SenML CBOR (112), SenML JSON (110) or LwM2M CBOR (11544), "
                                 f"got content format {content_format}", "4.15")
        try:
            records = codec_for(content_format).decode_timestamped(payload, self._registry)  # type: ignore[attr-defined]
        except (CodecError, NodeError, ValueTypeError, PathError) as e:
            SEND.inc("bad_payload")
            raise InvalidRequest(f"Send payload does not decode: {e}") from None
        merged: dict[Path, Value] = {}
        for ts, values in records:
            when = datetime.fromtimestamp(ts, timezone.utc) if ts else None
            self._latest.put(reg.endpoint, values, when)
            merged.update(values)
        self._on_answer(reg.endpoint)
        SEND.inc("ok")
        self._events.publish(new_event("send", reg.endpoint, values=plain_values(merged),
                                       records=[{"time": ts, "values": plain_values(v)} for ts, v in records]))
        return reg.endpoint
