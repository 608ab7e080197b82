"""SOTA packages: one signed inference Wasm module for a device's model partition.

The byte format is docs/sota-format.md (version 1): a 12-byte header, a COSE_Sign1 manifest
(CBOR, integer keys) and the payload. ``build_package`` writes one; ``verify_package`` is the one
verifier the server (at upload) and the simulator call. It checks in the documented order and
raises the ``SotaError`` subclass whose ``reason`` names the failed step.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cbor2

from ota import keys as _keys
from ota import version as _version
from ota.errors import OtaError
from ota.keys import PrivateKey, PublicKey
from ota.wasm import DEFAULT_EXPORTS, WasmError, inspect_module

__all__ = [
    "SotaError", "SotaFormatError", "SotaOversizeError", "SotaSignatureError", "SotaHashError",
    "SotaDowngradeError", "SotaWasmError", "SotaSelftestError",
    "Manifest", "SelfTest", "SotaPackage", "build_package", "parse_package", "verify_package",
    "MAGIC", "FORMAT_VERSION", "HEADER_SIZE", "MAX_MANIFEST_SIZE", "DEFAULT_SECTION",
    "ALG_EDDSA", "ALG_ES256", "DEVICE_ALGS", "signature_alg", "package_alg",
]

MAGIC = b"SOTA"
FORMAT_VERSION = 1
HEADER_SIZE = 12
MAX_MANIFEST_SIZE = 16384
DEFAULT_SECTION = ".wasm_model"
ALG_EDDSA = -8
ALG_ES256 = -7
COSE_SIGN1_TAG = 18
_HEADER = struct.Struct("<4sB3sI")
_ALG_FOR_KIND = {"ed25519": ALG_EDDSA, "p256": ALG_ES256}
# What the Zephyr firmware's C core verifies: mbed TLS (PSA Crypto) has no Ed25519.
DEVICE_ALGS = frozenset({ALG_ES256})
ALG_NAMES = {ALG_ES256: "ES256 (P-256)", ALG_EDDSA: "EdDSA (Ed25519)"}

# Limits of the device's decoder (firmware core, sota_manifest.cddl): a manifest outside them
# is refused here too, so the server and the device always give the same verdict.
MAX_NAME_BYTES, MAX_VERSION_BYTES, MAX_SECTION_BYTES, MAX_EXPORT_BYTES = 64, 32, 64, 64
MAX_EXPORTS, MAX_SELFTEST_INPUTS = 16, 64
_U32, _U64, _I64 = 2 ** 32 - 1, 2 ** 64 - 1, 2 ** 63

# Manifest map keys (docs/sota-format.md).
K_NAME, K_VERSION, K_SECTION, K_SLOT_SIZE, K_PAYLOAD_SIZE, K_SHA256, K_EXPORTS = 1, 2, 3, 4, 5, 6, 7
K_SELFTEST, K_CREATED = 8, 9
K_ST_INPUT, K_ST_EXPECTED = 1, 2


class SotaError(OtaError):
    """A SOTA package was refused; ``reason`` is the step that failed (docs/sota-format.md)."""

    reason: ClassVar[str] = "format"


class SotaFormatError(SotaError):
    """Magic, format version, lengths, CBOR structure, map types or trailing bytes are wrong."""

    reason = "format"


class SotaOversizeError(SotaError):
    """The payload does not fit the slot (the manifest's or the receiver's)."""

    reason = "oversize"


class SotaSignatureError(SotaError):
    """Unknown algorithm, kid mismatch, or the signature fails with the trusted key."""

    reason = "signature"


class SotaHashError(SotaError):
    """The payload's SHA-256 differs from the manifest's."""

    reason = "hash"


class SotaDowngradeError(SotaError):
    """The package's version is not greater than the installed one."""

    reason = "downgrade"


class SotaWasmError(SotaError):
    """The payload is not a valid model module (structure, imports, exports)."""

    reason = "wasm"


class SotaSelftestError(SotaError):
    """The self-test input does not give the expected class (raised by runtimes, not here)."""

    reason = "selftest"


