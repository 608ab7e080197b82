"""Checks on inference Wasm modules before they go to a device (docs/model-abi.md).

``inspect_module`` parses the binary structure (magic, version, section ids, order and sizes,
the type/import/function/memory/export/code sections), refuses imports outside an allowlist
and modules that lack the model ABI's exports (with the right kinds and signatures), and
reports size, memory pages and exports. ``module_extent`` finds where a module ends inside a
model section padded with 0xFF (docs/sota-format.md, "Model section in the firmware ELF").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ota.errors import OtaError

__all__ = [
    "WasmError", "WasmInfo", "Import", "inspect_module", "module_extent",
    "DEFAULT_EXPORTS", "ABI_SIGNATURES", "DEFAULT_MAX_MEMORY_PAGES", "WASM_MAGIC", "PAGE_SIZE",
]

WASM_MAGIC = b"\0asm"
WASM_VERSION = b"\x01\0\0\0"
PAGE_SIZE = 65536
DEFAULT_EXPORTS: tuple[str, ...] = ("memory", "input_buffer", "input_size", "infer")
DEFAULT_MAX_MEMORY_PAGES = 1

_I32, _I64, _F32, _F64, _V128, _FUNCREF, _EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F
_VALTYPES = {_I32: "i32", _I64: "i64", _F32: "f32", _F64: "f64", _V128: "v128",
             _FUNCREF: "funcref", _EXTERNREF: "externref"}
# Signatures the model ABI fixes: (params, results) as value type names.
ABI_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "input_buffer": ((), ("i32",)),
    "input_size": ((), ("i32",)),
    "infer": ((), ("i32",)),
    "output_score": ((), ("f32",)),
}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_SECTION_NAMES = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
                  6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
                  12: "datacount", 13: "tag"}
# Position of each non-custom section in the order the spec requires.
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11,
                 10: 12, 11: 13}
_PADDING = 0xFF


class WasmError(OtaError, ValueError):
    """A Wasm module is malformed or breaks the model ABI; the message says how."""


@dataclass(frozen=True)
class Import:
    """One import of a module: ``module.name`` of a kind (func, table, memory, global, tag)."""

    module: str
    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name} ({self.kind})"


@dataclass(frozen=True)
class WasmInfo:
    """What ``inspect_module`` found: a summary fit for artifact metadata."""

    size: int
    sections: tuple[str, ...]
    imports: tuple[Import, ...]
    exports: dict[str, str]  # name -> kind
    memory_pages: int  # initial pages of memory 0 (0 when the module has none)
    memory_max_pages: int | None
    functions: int

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (artifact metadata, CLI output)."""
        return {
            "size": self.size, "sections": list(self.sections),
            "imports": [str(i) for i in self.imports], "exports": dict(self.exports),
            "memory_pages": self.memory_pages, "memory_max_pages": self.memory_max_pages,
            "functions": self.functions,
        }


