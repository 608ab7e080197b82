"""The bootstrap interface's content (LwM2M 1.1 TS Core §6.1; objects 0 and 1 of TS
Transport/Core appendix E): what one endpoint is given, and the Security and Server instances
that carry it.

Pure values and functions; ``coap/bootstrap.py`` sends them (Bootstrap-Delete, -Discover,
-Write, -Finish) and the store keeps the configuration as JSON.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from ..model import Path, Value

__all__ = [
    "SECURITY_MODES",
    "BootstrapConfig",
    "BootstrapError",
    "config_from_json",
    "free_instance",
    "instances_in_links",
    "security_values",
    "server_values",
]

# Security (/0) resource 2 "Security Mode" (TS Core E.1): 0 PSK, 1 RPK, 2 certificate, 3 NoSec.
SECURITY_MODES = {"psk": 0, "nosec": 3}
_BINDINGS = {"U", "UQ"}


class BootstrapError(ValueError):
    """A bootstrap configuration or exchange that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """What the bootstrap server writes to a device: one LwM2M server account.

    ``server_uri`` empty means "this server" (coaps for psk, coap for nosec). With mode psk the
    device gets the endpoint's DM credential (generated and stored when it has none); a
    ``psk_identity``/``psk_key_hex`` given here is stored as that credential, sealed, and not
    kept in the configuration.
    """

    security_mode: str = "psk"
    server_uri: str = ""
    short_server_id: int = 1
    lifetime: int = 300
    binding: str = "U"
    psk_identity: str | None = None
    psk_key_hex: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def public_json(self) -> dict[str, Any]:
        """The configuration without key material (for GET and listings)."""
        out = self.to_json()
        if out.pop("psk_key_hex", None) is not None:
            out["psk_key"] = "(set)"
        return out


def config_from_json(data: dict[str, Any]) -> BootstrapConfig:
    """A validated BootstrapConfig; BootstrapError for unknown fields or bad values."""
    if not isinstance(data, dict):
        raise BootstrapError("bootstrap configuration must be a JSON object")
    known = set(BootstrapConfig.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise BootstrapError(f"unknown bootstrap settings: {', '.join(sorted(unknown))}")
    try:
        cfg = BootstrapConfig(**data)
    except TypeError as e:
        raise BootstrapError(str(e)) from None
    if cfg.security_mode not in SECURITY_MODES:
        raise BootstrapError(f"security_mode must be one of {', '.join(SECURITY_MODES)}, "
                             f"got {cfg.security_mode!r}")
    if cfg.server_uri:
        parts = urlsplit(cfg.server_uri)
        want = "coaps" if cfg.security_mode == "psk" else "coap"
        if parts.scheme != want or not parts.hostname:
            raise BootstrapError(f"server_uri must be {want}://HOST:PORT for mode "
                                 f"{cfg.security_mode}, got {cfg.server_uri!r}")
    if not isinstance(cfg.short_server_id, int) or not 1 <= cfg.short_server_id <= 65534:
        raise BootstrapError("short_server_id must be 1..65534 (TS Core E.2)")
    if not isinstance(cfg.lifetime, int) or cfg.lifetime < 1:
        raise BootstrapError("lifetime must be a positive number of seconds")
    if cfg.binding not in _BINDINGS:
        raise BootstrapError(f"binding must be U or UQ, got {cfg.binding!r}")
    if (cfg.psk_identity is None) != (cfg.psk_key_hex is None):
        raise BootstrapError("give psk_identity and psk_key together, or neither")
    if cfg.psk_identity is not None and cfg.security_mode != "psk":
        raise BootstrapError("psk_identity and psk_key only go with security_mode psk")
    if cfg.psk_key_hex is not None:
        try:
            key = bytes.fromhex(cfg.psk_key_hex)
        except (ValueError, TypeError):
            raise BootstrapError("psk_key_hex must be hexadecimal") from None
        if not 16 <= len(key) <= 64:
            raise BootstrapError("psk_key_hex must be 16..64 bytes (32..128 hex digits)")
    return cfg


def security_values(instance: int, uri: str, mode: str, identity: bytes, key: bytes,
                    short_server_id: int) -> dict[Path, Value]:
    """The resources of a Security (/0) instance for an LwM2M server account (TS Core E.1).

    Mandatory resources 0..5 are all present (empty opaque where a mode has no use for them);
    12 "Bootstrap-Server Account Timeout" is left out (optional).
    """
    p = Path.of
    return {p(0, instance, 0): uri, p(0, instance, 1): False, p(0, instance, 2): SECURITY_MODES[mode],
            p(0, instance, 3): identity, p(0, instance, 4): b"", p(0, instance, 5): key,
            p(0, instance, 10): short_server_id}


def server_values(instance: int, cfg: BootstrapConfig) -> dict[Path, Value]:
    """The resources of a Server (/1) instance (TS Core E.2): SSID, lifetime, storing, binding."""
    p = Path.of
    return {p(1, instance, 0): cfg.short_server_id, p(1, instance, 1): cfg.lifetime,
            p(1, instance, 6): False, p(1, instance, 7): cfg.binding}


_LINK_PATH = re.compile(r"<(/[0-9]+(?:/[0-9]+)*)>")


def instances_in_links(payload: str, object_id: int) -> set[int]:
    """Instance ids of ``object_id`` in a Bootstrap-Discover answer (link format)."""
    out = set()
    for m in _LINK_PATH.finditer(payload):
        parts = m.group(1).strip("/").split("/")
        if len(parts) >= 2 and int(parts[0]) == object_id:
            out.add(int(parts[1]))
    return out


def free_instance(taken: set[int]) -> int:
    """The lowest instance id not in ``taken``."""
    i = 0
    while i in taken:
        i += 1
    return i