def _finite_float32(x: float) -> bool:
    try:
        return math.isfinite(x) and math.isfinite(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return False


def _check_limits(m: Manifest) -> None:
    """Refuse what the device's decoder cannot hold (sota_manifest.cddl); shared by build and
    parse so ota never writes, nor accepts, a manifest that the device would refuse."""
    texts = [("name", m.name, MAX_NAME_BYTES), ("version", m.version, MAX_VERSION_BYTES),
             ("section", m.section, MAX_SECTION_BYTES)]
    texts += [("export", e, MAX_EXPORT_BYTES) for e in m.exports]
    for label, text, limit in texts:
        raw = text.encode("utf-8", "surrogatepass")
        if not 1 <= len(raw) <= limit or b"\0" in raw:
            raise SotaFormatError(f"manifest {label} {text!r} must be 1..{limit} bytes of UTF-8 "
                                  f"without NUL")
    if len(m.exports) > MAX_EXPORTS:
        raise SotaFormatError(f"manifest lists {len(m.exports)} exports, at most {MAX_EXPORTS}")
    if m.slot_size > _U64 or m.payload_size > _U32 or (m.created or 0) > _U64:
        raise SotaFormatError("manifest slot_size and created must fit 64 bits, payload_size 32")


@dataclass(frozen=True)
class SelfTest:
    """Input features and the class the model must answer for them."""

    input: tuple[float, ...]
    expected: int

    @classmethod
    def of(cls, value: SelfTest | Mapping[str, Any] | Sequence[Any]) -> SelfTest:
        """Accept a SelfTest, ``{"input": [...], "expected": n}`` or ``(input, expected)``."""
        if isinstance(value, SelfTest):
            return value
        if isinstance(value, Mapping):
            inp, exp = value.get("input"), value.get("expected")
        else:
            inp, exp = value
        if not isinstance(inp, Iterable) or type(exp) is not int or exp < 0:
            raise SotaFormatError("selftest needs an input list of numbers and an expected class >= 0")
        try:
            floats = tuple(float(x) for x in inp)
        except (TypeError, ValueError, OverflowError):
            raise SotaFormatError("selftest input must be a list of numbers") from None
        if not floats or not all(_finite_float32(x) for x in floats):
            raise SotaFormatError("selftest input must be a non-empty list of numbers that are "
                                  "finite in single precision (the device computes in float)")
        if len(floats) > MAX_SELFTEST_INPUTS or exp > _U32:
            raise SotaFormatError(f"selftest: at most {MAX_SELFTEST_INPUTS} inputs and an "
                                  f"expected class below 2**32")
        return cls(floats, exp)


@dataclass(frozen=True)
class Manifest:
    """The signed manifest map of a package."""

    name: str
    version: str
    section: str
    slot_size: int
    payload_size: int
    sha256: bytes
    exports: tuple[str, ...]
    selftest: SelfTest | None = None
    created: int | None = None

    def to_cbor_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {
            K_NAME: self.name, K_VERSION: self.version, K_SECTION: self.section,
            K_SLOT_SIZE: self.slot_size, K_PAYLOAD_SIZE: self.payload_size,
            K_SHA256: self.sha256, K_EXPORTS: list(self.exports),
        }
        if self.selftest is not None:
            m[K_SELFTEST] = {K_ST_INPUT: list(self.selftest.input),
                             K_ST_EXPECTED: self.selftest.expected}
        if self.created is not None:
            m[K_CREATED] = self.created
        return m

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (artifact metadata, CLI output)."""
        return {
            "name": self.name, "version": self.version, "section": self.section,
            "slot_size": self.slot_size, "payload_size": self.payload_size,
            "sha256": self.sha256.hex(), "exports": list(self.exports),
            "selftest": None if self.selftest is None else
            {"input": list(self.selftest.input), "expected": self.selftest.expected},
            "created": self.created,
        }


@dataclass(frozen=True)
class SotaPackage:
    """A parsed package: the manifest, the payload (the Wasm module) and the COSE header."""

    manifest: Manifest
    payload: bytes
    alg: int = ALG_EDDSA
    kid: bytes | None = None
    protected: bytes = field(default=b"", repr=False)
    manifest_bytes: bytes = field(default=b"", repr=False)
    signature: bytes = field(default=b"", repr=False)


def signature_alg(key: PrivateKey | PublicKey) -> int:
    """The COSE alg a key signs SOTA manifests with: ALG_ES256 (P-256) or ALG_EDDSA."""
    return _ALG_FOR_KIND[_keys.key_kind(key)]


def package_alg(data: bytes) -> int:
    """The COSE alg a package says it is signed with (format checked, signature not)."""
    return parse_package(data).alg


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def build_package(
    module: bytes,
    *,
    name: str,
    version: str,
    private_key: PrivateKey,
    slot_size: int,
    section: str = DEFAULT_SECTION,
    exports: Sequence[str] = DEFAULT_EXPORTS,
    selftest: SelfTest | Mapping[str, Any] | Sequence[Any] | None = None,
    created: int | None = None,
    allowed_imports: Iterable[str] = frozenset(),
) -> bytes:
    """Sign ``module`` into a SOTA package for a slot of ``slot_size`` bytes.

    The module is checked first (``inspect_module`` with ``exports``), so a package that would be
    refused on the device is never built. ``created`` defaults to now.
    """
    module = bytes(module)
    if not isinstance(name, str) or not name:
        raise SotaFormatError("package name must be non-empty text")
    try:
        _version.parse(version)
    except _version.VersionError as e:
        raise SotaFormatError(str(e)) from None
    if type(slot_size) is not int or slot_size <= 0:
        raise SotaFormatError(f"slot size must be a positive integer, got {slot_size!r}")
    if len(module) > slot_size:
        raise SotaOversizeError(f"module of {len(module)} bytes does not fit the "
                                f"{slot_size}-byte slot")
    try:
        inspect_module(module, allowed_imports=allowed_imports, required_exports=exports)
    except WasmError as e:
        raise SotaWasmError(str(e)) from None
    manifest = Manifest(
        name=name, version=version, section=section, slot_size=slot_size,
        payload_size=len(module), sha256=hashlib.sha256(module).digest(),
        exports=tuple(exports), selftest=None if selftest is None else SelfTest.of(selftest),
        created=int(time.time()) if created is None else created,
    )
    _check_limits(manifest)
    protected = cbor2.dumps({1: signature_alg(private_key)})
    payload = cbor2.dumps(manifest.to_cbor_map())
    signature = _keys.sign_raw(private_key, _sig_structure(protected, payload))
    cose = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG,
                                     [protected, {4: _keys.key_id(private_key)}, payload,
                                      signature]))
    if len(cose) > MAX_MANIFEST_SIZE:
        raise SotaFormatError(f"manifest of {len(cose)} bytes exceeds {MAX_MANIFEST_SIZE}")
    return _HEADER.pack(MAGIC, FORMAT_VERSION, b"\0\0\0", len(cose)) + cose + module


def _loads_exact(data: bytes, what: str) -> Any:
    """Decode one CBOR item that must use all of ``data``."""
    fp = io.BytesIO(data)
    try:
        # Repeated map keys are refused (the device's decoder refuses them too), not folded.
        value = cbor2.CBORDecoder(fp, allow_duplicate_keys=False).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as e:
        raise SotaFormatError(f"{what} is not valid CBOR: {e}") from None
    if fp.tell() != len(data):
        raise SotaFormatError(f"{what}: {len(data) - fp.tell()} bytes after the CBOR item")
    return value


def _text(m: Mapping[int, Any], key: int, label: str) -> str:
    v = m.get(key)
    if not isinstance(v, str) or not v:
        raise SotaFormatError(f"manifest {label} (key {key}) must be non-empty text")
    return v


def _uint(m: Mapping[int, Any], key: int, label: str) -> int:
    v = m.get(key)
    if type(v) is not int or v < 0:
        raise SotaFormatError(f"manifest {label} (key {key}) must be an unsigned integer")
    return v


def _decode_manifest(raw: Any) -> Manifest:
    if not isinstance(raw, Mapping):
        raise SotaFormatError("manifest payload must be a CBOR map")
    unknown = [k for k in raw if type(k) is not int or not 1 <= k <= K_CREATED]
    if unknown:
        raise SotaFormatError(f"manifest has unknown keys {unknown!r}")
    if list(raw) != sorted(raw):
        raise SotaFormatError(f"manifest keys must be in ascending order, got {list(raw)!r}")
    for key in range(1, 8):
        if key not in raw:
            raise SotaFormatError(f"manifest lacks required key {key}")
    version = _text(raw, K_VERSION, "version")
    try:
        _version.parse(version)
    except _version.VersionError as e:
        raise SotaFormatError(f"manifest version: {e}") from None
    sha = raw[K_SHA256]
    if not isinstance(sha, bytes) or len(sha) != 32:
        raise SotaFormatError("manifest sha256 (key 6) must be 32 bytes")
    exports = raw[K_EXPORTS]
    if not isinstance(exports, (list, tuple)) or not all(isinstance(e, str) and e for e in exports):
        raise SotaFormatError("manifest exports (key 7) must be an array of text")
    selftest = None
    if K_SELFTEST in raw:
        st = raw[K_SELFTEST]
        if (not isinstance(st, Mapping) or list(st) != [K_ST_INPUT, K_ST_EXPECTED]
                or not isinstance(st[K_ST_INPUT], (list, tuple))
                or not all(type(x) is float or (type(x) is int and -_I64 <= x < _I64)
                           for x in st[K_ST_INPUT])):
            raise SotaFormatError("manifest selftest (key 8) must be {1: [numbers], 2: uint}")
        selftest = SelfTest.of((st[K_ST_INPUT], st[K_ST_EXPECTED]))
    manifest = Manifest(
        name=_text(raw, K_NAME, "name"), version=version,
        section=_text(raw, K_SECTION, "section"),
        slot_size=_uint(raw, K_SLOT_SIZE, "slot_size"),
        payload_size=_uint(raw, K_PAYLOAD_SIZE, "payload_size"),
        sha256=sha, exports=tuple(exports), selftest=selftest,
        created=_uint(raw, K_CREATED, "created") if K_CREATED in raw else None,
    )
    _check_limits(manifest)
    return manifest


def parse_package(data: bytes) -> SotaPackage:
    """Step 1 of verification (``format``) only: split and decode, trusting nothing yet.

    Use ``verify_package`` before acting on a package; this is for inspection tools.
    """
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise SotaFormatError(f"not a SOTA package: {len(data)} bytes, the header alone is 12")
    magic, fmt, reserved, mlen = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SotaFormatError("not a SOTA package: magic is not 'SOTA'")
    if fmt != FORMAT_VERSION:
        raise SotaFormatError(f"unsupported SOTA format version {fmt}, expected 1")
    if reserved != b"\0\0\0":
        raise SotaFormatError("reserved header bytes must be zero")
    if not 1 <= mlen <= MAX_MANIFEST_SIZE:
        raise SotaFormatError(f"manifest length {mlen} outside 1..{MAX_MANIFEST_SIZE}")
    if HEADER_SIZE + mlen > len(data):
        raise SotaFormatError(f"manifest length {mlen} runs past the end of the package")
    cose = _loads_exact(data[HEADER_SIZE:HEADER_SIZE + mlen], "manifest")
    if isinstance(cose, cbor2.CBORTag):
        if cose.tag != COSE_SIGN1_TAG:
            raise SotaFormatError(f"manifest has CBOR tag {cose.tag}, expected 18 (COSE_Sign1)")
        cose = cose.value
    # cbor2 decodes the content of a tag as immutable types (tuple, frozendict).
    if (not isinstance(cose, (list, tuple)) or len(cose) != 4 or not isinstance(cose[0], bytes)
            or not isinstance(cose[1], Mapping) or not isinstance(cose[2], bytes)
            or not isinstance(cose[3], bytes)):
        raise SotaFormatError("manifest is not a COSE_Sign1 [bstr, map, bstr, bstr]")
    protected, unprotected, manifest_bytes, signature = cose
    prot = _loads_exact(protected, "protected header")
    if (not isinstance(prot, Mapping) or set(prot) != {1} or type(prot[1]) is not int
            or not -_I64 <= prot[1] < _I64):
        raise SotaFormatError("protected header must be {1: alg} (alg a 64-bit integer)")
    if set(unprotected) - {4} or (4 in unprotected and not isinstance(unprotected[4], bytes)):
        raise SotaFormatError("unprotected header may hold only {4: kid bytes}")
    manifest = _decode_manifest(_loads_exact(manifest_bytes, "manifest payload"))
    payload = data[HEADER_SIZE + mlen:]
    if len(payload) != manifest.payload_size:
        raise SotaFormatError(f"payload is {len(payload)} bytes, the manifest says "
                              f"{manifest.payload_size}")
    return SotaPackage(manifest=manifest, payload=payload, alg=prot[1], kid=unprotected.get(4),
                       protected=protected, manifest_bytes=manifest_bytes, signature=signature)


def verify_package(
    data: bytes,
    public_key: PublicKey,
    *,
    slot_size: int | None = None,
    installed_version: str | None = None,
    allowed_imports: Iterable[str] = frozenset(),
) -> SotaPackage:
    """Verify a package in the order of docs/sota-format.md; return it or raise a SotaError.

    ``slot_size`` is the receiver's slot (None: only the manifest's own slot size is checked),
    ``installed_version`` enables the downgrade check, ``allowed_imports`` is passed to the Wasm
    check. The self-test step is the runtime's (``SotaSelftestError`` exists for it).
    """
    pkg = parse_package(data)
    m = pkg.manifest
    if m.payload_size > m.slot_size:
        raise SotaOversizeError(f"payload of {m.payload_size} bytes exceeds the manifest's "
                                f"{m.slot_size}-byte slot")
    if slot_size is not None:
        if m.payload_size > slot_size:
            raise SotaOversizeError(f"payload of {m.payload_size} bytes does not fit this "
                                    f"{slot_size}-byte slot")
        if len(data) > HEADER_SIZE + MAX_MANIFEST_SIZE + slot_size:
            raise SotaOversizeError(f"package of {len(data)} bytes exceeds the limit for a "
                                    f"{slot_size}-byte slot")
    want_alg = signature_alg(public_key)
    if pkg.alg not in (ALG_EDDSA, ALG_ES256):
        raise SotaSignatureError(f"unknown signature algorithm {pkg.alg}")
    if pkg.alg != want_alg:
        raise SotaSignatureError(f"package is signed with alg {pkg.alg}, the trusted key "
                                 f"needs alg {want_alg}: wrong key")
    if pkg.kid is not None and pkg.kid != _keys.key_id(public_key):
        raise SotaSignatureError(f"package key id {pkg.kid.hex()} is not the trusted key's "
                                 f"{_keys.key_id(public_key).hex()}: wrong key")
    if not _keys.verify_raw(public_key, pkg.signature,
                            _sig_structure(pkg.protected, pkg.manifest_bytes)):
        raise SotaSignatureError("manifest signature does not verify with the trusted key "
                                 "(tampered manifest or wrong key)")
    if hashlib.sha256(pkg.payload).digest() != m.sha256:
        raise SotaHashError("payload SHA-256 differs from the manifest (tampered payload)")
    if installed_version is not None and _version.parse(m.version) <= _version.parse(installed_version):
        raise SotaDowngradeError(f"version {m.version} is not greater than the installed "
                                 f"{installed_version}")
    try:
        inspect_module(pkg.payload, allowed_imports=allowed_imports, required_exports=m.exports)
    except WasmError as e:
        raise SotaWasmError(str(e)) from None
    return pkg
