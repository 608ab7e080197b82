"""SOTA packages: build/verify round trip, and each refusal of docs/sota-format.md on its own.

``_package`` encodes packages straight from the document (not through ``build_package``), so
malformed and hostile packages can be made and the byte format itself is pinned.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import cbor2
import pytest

from ota import keys, sota
from ota.sota import (
    SotaDowngradeError, SotaFormatError, SotaHashError, SotaOversizeError, SotaSignatureError,
    SotaWasmError, build_package, verify_package,
)
from tests.support.wasm import wat_to_wasm

EXPORTS = ["memory", "input_buffer", "input_size", "infer"]


def _manifest(module: bytes, over: dict[int, Any] | None = None) -> dict[int, Any]:
    m = {1: "clf", 2: "1.2.0", 3: ".wasm_model", 4: 65536, 5: len(module),
         6: hashlib.sha256(module).digest(), 7: EXPORTS}
    m.update(over or {})
    return {k: v for k, v in m.items() if v is not None}


def _package(module: bytes, key: keys.PrivateKey, manifest: dict[int, Any] | None = None, *,
             alg: int | None = None, tag: bool = True, kid: bytes | None = None) -> bytes:
    """A package written from docs/sota-format.md, independently of ota.sota."""
    alg = alg if alg is not None else (-8 if keys.key_kind(key) == "ed25519" else -7)
    protected = cbor2.dumps({1: alg})
    payload = cbor2.dumps(manifest if manifest is not None else _manifest(module))
    sig = keys.sign_raw(key, cbor2.dumps(["Signature1", protected, b"", payload]))
    unprotected = {4: kid if kid is not None else keys.key_id(key)}
    body: Any = [protected, unprotected, payload, sig]
    cose = cbor2.dumps(cbor2.CBORTag(18, body) if tag else body)
    return b"SOTA" + bytes([1, 0, 0, 0]) + struct.pack("<I", len(cose)) + cose + module


def test_built_package_verifies_and_carries_the_manifest(
        example_model_wasm: bytes, signing_key: keys.PrivateKey) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.1.10",
                         private_key=signing_key, slot_size=65536,
                         selftest=([1.0, 0.5, 0.2, 0.1], 1))
    pkg = verify_package(data, keys.public_key_of(signing_key), slot_size=65536,
                         installed_version="1.1.9")
    assert pkg.payload == example_model_wasm
    m = pkg.manifest
    assert (m.name, m.version, m.section, m.slot_size) == ("clf", "1.1.10", ".wasm_model", 65536)
    assert m.payload_size == len(example_model_wasm)
    assert m.sha256 == hashlib.sha256(example_model_wasm).digest()
    assert m.exports == tuple(EXPORTS)
    assert m.selftest == sota.SelfTest((1.0, 0.5, 0.2, 0.1), 1)
    assert pkg.kid == keys.key_id(signing_key)


def test_built_package_matches_the_documented_layout(
        example_model_wasm: bytes, ed_key: keys.PrivateKey) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.0.0", private_key=ed_key,
                         slot_size=65536, created=1700000000)
    assert data[:8] == b"SOTA\x01\0\0\0"
    mlen = struct.unpack_from("<I", data, 8)[0]
    assert data[12 + mlen:] == example_model_wasm
    cose = cbor2.loads(data[12:12 + mlen])
    assert cose.tag == 18
    protected, unprotected, payload, sig = cose.value
    assert cbor2.loads(protected) == {1: -8}
    assert unprotected == {4: keys.key_id(ed_key)}
    assert cbor2.loads(payload)[9] == 1700000000
    assert keys.verify_raw(keys.public_key_of(ed_key), sig,
                           cbor2.dumps(["Signature1", protected, b"", payload]))


def test_independently_encoded_package_verifies_with_or_without_tag(
        example_model_wasm: bytes, signing_key: keys.PrivateKey) -> None:
    pub = keys.public_key_of(signing_key)
    for tag in (True, False):
        pkg = verify_package(_package(example_model_wasm, signing_key, tag=tag), pub)
        assert pkg.manifest.version == "1.2.0"


def test_tampered_manifest_is_refused_as_signature(
        example_model_wasm: bytes, signing_key: keys.PrivateKey) -> None:
    data = bytearray(build_package(example_model_wasm, name="clf", version="1.0.0",
                                   private_key=signing_key, slot_size=65536))
    i = data.index(b"1.0.0")
    data[i:i + 5] = b"9.0.0"  # same length: the CBOR still parses
    with pytest.raises(SotaSignatureError, match="tampered manifest") as e:
        verify_package(bytes(data), keys.public_key_of(signing_key))
    assert e.value.reason == "signature"


def test_tampered_payload_is_refused_as_hash(
        example_model_wasm: bytes, signing_key: keys.PrivateKey) -> None:
    data = bytearray(build_package(example_model_wasm, name="clf", version="1.0.0",
                                   private_key=signing_key, slot_size=65536))
    data[-20] ^= 0x01
    with pytest.raises(SotaHashError, match="tampered payload") as e:
        verify_package(bytes(data), keys.public_key_of(signing_key))
    assert e.value.reason == "hash"


def test_wrong_key_is_refused_as_signature(example_model_wasm: bytes,
                                           signing_key: keys.PrivateKey) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.0.0",
                         private_key=signing_key, slot_size=65536)
    other_same_kind = keys.generate_private_key(keys.key_kind(signing_key))
    with pytest.raises(SotaSignatureError, match="wrong key"):
        verify_package(data, keys.public_key_of(other_same_kind))
    other_kind = "p256" if keys.key_kind(signing_key) == "ed25519" else "ed25519"
    with pytest.raises(SotaSignatureError, match="wrong key"):
        verify_package(data, keys.public_key_of(keys.generate_private_key(other_kind)))


def test_wrong_key_without_kid_still_fails_the_signature(
        example_model_wasm: bytes, ed_key: keys.PrivateKey) -> None:
    other = keys.generate_private_key("ed25519")
    data = _package(example_model_wasm, other, kid=keys.key_id(ed_key))  # lies about its kid
    with pytest.raises(SotaSignatureError, match="does not verify"):
        verify_package(data, keys.public_key_of(ed_key))


def test_unknown_algorithm_is_refused_as_signature(example_model_wasm: bytes,
                                                   ed_key: keys.PrivateKey) -> None:
    with pytest.raises(SotaSignatureError, match="unknown signature algorithm -35"):
        verify_package(_package(example_model_wasm, ed_key, alg=-35), keys.public_key_of(ed_key))


@pytest.mark.parametrize("installed", ["1.2.0", "1.10.0", "2.0.0"])
def test_downgrade_or_same_version_is_refused(example_model_wasm: bytes, ed_key: keys.PrivateKey,
                                              installed: str) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.2.0", private_key=ed_key,
                         slot_size=65536)
    with pytest.raises(SotaDowngradeError, match=f"not greater than the installed {installed}"):
        verify_package(data, keys.public_key_of(ed_key), installed_version=installed)


def test_newer_version_compares_numerically(example_model_wasm: bytes,
                                            ed_key: keys.PrivateKey) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.1.10", private_key=ed_key,
                         slot_size=65536)
    assert verify_package(data, keys.public_key_of(ed_key), installed_version="1.1.9")


def test_payload_larger_than_the_receivers_slot_is_refused(
        example_model_wasm: bytes, ed_key: keys.PrivateKey) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.0.0", private_key=ed_key,
                         slot_size=65536)
    with pytest.raises(SotaOversizeError, match="does not fit this 512-byte slot") as e:
        verify_package(data, keys.public_key_of(ed_key), slot_size=512)
    assert e.value.reason == "oversize"


def test_payload_larger_than_the_manifests_slot_is_refused(
        example_model_wasm: bytes, ed_key: keys.PrivateKey) -> None:
    data = _package(example_model_wasm, ed_key, _manifest(example_model_wasm, {4: 100}))
    with pytest.raises(SotaOversizeError, match="exceeds the manifest's 100-byte slot"):
        verify_package(data, keys.public_key_of(ed_key))


def test_build_refuses_a_module_larger_than_the_slot(example_model_wasm: bytes,
                                                     ed_key: keys.PrivateKey) -> None:
    with pytest.raises(SotaOversizeError, match="does not fit"):
        build_package(example_model_wasm, name="clf", version="1.0.0", private_key=ed_key,
                      slot_size=100)


def test_module_missing_an_export_is_refused_as_wasm(tmp_path: Path,
                                                     ed_key: keys.PrivateKey) -> None:
    module = wat_to_wasm('(module (memory (export "memory") 1)'
                         '(func (export "infer") (result i32) i32.const 0))', tmp_path)
    data = _package(module, ed_key, _manifest(module))
    with pytest.raises(SotaWasmError, match="'input_buffer' is missing") as e:
        verify_package(data, keys.public_key_of(ed_key))
    assert e.value.reason == "wasm"
    with pytest.raises(SotaWasmError):
        build_package(module, name="x", version="1.0.0", private_key=ed_key, slot_size=65536)


def test_payload_that_is_not_wasm_is_refused_as_wasm(ed_key: keys.PrivateKey) -> None:
    junk = b"not a wasm module"
    with pytest.raises(SotaWasmError, match="magic"):
        verify_package(_package(junk, ed_key, _manifest(junk)), keys.public_key_of(ed_key))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"SOTB" + d[4:], "magic"),
    (lambda d: d[:4] + b"\x02" + d[5:], "format version 2"),
    (lambda d: d[:5] + b"\x01" + d[6:], "reserved"),
    (lambda d: d[:8] + struct.pack("<I", 0) + d[12:], "manifest length 0"),
    (lambda d: d[:8] + struct.pack("<I", 16385) + d[12:], "manifest length 16385"),
    (lambda d: d + b"\0", "payload is"),
    (lambda d: d[:-1], "payload is"),
    (lambda d: d[:10], "header alone"),
])
def test_malformed_framing_is_refused_as_format(example_model_wasm: bytes,
                                                ed_key: keys.PrivateKey, mutate: Any,
                                                message: str) -> None:
    data = build_package(example_model_wasm, name="clf", version="1.0.0", private_key=ed_key,
                         slot_size=65536)
    with pytest.raises(SotaFormatError, match=message) as e:
        verify_package(mutate(data), keys.public_key_of(ed_key))
    assert e.value.reason == "format"


@pytest.mark.parametrize("over, message", [
    ({10: "extra"}, "unknown keys"),
    ({2: "1.2"}, "MAJOR.MINOR.PATCH"),
    ({1: None}, "lacks required key 1"),
    ({6: b"short"}, "32 bytes"),
    ({5: -1}, "unsigned integer"),
    ({7: "memory"}, "array of text"),
    ({8: {1: [1.0], 2: 1, 3: 0}}, "selftest"),
])
def test_bad_manifest_fields_are_refused_as_format(example_model_wasm: bytes,
                                                   ed_key: keys.PrivateKey, over: dict,
                                                   message: str) -> None:
    data = _package(example_model_wasm, ed_key, _manifest(example_model_wasm, over))
    with pytest.raises(SotaFormatError, match=message):
        verify_package(data, keys.public_key_of(ed_key))


def test_manifest_that_is_not_cose_sign1_is_refused_as_format(ed_key: keys.PrivateKey) -> None:
    cose = cbor2.dumps({"not": "cose"})
    data = b"SOTA\x01\0\0\0" + struct.pack("<I", len(cose)) + cose
    with pytest.raises(SotaFormatError, match="COSE_Sign1"):
        verify_package(data, keys.public_key_of(ed_key))


def test_checks_run_in_the_documented_order(example_model_wasm: bytes,
                                            ed_key: keys.PrivateKey) -> None:
    data = bytearray(build_package(example_model_wasm, name="clf", version="1.0.0",
                                   private_key=ed_key, slot_size=65536))
    data[-1] ^= 0xFF  # tampered payload ...
    wrong = keys.public_key_of(keys.generate_private_key("ed25519"))
    with pytest.raises(SotaSignatureError):  # ... but a wrong key is found first
        verify_package(bytes(data), wrong, installed_version="2.0.0")
    with pytest.raises(SotaOversizeError):  # and oversize before the signature
        verify_package(bytes(data), wrong, slot_size=10)
    with pytest.raises(SotaHashError):  # hash before downgrade
        verify_package(bytes(data), keys.public_key_of(ed_key), installed_version="2.0.0")
