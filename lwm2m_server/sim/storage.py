"""A simulated device's flash: model slots A and B as files, the active-slot record, device state.

Layout of one device's folder:

    slot_a.wasm, slot_b.wasm    the model partitions
    slot_a.json, slot_b.json    name, version and SHA-256 of what each slot holds
    active.json                 {"seq": n, "slot": 0|1, "crc": crc32} - the active-slot record
    state.json                  firmware version and other values that survive a restart

Every file is replaced atomically (temporary file, fsync, rename, fsync of the folder), so a
device killed at any moment finds either the old or the new content, never half of one.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from .errors import StorageError

__all__ = ["DeviceStorage", "SlotInfo", "write_atomic", "SLOT_NAMES"]

SLOT_NAMES = ("a", "b")


def write_atomic(path: FsPath, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise StorageError(f"cannot write {path.name}: {e.strerror}") from None


def _record_crc(seq: int, slot: int) -> int:
    return zlib.crc32(f"{seq}:{slot}".encode())


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """What one model slot holds; empty strings for an empty slot."""

    name: str = ""
    version: str = ""
    sha256: str = ""


class DeviceStorage:
    """One device's folder. Reads never raise for absent files: a new device starts empty."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = FsPath(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the state folder {self.folder.name}: {e.strerror}") from None

    # --- model slots ------------------------------------------------------
    def slot_path(self, slot: int) -> FsPath:
        return self.folder / f"slot_{SLOT_NAMES[slot]}.wasm"

    def read_slot(self, slot: int) -> bytes | None:
        try:
            return self.slot_path(slot).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"cannot read slot {SLOT_NAMES[slot].upper()}: {e.strerror}") from None

    def write_slot(self, slot: int, wasm: bytes, info: SlotInfo) -> None:
        write_atomic(self.slot_path(slot), wasm)
        self._write_json(f"slot_{SLOT_NAMES[slot]}.json",
                         {"name": info.name, "version": info.version, "sha256": info.sha256})

    def slot_info(self, slot: int) -> SlotInfo:
        d = self._read_json(f"slot_{SLOT_NAMES[slot]}.json")
        if not d:
            return SlotInfo()
        return SlotInfo(str(d.get("name", "")), str(d.get("version", "")), str(d.get("sha256", "")))

    # --- active-slot record -------------------------------------------------
    def active(self) -> tuple[int, int]:
        """``(seq, slot)`` of the active-slot record; ``(0, 0)`` when none was written.

        A record whose CRC does not match raises StorageError (the caller decides the fallback).
        """
        d = self._read_json("active.json")
        if d is None:
            return 0, 0
        try:
            seq, slot, crc = int(d["seq"]), int(d["slot"]), int(d["crc"])
        except (KeyError, TypeError, ValueError):
            raise StorageError("active.json is malformed") from None
        if slot not in (0, 1) or crc != _record_crc(seq, slot):
            raise StorageError("active.json fails its CRC check")
        return seq, slot

    def set_active(self, slot: int) -> int:
        """Flip the active-slot record to ``slot``; returns the new sequence number."""
        if slot not in (0, 1):
            raise StorageError(f"no slot {slot}")
        try:
            seq = self.active()[0] + 1
        except StorageError:
            seq = 1
        self._write_json("active.json", {"seq": seq, "slot": slot, "crc": _record_crc(seq, slot)})
        return seq

    # --- other state --------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self._read_json("state.json") or {}

    def update_state(self, **values: Any) -> None:
        d = self.state()
        d.update(values)
        self._write_json("state.json", d)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        try:
            d = json.loads((self.folder / name).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StorageError(f"cannot read {name}: {e}") from None
        if not isinstance(d, dict):
            raise StorageError(f"{name} does not hold a JSON object")
        return d

    def _write_json(self, name: str, value: dict[str, Any]) -> None:
        write_atomic(self.folder / name, json.dumps(value, sort_keys=True).encode())
