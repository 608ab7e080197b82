"""Which content format to ask a device for, and what the server remembers of what worked.

DESIGN.md "Formats": the format that worked last for the device, its root link's ``ct``, then
SenML CBOR for 1.1+ and TLV for 1.0, then the others it may speak; text/plain (or opaque) for one
single-instance resource. A device that answers 4.06 or 4.15 gets the request again in the next
format (:data:`FALLBACK_CODES`), and the one that then worked is remembered
(:class:`FormatMemory`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..codecs import ContentFormat
from ..model import ObjectRegistry, Path, Value
from ..model.types import ResourceType
from .registration import Registration

__all__ = ["FALLBACK_CODES", "MULTI_FORMATS", "FormatMemory", "formats_for", "single_format"]

# Formats that carry several paths (composite operations, Send, names with instance ids).
MULTI_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_CBOR)
# A device's answers meaning "not in this format": try the next one.
FALLBACK_CODES = ("4.06", "4.15")

# Formats that carry LwM2M nodes; LwM2M JSON only decodes (1.0 devices answer in it).
_NODE_FORMATS = {int(f) for f in (ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.SENML_JSON,
                                  ContentFormat.SENML_CBOR, ContentFormat.LWM2M_JSON,
                                  ContentFormat.OLD_JSON, ContentFormat.LWM2M_CBOR)}
_DECODE_ONLY = {int(ContentFormat.LWM2M_JSON), int(ContentFormat.OLD_JSON)}


def formats_for(reg: Registration, multi: bool = False, remembered: int | None = None,
                write: bool = False) -> list[int]:
    """The content formats to try for ``reg``, best first (DESIGN.md "Formats"): the one that
    worked last, the root link's ``ct``, then SenML CBOR for 1.1+ and TLV for 1.0, then the
    others it may speak. ``multi`` keeps formats that carry several paths (composite
    operations); ``write`` drops formats the server only decodes. A ``ct`` the server cannot use
    (e.g. plain CBOR) is skipped."""
    if reg.lwm2m_version == "1.0":
        order = [ContentFormat.TLV, ContentFormat.LWM2M_JSON, ContentFormat.SENML_JSON,
                 ContentFormat.SENML_CBOR]
    else:
        order = [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV,
                 ContentFormat.LWM2M_CBOR]
    out: list[int] = []
    for f in [remembered, reg.preferred_format, *order]:
        if f is None:
            continue
        f = int(f)
        if f in out or f not in _NODE_FORMATS or (multi and f not in MULTI_FORMATS) \
                or (write and f in _DECODE_ONLY):
            continue
        out.append(f)
    return out


def single_format(registry: ObjectRegistry, path: Path, values: Mapping[Path, Value]) -> int | None:
    """text/plain (or opaque) for one single-instance resource, where it fits; else None."""
    if len(values) != 1 or path not in values or path.level < 3:
        return None
    rdef = registry.resource_for(path)
    if rdef is not None and rdef.multiple and path.is_resource:
        return None
    rtype = rdef.type if rdef else None
    if rtype is ResourceType.OPAQUE or isinstance(values[path], bytes):
        return ContentFormat.OPAQUE
    return ContentFormat.TEXT


class FormatMemory:
    """The node format that worked for each device after it refused the ones tried before it."""

    def __init__(self) -> None:
        self._formats: dict[str, int] = {}

    def remembered(self, endpoint: str) -> int | None:
        """The format to try first for ``endpoint``, if one was learnt."""
        return self._formats.get(endpoint)

    def learn(self, endpoint: str, fmt: int, refused: bool) -> None:
        """Try ``fmt`` first for ``endpoint`` from now on, if the device refused (4.06/4.15) the
        formats tried before it. A format that worked at the first try teaches nothing, and it may
        be one the operation imposed (TLV for a Create without an id, SenML for a composite):
        remembering it would replace the device's own preference (its root ``ct``) for every later
        request."""
        if refused and fmt not in (ContentFormat.TEXT, ContentFormat.OPAQUE):
            self._formats[endpoint] = fmt

    def forget(self, endpoint: str) -> None:
        """A new registration (or a device that left) starts from its own preference again."""
        self._formats.pop(endpoint, None)
