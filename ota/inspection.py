"""What an artifact file is and whether it verifies: one entry point for the CLI and uploads.

``detect_kind`` guesses firmware / model / sota from the first bytes; ``inspect_artifact`` runs the
checks for a kind (MCUboot hash and signature, Wasm model ABI, SOTA verification) and returns
JSON-friendly metadata, or raises the ``OtaError`` of the failed check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from ota import elf as _elf
from ota import mcuboot as _mcuboot
from ota import sota as _sota
from ota import wasm as _wasm
from ota.errors import OtaError
from ota.keys import PublicKey

__all__ = ["ARTIFACT_KINDS", "ArtifactKindError", "detect_kind", "inspect_artifact"]

ARTIFACT_KINDS: tuple[str, ...] = ("firmware", "model", "sota")


class ArtifactKindError(OtaError, ValueError):
    """An unknown artifact kind was asked for."""


def detect_kind(data: bytes) -> str:
    """``"sota"``, ``"model"`` or ``"firmware"`` (MCUboot, ELF or raw image) from the magic."""
    if data[:4] == _sota.MAGIC:
        return "sota"
    if data[:4] == _wasm.WASM_MAGIC:
        return "model"
    return "firmware"


def _firmware(data: bytes, public_key: PublicKey | None) -> dict[str, Any]:
    if _mcuboot.is_mcuboot_image(data):
        img = _mcuboot.verify_image(data, public_key)
        return {**img.to_dict(), "signature_verified": public_key is not None}
    if data[:4] == b"\x7fELF":
        sections = _elf.list_sections(data)
        out: dict[str, Any] = {"format": "elf", "sections": len(sections)}
        model = next((s for s in sections if s.name == _elf.DEFAULT_SECTION), None)
        if model is not None:
            try:
                module_size: int | None = len(_elf.read_model(data))
            except _wasm.WasmError:
                module_size = None  # an empty (erased) or invalid slot
            out["model_section"] = {"name": model.name, "size": model.size,
                                    "module_size": module_size}
        return out
    return {"format": "raw"}


def inspect_artifact(
    data: bytes,
    kind: str | None = None,
    *,
    public_key: PublicKey | None = None,
    slot_size: int | None = None,
    installed_version: str | None = None,
    allowed_imports: Iterable[str] = frozenset(),
) -> dict[str, Any]:
    """Check ``data`` as ``kind`` (detected when None) and describe it.

    firmware: an MCUboot image must verify (hash; signature too when ``public_key`` is given);
    other firmware is reported as ELF or raw. model: the Wasm checks of ``ota.wasm``. sota:
    with ``public_key`` the full ``verify_package``; without, only the format is parsed and
    ``signature_verified`` is False.
    """
    kind = detect_kind(data) if kind is None else kind
    if kind not in ARTIFACT_KINDS:
        raise ArtifactKindError(f"unknown artifact kind {kind!r}: use one of "
                                f"{', '.join(ARTIFACT_KINDS)}")
    info: dict[str, Any]
    if kind == "firmware":
        info = _firmware(data, public_key)
    elif kind == "model":
        info = {"format": "wasm",
                **_wasm.inspect_module(data, allowed_imports=allowed_imports).to_dict()}
    else:
        if public_key is None:
            pkg = _sota.parse_package(data)
        else:
            pkg = _sota.verify_package(data, public_key, slot_size=slot_size,
                                       installed_version=installed_version,
                                       allowed_imports=allowed_imports)
        info = {"format": "sota", "manifest": pkg.manifest.to_dict(),
                "kid": None if pkg.kid is None else pkg.kid.hex(),
                "signature_verified": public_key is not None}
    return {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **info}
