"""A simulated device's flash: model slots A and B as files, the active-slot record, device state.

Layout of one device's folder:

    slot_a.wasm, slot_b.wasm    the model partitions
    slot_a.json, slot_b.json    name, version and SHA-256 of what each slot holds
    active.json                 {"seq": n, "slot": 0|1, "crc": crc32} - the active-slot record
    state.json                  firmware version and other values that survive a restart
    partial_<obj>.bin, .json    an unfinished package download of object 5 or 9: the bytes
                                received so far, and the URI and ETag they came from

Every file but the partial download is replaced atomically (temporary file, fsync, rename, fsync
of the folder), so a device killed at any moment finds either the old or the new content, never
half of one. A partial download grows by appends; its record is written atomically before the
first byte, and the package's own checks (SHA-256, signature) catch what a power loss tore.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from .errors import StorageError

__all__ = ["DeviceStorage", "SlotInfo", "PartialDownload", "PartialInfo", "write_atomic",
           "SLOT_NAMES"]

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


@dataclass(frozen=True, slots=True)
class PartialInfo:
    """Where the bytes of a partial download came from: ``etag`` in hex, "" when none was sent."""

    uri: str
    etag: str = ""
    total: int | None = None


class PartialDownload:
    """The unfinished download of one update object (5 or 9), kept so a retry resumes it.

    ``load(uri)`` gives what is held for that URI (nothing for another one), ``begin`` starts
    holding a new download (dropping any other), ``append`` adds received bytes, ``drop`` forgets.
    """

    def __init__(self, folder: FsPath, object_id: int) -> None:
        self._bin = folder / f"partial_{object_id}.bin"
        self._meta = folder / f"partial_{object_id}.json"

    def load(self, uri: str) -> tuple[PartialInfo, bytes] | None:
        """The record and bytes held for ``uri``; None when nothing (or another URI's) is held."""
        try:
            d = json.loads(self._meta.read_bytes())
            data = self._bin.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.drop()  # unreadable: start again rather than resume from doubtful bytes
            return None
        if not isinstance(d, dict) or d.get("uri") != uri or not data:
            return None
        total = d.get("total")
        return PartialInfo(uri, str(d.get("etag") or ""),
                           int(total) if isinstance(total, int) else None), data

    def begin(self, info: PartialInfo) -> None:
        """Hold a new download from its first byte (whatever was held before is dropped)."""
        self.drop()
        write_atomic(self._meta, json.dumps({"uri": info.uri, "etag": info.etag,
                                             "total": info.total}, sort_keys=True).encode())
        try:
            self._bin.write_bytes(b"")
        except OSError as e:
            raise StorageError(f"cannot write {self._bin.name}: {e.strerror}") from None

    def append(self, data: bytes) -> None:
        try:
            with open(self._bin, "ab") as f:
                f.write(data)
        except OSError as e:
            raise StorageError(f"cannot write {self._bin.name}: {e.strerror}") from None

    def drop(self) -> None:
        for p in (self._meta, self._bin):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise StorageError(f"cannot remove {p.name}: {e.strerror}") from None

    def held(self) -> int:
        """Bytes held (0 when nothing is)."""
        try:
            return self._bin.stat().st_size if self._meta.exists() else 0
        except FileNotFoundError:
            return 0


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

    # --- unfinished downloads ------------------------------------------------
    def partial(self, object_id: int) -> PartialDownload:
        """The partial download of update object ``object_id`` (5 or 9)."""
        return PartialDownload(self.folder, object_id)

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
