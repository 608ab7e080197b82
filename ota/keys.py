"""Signing keys: Ed25519 and ECDSA P-256 generation, PEM load/store, raw signatures, C export.

Private keys live in PEM files of the operator's choosing; nothing here writes them anywhere
else (the server's database never holds one). Signatures made here are the raw forms the
firmware's C verifier takes: Ed25519 64 bytes, P-256 ``r || s`` 64 bytes (not DER).
"""

from __future__ import annotations

import hashlib
from typing import Literal, TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ota.errors import OtaError

__all__ = [
    "KeyKind", "PrivateKey", "PublicKey", "KeyFormatError", "KEY_KINDS",
    "generate_private_key", "load_private_key", "load_public_key", "private_key_pem",
    "public_key_pem", "public_key_of", "key_kind", "raw_public_key", "key_id",
    "sign_raw", "verify_raw", "public_key_c_array",
]

KeyKind = Literal["ed25519", "p256"]
KEY_KINDS: tuple[str, ...] = ("ed25519", "p256")
PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class KeyFormatError(OtaError, ValueError):
    """A key is of an unsupported type or its PEM cannot be read."""


def generate_private_key(kind: str) -> PrivateKey:
    """A new private key: ``kind`` is ``"ed25519"`` or ``"p256"``."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise KeyFormatError(f"unknown key type {kind!r}: use one of {', '.join(KEY_KINDS)}")


def _check_supported(key: object) -> None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return
        raise KeyFormatError(f"EC key on curve {key.curve.name} is not supported: use P-256")
    raise KeyFormatError(f"{type(key).__name__} is not supported: use an Ed25519 or P-256 key")


def load_private_key(pem_bytes: bytes, password: bytes | None = None) -> PrivateKey:
    """Read an Ed25519 or P-256 private key from PEM (PKCS#8 or SEC1)."""
    try:
        key = serialization.load_pem_private_key(pem_bytes, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"not a readable PEM private key: {e}") from None
    _check_supported(key)
    return key  # type: ignore[return-value]


def load_public_key(pem_bytes: bytes) -> PublicKey:
    """Read an Ed25519 or P-256 public key from PEM; a private key PEM yields its public key."""
    if b"PRIVATE KEY" in pem_bytes:
        return public_key_of(load_private_key(pem_bytes))
    try:
        key = serialization.load_pem_public_key(pem_bytes)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"not a readable PEM public key: {e}") from None
    _check_supported(key)
    return key  # type: ignore[return-value]


def public_key_of(key: PrivateKey | PublicKey) -> PublicKey:
    """The public half of ``key`` (a public key is returned as is)."""
    _check_supported(key)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        return key.public_key()
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM of a private key (unencrypted: protect the file itself)."""
    _check_supported(key)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of the public key."""
    return public_key_of(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_kind(key: PrivateKey | PublicKey) -> KeyKind:
    """``"ed25519"`` or ``"p256"``."""
    _check_supported(key)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    return "p256"


def raw_public_key(key: PrivateKey | PublicKey) -> bytes:
    """Ed25519: the 32-byte key; P-256: the 65-byte uncompressed point (0x04 || X || Y)."""
    pub = public_key_of(key)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def key_id(key: PrivateKey | PublicKey) -> bytes:
    """The COSE ``kid`` of docs/sota-format.md: first 8 bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key(key)).digest()[:8]


def sign_raw(key: PrivateKey, message: bytes) -> bytes:
    """Sign ``message``: Ed25519 (64 bytes) or ECDSA P-256 with SHA-256 as ``r || s`` (64 bytes)."""
    _check_supported(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise KeyFormatError("signing needs a private key")


def verify_raw(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` (raw form, see ``sign_raw``) is valid for ``message``."""
    pub = public_key_of(key)
    if len(signature) != 64:
        return False
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(signature, message)
        else:
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            pub.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def public_key_c_array(public_key: PrivateKey | PublicKey, name: str = "sota_public_key") -> str:
    """C source defining the raw public key as ``const uint8_t name[]`` plus its length.

    Ed25519 gives 32 bytes, P-256 the 65-byte uncompressed point: what the firmware's verifier
    and the ``kid`` computation use.
    """
    if not name.isidentifier() or not name.isascii():
        raise KeyFormatError(f"{name!r} is not a valid C identifier")
    raw = raw_public_key(public_key)
    kind = key_kind(public_key)
    rows = []
    for i in range(0, len(raw), 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in raw[i:i + 12]) + ",")
    return (
        f"/* {kind} public key ({len(raw)} bytes, "
        f"{'raw' if kind == 'ed25519' else 'uncompressed point'}), kid {key_id(public_key).hex()} */\n"
        "#include <stddef.h>\n#include <stdint.h>\n\n"
        f"const uint8_t {name}[{len(raw)}] = {{\n" + "\n".join(rows) + "\n};\n"
        f"const size_t {name}_len = {len(raw)};\n"
    )

