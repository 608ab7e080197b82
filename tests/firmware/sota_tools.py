"""Helpers of the firmware tests that make SOTA packages, including deliberately bad ones."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

import cbor2

from ota import keys
from ota.sota import parse_package

SLOT = 65536
SELFTEST = {"input": [1.0, 0.5, 0.2, 0.1], "expected": 1}


def resign(pkg: bytes, signer: Any, *, manifest: dict[int, Any] | None = None,
           payload: bytes | None = None, alg: int | None = None,
           unprotected: dict[int, Any] | None = None, fix_payload_fields: bool = True) -> bytes:
    """Re-assemble a validly signed package with some fields changed (what an attacker with
    the key, or a buggy builder, could produce); the signature is always correct."""
    old = parse_package(pkg)
    m = cbor2.loads(old.manifest_bytes)
    body = old.payload if payload is None else payload
    if payload is not None and fix_payload_fields:
        m[5], m[6] = len(body), hashlib.sha256(body).digest()
    m.update(manifest or {})
    protected = cbor2.dumps({1: old.alg if alg is None else alg})
    mbytes = cbor2.dumps(m)
    sig = keys.sign_raw(signer, cbor2.dumps(["Signature1", protected, b"", mbytes]))
    unprot = {4: keys.key_id(signer)} if unprotected is None else unprotected
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, unprot, mbytes, sig]))
    return struct.pack("<4sB3sI", b"SOTA", 1, b"\0\0\0", len(cose)) + cose + body


def resign_map(pkg: bytes, signer: Any, edit: Callable[[bytes], bytes]) -> bytes:
    """Like ``resign`` for changes a dict cannot express (key order, repeated keys, float
    widths): ``edit`` gets the manifest's CBOR bytes and returns new ones, signed as they are."""
    old = parse_package(pkg)
    mbytes = edit(old.manifest_bytes)
    protected = cbor2.dumps({1: old.alg})
    sig = keys.sign_raw(signer, cbor2.dumps(["Signature1", protected, b"", mbytes]))
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {4: keys.key_id(signer)}, mbytes, sig]))
    return struct.pack("<4sB3sI", b"SOTA", 1, b"\0\0\0", len(cose)) + cose + old.payload


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)
