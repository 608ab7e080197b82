"""MCUboot firmware images: parse, verify and sign them the way imgtool does.

Layout: a 32-byte header (magic 0x96f3b83d, load address, header size, protected TLV size,
image size, flags, version major.minor.revision+build), the image body, then the TLV area:
an optional protected block (magic 0x6908) and the unprotected block (magic 0x6907) holding
the SHA-256 of header + body + protected TLVs, KEYHASH (SHA-256 of the DER public key) and the
signature (Ed25519 over that digest, or ECDSA P-256 DER over the same bytes).
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ota import keys as _keys
from ota.errors import OtaError
from ota.keys import PrivateKey, PublicKey

__all__ = [
    "McubootError", "ImageVersion", "ImageHeader", "McubootImage", "parse_image",
    "verify_image", "sign_image", "is_mcuboot_image", "IMAGE_MAGIC",
]

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
HEADER_SIZE = 32
TLV_KEYHASH, TLV_SHA256, TLV_ECDSA_SIG, TLV_ED25519 = 0x01, 0x10, 0x22, 0x24
_HDR = struct.Struct("<IIHHII BBHI I".replace(" ", ""))
_SIG_TLV = {"ed25519": TLV_ED25519, "p256": TLV_ECDSA_SIG}


class McubootError(OtaError, ValueError):
    """An MCUboot image is malformed or fails verification."""


@dataclass(frozen=True)
class ImageVersion:
    """MCUboot's version: major.minor.revision+build."""

    major: int
    minor: int
    revision: int
    build: int = 0

    @classmethod
    def parse(cls, text: str) -> ImageVersion:
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:\+(\d+))?", text)
        if m is None:
            raise McubootError(f"image version {text!r} is not MAJOR.MINOR.REVISION[+BUILD]")
        major, minor, rev, build = (int(g or 0) for g in m.groups())
        if major > 255 or minor > 255 or rev > 65535 or build > 2**32 - 1:
            raise McubootError(f"image version {text!r} out of range (255.255.65535+4294967295)")
        return cls(major, minor, rev, build)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@dataclass(frozen=True)
class ImageHeader:
    """The fixed header at the start of an image."""

    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: ImageVersion


@dataclass(frozen=True)
class McubootImage:
    """A parsed image: header, body, TLVs (type, value) and where the hashed region ends."""

    header: ImageHeader
    body: bytes
    protected_tlvs: tuple[tuple[int, bytes], ...]
    tlvs: tuple[tuple[int, bytes], ...]
    hashed_size: int
    total_size: int

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first unprotected TLV of ``kind``, or None."""
        return next((v for t, v in self.tlvs if t == kind), None)

    @property
    def sha256(self) -> bytes | None:
        return self.tlv(TLV_SHA256)

    @property
    def signature_kind(self) -> str | None:
        """``"ed25519"``, ``"p256"`` or None for an unsigned image."""
        for kind, tlv in _SIG_TLV.items():
            if self.tlv(tlv) is not None:
                return kind
        return None

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (artifact metadata, CLI output)."""
        return {
            "format": "mcuboot", "version": str(self.header.version),
            "load_addr": self.header.load_addr, "header_size": self.header.hdr_size,
            "image_size": self.header.img_size, "flags": self.header.flags,
            "image_sha256": None if self.sha256 is None else self.sha256.hex(),
            "signature": self.signature_kind,
        }


def is_mcuboot_image(data: bytes) -> bool:
    """True when ``data`` starts with the MCUboot header magic."""
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == IMAGE_MAGIC


def _read_tlv_block(data: bytes, off: int, magic: int) -> tuple[tuple[tuple[int, bytes], ...], int]:
    if off + 4 > len(data):
        raise McubootError(f"TLV area missing at offset {off}")
    got, total = struct.unpack_from("<HH", data, off)
    if got != magic:
        raise McubootError(f"TLV info magic 0x{got:04x} at offset {off}, expected 0x{magic:04x}")
    end = off + total
    if total < 4 or end > len(data):
        raise McubootError(f"TLV block of {total} bytes at offset {off} runs past the image")
    tlvs = []
    pos = off + 4
    while pos < end:
        if pos + 4 > end:
            raise McubootError(f"truncated TLV entry at offset {pos}")
        kind, length = struct.unpack_from("<HH", data, pos)
        if pos + 4 + length > end:
            raise McubootError(f"TLV 0x{kind:02x} at offset {pos} runs past its block")
        tlvs.append((kind, bytes(data[pos + 4:pos + 4 + length])))
        pos += 4 + length
    return tuple(tlvs), end


