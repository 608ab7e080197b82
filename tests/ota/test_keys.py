"""Keys: generation, PEM round trips, raw signatures and the C export the firmware compiles."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ota import keys


def test_generated_key_round_trips_through_pem_and_signs(signing_key: keys.PrivateKey) -> None:
    loaded = keys.load_private_key(keys.private_key_pem(signing_key))
    pub = keys.load_public_key(keys.public_key_pem(loaded))
    sig = keys.sign_raw(loaded, b"message")
    assert len(sig) == 64
    assert keys.verify_raw(pub, sig, b"message")
    assert not keys.verify_raw(pub, sig, b"messagf")
    assert keys.raw_public_key(pub) == keys.raw_public_key(signing_key)


def test_raw_public_key_sizes_match_the_sota_format(private_keys: dict) -> None:
    assert len(keys.raw_public_key(private_keys["ed25519"])) == 32
    raw = keys.raw_public_key(private_keys["p256"])
    assert len(raw) == 65 and raw[0] == 0x04


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(keys.KeyFormatError, match="unknown key type 'rsa'"):
        keys.generate_private_key("rsa")


def test_rsa_and_other_curves_are_refused() -> None:
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())):
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        with pytest.raises(keys.KeyFormatError, match="not supported"):
            keys.load_private_key(pem)


def test_garbage_pem_is_refused_with_a_clear_error() -> None:
    with pytest.raises(keys.KeyFormatError, match="not a readable PEM"):
        keys.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(keys.KeyFormatError, match="not a readable PEM"):
        keys.load_private_key(b"hello")


def test_public_key_c_array_holds_the_raw_key_and_compiles(
        signing_key: keys.PrivateKey, tmp_path: Path) -> None:
    text = keys.public_key_c_array(keys.public_key_of(signing_key), "trusted_key")
    values = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", text.split("*/", 1)[1]))
    assert values == keys.raw_public_key(signing_key)
    src = tmp_path / "key.c"
    src.write_text(text + "int main(void) { return trusted_key[0] == 0 && trusted_key_len == 0; }\n")
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(tmp_path / "k"), str(src)], check=True)


def test_c_array_name_must_be_an_identifier(ed_pub: keys.PublicKey) -> None:
    with pytest.raises(keys.KeyFormatError, match="C identifier"):
        keys.public_key_c_array(ed_pub, "1bad-name")