class _Reader:
    """Cursor over a byte range with LEB128 and vector helpers; errors name the offset."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, where: str = "") -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end
        self.where = where

    def fail(self, msg: str) -> WasmError:
        where = f" in the {self.where} section" if self.where else ""
        return WasmError(f"malformed Wasm module{where} at byte {self.pos}: {msg}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(f"needs {n} bytes, only {self.end - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        result = shift = 0
        for _ in range(5):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if result > 0xFFFFFFFF:
                    raise self.fail("LEB128 number exceeds 32 bits")
                return result
            shift += 7
        raise self.fail("LEB128 number longer than 5 bytes")

    def name(self) -> str:
        raw = self.bytes(self.u32())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not valid UTF-8") from None

    def valtype(self) -> str:
        b = self.byte()
        if b not in _VALTYPES:
            raise self.fail(f"unknown value type 0x{b:02x}")
        return _VALTYPES[b]

    def limits(self) -> tuple[int, int | None]:
        flag = self.byte()
        if flag not in (0, 1):
            raise self.fail(f"unsupported limits flag 0x{flag:02x}")
        lo = self.u32()
        hi = self.u32() if flag == 1 else None
        if hi is not None and hi < lo:
            raise self.fail(f"limits maximum {hi} below minimum {lo}")
        return lo, hi

    def count(self, min_item_size: int = 1) -> int:
        n = self.u32()
        if n * min_item_size > self.end - self.pos:
            raise self.fail(f"vector of {n} items cannot fit in {self.end - self.pos} bytes")
        return n

    def done(self) -> None:
        if self.pos != self.end:
            raise self.fail(f"{self.end - self.pos} unexpected bytes at the end of the section")


def _sections(data: bytes, *, stop_at_padding: bool = False) -> Iterator[tuple[int, int, int]]:
    """Yield (section id, payload start, payload end); checks header, ids, order and sizes."""
    if len(data) < 8 or data[:4] != WASM_MAGIC:
        raise WasmError("not a Wasm module: it does not start with the magic \\0asm")
    if data[4:8] != WASM_VERSION:
        raise WasmError(f"unsupported Wasm binary version {data[4:8].hex()}: expected 01000000")
    r = _Reader(data, 8)
    last_rank = 0
    while r.pos < len(data):
        start = r.pos
        sid = r.byte()
        if stop_at_padding and sid == _PADDING:
            r.pos = start
            break
        if sid not in _SECTION_NAMES:
            r.pos = start
            raise r.fail(f"unknown section id {sid}")
        size = r.u32()
        if size > len(data) - r.pos:
            raise r.fail(f"{_SECTION_NAMES[sid]} section of {size} bytes runs past the end "
                         f"of the module ({len(data) - r.pos} bytes left)")
        if sid != 0:
            rank = _SECTION_RANK[sid]
            if rank <= last_rank:
                raise r.fail(f"{_SECTION_NAMES[sid]} section out of order or repeated")
            last_rank = rank
        else:
            _Reader(data, r.pos, r.pos + size, "custom").name()
        yield sid, r.pos, r.pos + size
        r.pos += size


def module_extent(section_bytes: bytes) -> int:
    """Length of the Wasm module at the start of a model section padded with 0xFF bytes.

    The module's own section structure gives its length: sections follow one another until a
    0xFF byte (never a valid section id) or the end of the section.
    """
    end = 8
    for _sid, _start, stop in _sections(section_bytes, stop_at_padding=True):
        end = stop
    return end


def inspect_module(
    data: bytes,
    *,
    allowed_imports: Iterable[str] = frozenset(),
    required_exports: Iterable[str] = DEFAULT_EXPORTS,
    max_memory_pages: int | None = DEFAULT_MAX_MEMORY_PAGES,
) -> WasmInfo:
    """Check a model module and summarise it; raise ``WasmError`` on anything else.

    ``allowed_imports`` holds ``"module.name"`` strings (or ``"module.*"``); any other import is
    refused. Every name in ``required_exports`` must be exported (``memory`` as a memory, the
    rest as functions with the model ABI's signatures). ``max_memory_pages`` caps the initial
    size of the memory (None: no cap).
    """
    data = bytes(data)
    allowed = frozenset(allowed_imports)
    types: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    func_types: list[int] = []
    imports: list[Import] = []
    memories: list[tuple[int, int | None]] = []
    exports: dict[str, tuple[str, int]] = {}
    seen: list[str] = []
    code_count: int | None = None
    for sid, start, end in _sections(data):
        name = _SECTION_NAMES[sid]
        seen.append(name)
        r = _Reader(data, start, end, name)
        if sid == 1:
            for _ in range(r.count()):
                if r.byte() != 0x60:
                    raise r.fail("function type does not start with 0x60")
                params = tuple(r.valtype() for _ in range(r.count()))
                results = tuple(r.valtype() for _ in range(r.count()))
                types.append((params, results))
        elif sid == 2:
            for _ in range(r.count(4)):
                mod, field, kind = r.name(), r.name(), r.byte()
                if kind == 0:
                    func_types.append(r.u32())
                elif kind == 1:
                    r.valtype()
                    r.limits()
                elif kind == 2:
                    memories.append(r.limits())
                elif kind == 3:
                    r.valtype()
                    r.byte()
                elif kind == 4:
                    r.byte()
                    r.u32()
                else:
                    raise r.fail(f"unknown import kind {kind}")
                imports.append(Import(mod, field, _KINDS[kind]))
        elif sid == 3:
            func_types.extend(r.u32() for _ in range(r.count()))
        elif sid == 5:
            memories.extend(r.limits() for _ in range(r.count(2)))
        elif sid == 7:
            for _ in range(r.count(3)):
                ename, kind, index = r.name(), r.byte(), r.u32()
                if kind not in _KINDS:
                    raise r.fail(f"export {ename!r} has unknown kind {kind}")
                if ename in exports:
                    raise r.fail(f"export name {ename!r} appears twice")
                exports[ename] = (_KINDS[kind], index)
        elif sid == 10:
            code_count = r.count()
            for _ in range(code_count):
                r.bytes(r.u32())
        else:
            continue
        r.done()

    n_imported_funcs = sum(1 for i in imports if i.kind == "func")
    n_defined = len(func_types) - n_imported_funcs
    if (code_count or 0) != n_defined:
        raise WasmError(f"malformed Wasm module: {n_defined} functions declared but "
                        f"{code_count or 0} function bodies in the code section")
    for idx in func_types:
        if idx >= len(types):
            raise WasmError(f"malformed Wasm module: function uses type {idx}, "
                            f"only {len(types)} types are defined")

    refused = [i for i in imports
               if f"{i.module}.{i.name}" not in allowed and f"{i.module}.*" not in allowed]
    if refused:
        raise WasmError("imports outside the allowlist: " + ", ".join(map(str, refused))
                        + (" (none are allowed)" if not allowed else ""))

    for req in required_exports:
        if req not in exports:
            raise WasmError(f"required export {req!r} is missing "
                            f"(the module exports: {', '.join(sorted(exports)) or 'nothing'})")
        got_kind = exports[req][0]
        want_kind = "memory" if req == "memory" else "func"
        if got_kind != want_kind:
            raise WasmError(f"export {req!r} is a {got_kind}, the model ABI needs a {want_kind}")
    for ename, (ekind, index) in exports.items():
        if ekind == "func" and index >= len(func_types):
            raise WasmError(f"export {ename!r} names function {index}, which does not exist")
        if ekind == "memory" and index >= len(memories):
            raise WasmError(f"export {ename!r} names memory {index}, which does not exist")
        if ekind == "func" and ename in ABI_SIGNATURES:
            sig = types[func_types[index]]
            want = ABI_SIGNATURES[ename]
            if sig != want:
                raise WasmError(f"export {ename!r} has signature {_sig(sig)}, the model ABI "
                                f"needs {_sig(want)}")

    pages, max_pages = memories[0] if memories else (0, None)
    if max_memory_pages is not None and pages > max_memory_pages:
        raise WasmError(f"module needs {pages} memory pages ({pages * PAGE_SIZE} bytes), "
                        f"at most {max_memory_pages} allowed")
    return WasmInfo(
        size=len(data), sections=tuple(seen), imports=tuple(imports),
        exports={k: v[0] for k, v in exports.items()}, memory_pages=pages,
        memory_max_pages=max_pages, functions=n_defined,
    )


def _sig(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return f"({', '.join(sig[0])}) -> ({', '.join(sig[1])})"
