"""ELF model-section rewrite for SOTA: swap the Wasm module inside a firmware ELF.

Supports little-endian ELF32 (ARM) and ELF64 (x86-64). The model section (default
``.wasm_model``) is a fixed-size slot: the module, then 0xFF padding up to the section size
(docs/sota-format.md, "Model section in the firmware ELF"). ``rewrite_section`` writes only
inside that section's file range, so every other byte and every section offset stays the same.
Pure functions: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ota.errors import OtaError
from ota.wasm import module_extent

__all__ = [
    "ElfError", "ModelTooLargeError", "ElfSection", "find_section", "list_sections",
    "rewrite_section", "read_model", "slot_bytes", "DEFAULT_SECTION", "PAD_BYTE",
]

DEFAULT_SECTION = ".wasm_model"
PAD_BYTE = 0xFF
SHT_NOBITS = 8
SHN_XINDEX = 0xFFFF


class ElfError(OtaError, ValueError):
    """The file is not an ELF this module handles, or the section is missing or unusable."""


class ModelTooLargeError(ElfError):
    """The new module does not fit the space reserved for the model section."""


@dataclass(frozen=True)
class ElfSection:
    """One section header: name, type, address, and where its bytes are in the file."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True)
class _Layout:
    is64: bool
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int


def _layout(elf: bytes) -> _Layout:
    if len(elf) < 52 or elf[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (no \\x7fELF magic)")
    cls, data = elf[4], elf[5]
    if cls not in (1, 2):
        raise ElfError(f"unknown ELF class {cls}")
    if data != 1:
        raise ElfError("big-endian ELF is not supported: only little endian")
    is64 = cls == 2
    if is64:
        if len(elf) < 64:
            raise ElfError("truncated ELF64 header")
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
        want = 64
    else:
        shoff, = struct.unpack_from("<I", elf, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
        want = 40
    if shoff == 0:
        raise ElfError("ELF has no section header table")
    if shentsize != want:
        raise ElfError(f"section header entry size {shentsize}, expected {want}")
    if shoff + shentsize > len(elf):
        raise ElfError("section header table runs past the end of the file")
    if shnum == 0 or shstrndx == SHN_XINDEX:  # extended numbering lives in section 0
        s0 = _raw_header(elf, is64, shoff)
        shnum = shnum or s0[5]
        shstrndx = s0[6] if shstrndx == SHN_XINDEX else shstrndx
    if shoff + shnum * shentsize > len(elf):
        raise ElfError("section header table runs past the end of the file")
    if shstrndx >= shnum:
        raise ElfError("section name table index out of range")
    return _Layout(is64, shoff, shentsize, shnum, shstrndx)


def _raw_header(elf: bytes, is64: bool, off: int) -> tuple[int, ...]:
    """(name, type, flags, addr, offset, size, link) of the section header at ``off``."""
    if is64:
        name, typ, flags, addr, offset, size, link = struct.unpack_from("<IIQQQQI", elf, off)
    else:
        name, typ, flags, addr, offset, size, link = struct.unpack_from("<IIIIIII", elf, off)
    return name, typ, flags, addr, offset, size, link


def list_sections(elf_bytes: bytes) -> list[ElfSection]:
    """Every section of the ELF, in header order, with names resolved."""
    elf = bytes(elf_bytes)
    lay = _layout(elf)
    raws = [_raw_header(elf, lay.is64, lay.shoff + i * lay.shentsize) for i in range(lay.shnum)]
    strtab = raws[lay.shstrndx]
    str_off, str_size = strtab[4], strtab[5]
    if str_off + str_size > len(elf):
        raise ElfError("section name table runs past the end of the file")
    names = elf[str_off:str_off + str_size]
    out = []
    for i, (name_off, typ, flags, addr, offset, size, _link) in enumerate(raws):
        end = names.find(b"\0", name_off)
        if name_off >= len(names) or end < 0:
            raise ElfError(f"section {i} has a name outside the name table")
        name = names[name_off:end].decode("utf-8", "replace")
        out.append(ElfSection(i, name, typ, flags, addr, offset, size))
    return out


def find_section(elf_bytes: bytes, name: str = DEFAULT_SECTION) -> ElfSection:
    """The section called ``name``; ``ElfError`` when absent, repeated or without file bytes."""
    found = [s for s in list_sections(elf_bytes) if s.name == name]
    if not found:
        raise ElfError(f"the ELF has no section {name!r}")
    if len(found) > 1:
        raise ElfError(f"the ELF has {len(found)} sections named {name!r}")
    sec = found[0]
    if sec.type == SHT_NOBITS:
        raise ElfError(f"section {name!r} occupies no file bytes (NOBITS): it must be an "
                       "initialised array so the ELF reserves the slot")
    if sec.offset + sec.size > len(elf_bytes):
        raise ElfError(f"section {name!r} runs past the end of the file")
    for what, lo, hi in _header_ranges(bytes(elf_bytes[:64])):
        if sec.offset < hi and lo < sec.offset + sec.size:
            raise ElfError(f"section {name!r} overlaps the {what}: refusing to write it")
    return sec


def _header_ranges(head: bytes) -> list[tuple[str, int, int]]:
    """File ranges of the ELF header and the program and section header tables."""
    if head[4] == 2:
        phoff, shoff = struct.unpack_from("<QQ", head, 0x20)
        ehsize, phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHHH", head, 0x34)
    else:
        phoff, shoff = struct.unpack_from("<II", head, 0x1C)
        ehsize, phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHHH", head, 0x28)
    return [("ELF header", 0, ehsize), ("program headers", phoff, phoff + phentsize * phnum),
            ("section headers", shoff, shoff + shentsize * shnum)]


def slot_bytes(module: bytes, slot_size: int) -> bytes:
    """The section content for ``module``: the module, then 0xFF up to ``slot_size``."""
    if len(module) > slot_size:
        raise ModelTooLargeError(f"model of {len(module)} bytes does not fit the "
                                 f"{slot_size}-byte model section (partition)")
    return bytes(module) + bytes([PAD_BYTE]) * (slot_size - len(module))


def rewrite_section(elf_bytes: bytes, new_module: bytes, section: str = DEFAULT_SECTION) -> bytes:
    """A copy of the ELF whose ``section`` holds ``new_module`` padded with 0xFF.

    Only bytes inside that section's file range change; its size and every other section stay
    put. ``ModelTooLargeError`` when the module is larger than the section.
    """
    sec = find_section(elf_bytes, section)
    out = bytearray(elf_bytes)
    out[sec.offset:sec.offset + sec.size] = slot_bytes(new_module, sec.size)
    return bytes(out)


def read_model(elf_bytes: bytes, section: str = DEFAULT_SECTION) -> bytes:
    """The Wasm module stored in the ELF's model section, without its padding."""
    sec = find_section(elf_bytes, section)
    content = bytes(elf_bytes[sec.offset:sec.offset + sec.size])
    return content[:module_extent(content)]