def parse_image(data: bytes) -> McubootImage:
    """Parse the header and TLV area; no cryptographic checks (see ``verify_image``)."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise McubootError(f"{len(data)} bytes: too short for an MCUboot header")
    (magic, load_addr, hdr_size, ptlv_size, img_size, flags,
     major, minor, rev, build, _pad) = _HDR.unpack_from(data)
    if magic != IMAGE_MAGIC:
        raise McubootError(f"not an MCUboot image: magic 0x{magic:08x}, expected 0x96f3b83d")
    if hdr_size < HEADER_SIZE:
        raise McubootError(f"header size {hdr_size} below {HEADER_SIZE}")
    tlv_off = hdr_size + img_size
    if tlv_off > len(data):
        raise McubootError(f"image of {img_size} bytes after a {hdr_size}-byte header runs past "
                           f"the end of the file ({len(data)} bytes)")
    protected: tuple[tuple[int, bytes], ...] = ()
    hashed_end = tlv_off
    if ptlv_size:
        protected, hashed_end = _read_tlv_block(data, tlv_off, TLV_PROT_INFO_MAGIC)
        if hashed_end - tlv_off != ptlv_size:
            raise McubootError(f"protected TLV block is {hashed_end - tlv_off} bytes, the "
                               f"header says {ptlv_size}")
    tlvs, end = _read_tlv_block(data, hashed_end, TLV_INFO_MAGIC)
    header = ImageHeader(load_addr, hdr_size, ptlv_size, img_size, flags,
                         ImageVersion(major, minor, rev, build))
    return McubootImage(header, data[hdr_size:tlv_off], protected, tlvs, hashed_end, end)


def _der_public_key(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_image(data: bytes, public_key: PublicKey | None = None) -> McubootImage:
    """Check the SHA-256 TLV and, given a key, the KEYHASH and signature TLVs.

    Raises ``McubootError`` saying which check failed; returns the parsed image.
    """
    img = parse_image(data)
    digest = hashlib.sha256(bytes(data[:img.hashed_size])).digest()
    if img.sha256 is None:
        raise McubootError("image has no SHA-256 TLV")
    if img.sha256 != digest:
        raise McubootError("image SHA-256 does not match its contents (tampered image)")
    if public_key is None:
        return img
    pub = _keys.public_key_of(public_key)
    kind = _keys.key_kind(pub)
    keyhash = img.tlv(TLV_KEYHASH)
    if keyhash is not None and keyhash != hashlib.sha256(_der_public_key(pub)).digest():
        raise McubootError("image was signed with another key (KEYHASH differs)")
    sig = img.tlv(_SIG_TLV[kind])
    if sig is None:
        raise McubootError(f"image carries no {kind} signature"
                           + (f" (it has {img.signature_kind})" if img.signature_kind else ""))
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, digest)
        else:
            if len(sig) < 2:
                raise InvalidSignature
            sig = sig[:sig[1] + 2]  # imgtool may pad the DER signature
            assert isinstance(pub, ec.EllipticCurvePublicKey)
            pub.verify(sig, bytes(data[:img.hashed_size]), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise McubootError("image signature does not verify with this key") from None
    return img


def sign_image(
    raw: bytes,
    private_key: PrivateKey | None,
    *,
    version: str = "0.0.0",
    header_size: int = 0x200,
    load_addr: int = 0,
    erased_val: int = 0xFF,
) -> bytes:
    """Wrap a raw binary in an MCUboot image, like ``imgtool sign --pad-header``.

    The body is ``raw`` after a ``header_size``-byte header; TLVs: SHA-256, then with a key
    KEYHASH and the signature. ``private_key`` None gives a hash-only image. The header
    padding is ``erased_val`` (imgtool's default 0xFF), so Ed25519 output equals imgtool's.
    """
    if header_size < HEADER_SIZE or header_size > 0xFFFF:
        raise McubootError(f"header size must be {HEADER_SIZE}..65535, got {header_size}")
    v = ImageVersion.parse(version)
    header = _HDR.pack(IMAGE_MAGIC, load_addr, header_size, 0, len(raw), 0,
                       v.major, v.minor, v.revision, v.build, 0)
    signed = header + bytes([erased_val]) * (header_size - HEADER_SIZE) + bytes(raw)
    digest = hashlib.sha256(signed).digest()
    entries = [(TLV_SHA256, digest)]
    if private_key is not None:
        kind = _keys.key_kind(private_key)
        pub = _keys.public_key_of(private_key)
        entries.append((TLV_KEYHASH, hashlib.sha256(_der_public_key(pub)).digest()))
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            sig = private_key.sign(digest)
        elif isinstance(private_key, ec.EllipticCurvePrivateKey):
            sig = private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        else:
            raise McubootError("signing needs a private key")
        entries.append((_SIG_TLV[kind], sig))
    body = b"".join(struct.pack("<BBH", t, 0, len(v_)) + v_ for t, v_ in entries)
    return signed + struct.pack("<HH", TLV_INFO_MAGIC, 4 + len(body)) + body
