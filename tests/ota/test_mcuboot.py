"""MCUboot images cross-checked with imgtool both ways, and refusals of bad images."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from ota import keys, mcuboot
from ota.mcuboot import ImageVersion, McubootError, parse_image, sign_image, verify_image

IMGTOOL = shutil.which("imgtool")
pytestmark = pytest.mark.skipif(IMGTOOL is None, reason="imgtool (test extra) is not installed")

RAW = random.Random(7).randbytes(6000)


def _imgtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IMGTOOL or "imgtool", *args], capture_output=True, text=True)


@pytest.fixture()
def key_file(signing_key: keys.PrivateKey, tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(keys.private_key_pem(signing_key))
    return path


def _imgtool_sign(key_file: Path, tmp_path: Path, version: str = "1.2.3+4",
                  *extra: str) -> bytes:
    (tmp_path / "app.bin").write_bytes(RAW)
    r = _imgtool("sign", "-k", str(key_file), "--pad-header", "-H", "0x200", "-v", version,
                 "-S", "0x20000", *extra, str(tmp_path / "app.bin"), str(tmp_path / "signed.bin"))
    assert r.returncode == 0, r.stderr
    return (tmp_path / "signed.bin").read_bytes()


def test_image_signed_by_imgtool_verifies_with_ours(signing_key: keys.PrivateKey,
                                                    key_file: Path, tmp_path: Path) -> None:
    image = _imgtool_sign(key_file, tmp_path)
    img = verify_image(image, keys.public_key_of(signing_key))
    assert img.header.version == ImageVersion(1, 2, 3, 4)
    assert img.body == RAW
    assert img.signature_kind == keys.key_kind(signing_key)


def test_imgtool_image_with_protected_tlvs_verifies_with_ours(
        signing_key: keys.PrivateKey, key_file: Path, tmp_path: Path) -> None:
    image = _imgtool_sign(key_file, tmp_path, "1.0.0", "--security-counter", "7")
    img = verify_image(image, keys.public_key_of(signing_key))
    assert img.protected_tlvs == ((0x50, (7).to_bytes(4, "little")),)
    tampered = bytearray(image)
    tampered[img.hashed_size - 4] ^= 1  # the security counter is covered by the hash
    with pytest.raises(McubootError, match="SHA-256 does not match"):
        verify_image(bytes(tampered))


def test_image_signed_by_us_verifies_with_imgtool(signing_key: keys.PrivateKey, key_file: Path,
                                                  tmp_path: Path) -> None:
    (tmp_path / "ours.bin").write_bytes(sign_image(RAW, signing_key, version="2.0.1+9"))
    r = _imgtool("verify", "-k", str(key_file), str(tmp_path / "ours.bin"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Image was correctly validated" in r.stdout
    assert "2.0.1+9" in r.stdout


def test_imgtool_rejects_our_image_under_another_key(signing_key: keys.PrivateKey,
                                                     tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(keys.private_key_pem(keys.generate_private_key(keys.key_kind(signing_key))))
    (tmp_path / "ours.bin").write_bytes(sign_image(RAW, signing_key))
    r = _imgtool("verify", "-k", str(other), str(tmp_path / "ours.bin"))
    assert "correctly validated" not in r.stdout


def test_ed25519_image_is_byte_identical_to_imgtools(ed_key: keys.PrivateKey,
                                                     tmp_path: Path) -> None:
    key_file = tmp_path / "ed.pem"
    key_file.write_bytes(keys.private_key_pem(ed_key))
    assert sign_image(RAW, ed_key, version="1.2.3+4") == _imgtool_sign(key_file, tmp_path)


def test_tampered_body_is_refused(signing_key: keys.PrivateKey) -> None:
    image = bytearray(sign_image(RAW, signing_key))
    image[0x200 + 100] ^= 0x40
    with pytest.raises(McubootError, match="SHA-256 does not match"):
        verify_image(bytes(image), keys.public_key_of(signing_key))


def test_tampered_version_in_header_is_refused(signing_key: keys.PrivateKey) -> None:
    image = bytearray(sign_image(RAW, signing_key, version="1.0.0"))
    image[20] = 9  # major version lives in the hashed header
    with pytest.raises(McubootError, match="SHA-256 does not match"):
        verify_image(bytes(image))


def test_wrong_key_is_refused(signing_key: keys.PrivateKey) -> None:
    image = sign_image(RAW, signing_key)
    other = keys.generate_private_key(keys.key_kind(signing_key))
    with pytest.raises(McubootError, match="another key"):
        verify_image(image, keys.public_key_of(other))


def test_forged_signature_is_refused(ed_key: keys.PrivateKey) -> None:
    image = bytearray(sign_image(RAW, ed_key))
    image[-1] ^= 0x01  # last byte of the Ed25519 signature TLV
    with pytest.raises(McubootError, match="signature does not verify"):
        verify_image(bytes(image), keys.public_key_of(ed_key))


def test_unsigned_image_verifies_its_hash_but_not_a_key(ed_key: keys.PrivateKey) -> None:
    image = sign_image(RAW, None, version="0.1.0")
    assert verify_image(image).signature_kind is None
    with pytest.raises(McubootError, match="no ed25519 signature"):
        verify_image(image, keys.public_key_of(ed_key))


@pytest.mark.parametrize("data, message", [
    (b"\0" * 64, "magic"),
    (b"\x3d\xb8\xf3\x96", "too short"),
])
def test_non_images_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(McubootError, match=message):
        parse_image(data)


def test_truncated_tlv_area_is_refused(ed_key: keys.PrivateKey) -> None:
    image = sign_image(RAW, ed_key)
    with pytest.raises(McubootError, match="runs past|missing"):
        parse_image(image[:-10])
    with pytest.raises(McubootError, match="runs past"):
        parse_image(image[:0x200 + 100])


def test_bad_version_text_is_refused() -> None:
    with pytest.raises(McubootError, match="MAJOR.MINOR.REVISION"):
        sign_image(RAW, None, version="1.2")
    with pytest.raises(McubootError, match="out of range"):
        sign_image(RAW, None, version="256.0.0")


def test_is_mcuboot_image_looks_at_the_magic(ed_key: keys.PrivateKey) -> None:
    assert mcuboot.is_mcuboot_image(sign_image(RAW, ed_key))
    assert not mcuboot.is_mcuboot_image(RAW)
